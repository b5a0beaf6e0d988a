#!/usr/bin/env bash
# Do durable completions serialise on the NOTIFY lock? Evidence for sql/0007 (issue 15).
#
# Starts a throwaway cluster with fsync on, applies the project's migrations (by running the
# binary's `migrate` role), fills processed_images with ROWS small rows, then runs pgbench with
# CLIENTS clients for SECS seconds per variant, each transaction flipping one row's status the
# way a completion does (so the status trigger fires every time):
#   trigger  durable commit, status notification from the trigger inside the transaction
#   after    durable commit, trigger quiet, pg_notify in a statement of its own after the commit
#   async    asynchronous commit, notification from the trigger (what claims cost)
# Prints transactions/s per variant. Needs root (runs PostgreSQL as postgres) and a debug build.
#
#   bench/pg_completion_notify.sh [path/to/image-processor]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/image-processor}"
CLIENTS="${CLIENTS:-8}" SECS="${SECS:-10}" ROWS="${ROWS:-10000}"
pg_bin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"
work="$(mktemp -d /var/tmp/pg-completion.XXXXXX)"
chown postgres: "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
runuser -u postgres -- "$pg_bin/initdb" -D "$work/data" -U postgres --auth=trust >/dev/null
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/data" -l "$work/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $work -c fsync=on -c max_connections=50" start >/dev/null
url="postgres://postgres@127.0.0.1:$port/postgres"
DATABASE_URL="$url" "$BIN" migrate >/dev/null 2>&1
psql=(runuser -u postgres -- "$pg_bin/psql" -h "$work" -p "$port" -qAt -v ON_ERROR_STOP=1)
"${psql[@]}" -c "insert into processed_images (original_data, status) select '\x00'::bytea, 'processing' from generate_series(1, $ROWS)" \
  -c "create table bench_ids as select row_number() over () as n, id from processed_images" \
  -c "create unique index on bench_ids (n)" -c "vacuum analyze"
flip="update processed_images p set status = case when p.status = 'completed' then 'processing' else 'completed' end"
pick="where p.id = (select id from bench_ids where n = :n)"
cat >"$work/trigger.sql" <<SQL
\set n random(1, $ROWS)
$flip from (select set_config('synchronous_commit', 'on', true)) d $pick;
SQL
cat >"$work/after.sql" <<SQL
\set n random(1, $ROWS)
$flip from (select set_config('synchronous_commit', 'on', true), set_config('image_processor.status_notify_after_commit', 'on', true)) d $pick;
select pg_notify('image_status', :n || ':completed');
SQL
cat >"$work/async.sql" <<SQL
\set n random(1, $ROWS)
set synchronous_commit = off;
$flip $pick;
SQL
chown postgres: "$work"/*.sql
for variant in trigger after async; do
  tps=$(runuser -u postgres -- "$pg_bin/pgbench" -h "$work" -p "$port" -n -c "$CLIENTS" -j 2 -T "$SECS" \
    -f "$work/$variant.sql" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  printf '%-8s %8s transactions/s (%s clients, %s s, fsync on)\n' "$variant" "$tps" "$CLIENTS" "$SECS"
done
