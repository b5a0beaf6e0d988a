#!/usr/bin/env bash
# What do the triggers on a completion cost? Evidence for the webhook outbox trigger's WHEN guard
# (sql/0014) and for the per-minute history ring the counters' flush keeps (sql/0011).
#
# Starts a throwaway cluster with fsync on, applies the project's migrations (the binary's
# `migrate` role), fills processed_images with ROWS small rows, then runs pgbench with CLIENTS
# clients for SECS seconds per variant and round. Each transaction flips one row's status the
# way the worker's completion does (durable commit, status notification left for after the
# commit), so every other transaction is a change into `completed`:
#   none       the webhook trigger disabled (the tree before sql/0014)
#   idle       trigger enabled; no callback_url, no WEBHOOK_URL: its WHEN is false
#   global     the session carries image_processor.webhook_url (what WEBHOOK_URL does to worker
#              connections): every completion writes an outbox row with the image snapshot
#   nohistory  as idle, but the counters' flush without its per-minute history upsert (the
#              tree before sql/0011's ring; the function is rewritten for the run and restored)
# VARIANTS picks some ("idle nohistory" for the history ring alone).
# Set DURABLE=0 for asynchronous commits (the CPU cost without the WAL flush).
# Prints transactions/s per variant and round. Needs root (runs PostgreSQL as postgres) and a
# debug build.
#
#   bench/pg_webhook_trigger.sh [path/to/image-processor]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/image-processor}"
CLIENTS="${CLIENTS:-4}" SECS="${SECS:-6}" ROWS="${ROWS:-20000}" ROUNDS="${ROUNDS:-4}" DURABLE="${DURABLE:-1}"
VARIANTS="${VARIANTS:-none idle global nohistory}"
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
commit=$([[ $DURABLE == 1 ]] && echo on || echo off)
cat >"$work/flip.sql" <<SQL
\set n random(1, $ROWS)
update processed_images p set status = case when p.status = 'completed' then 'processing' else 'completed' end
from (select set_config('synchronous_commit', '$commit', true),
             set_config('image_processor.status_notify_after_commit', 'on', true)) d
where p.id = (select id from bench_ids where n = :n);
SQL
chown postgres: "$work"/*.sql
# The flush as migrated, and the same without the history block (its one `IF ... OR d[7]` ... `END IF;`).
flush_def="$("${psql[@]}" -c "select pg_get_functiondef('processed_images_count_flush'::regproc)")"
set_flush() { # with | without
  "${psql[@]}" -v def="$flush_def" -v cut="$([[ $1 == without ]] && echo 1 || echo 0)" >/dev/null <<'SQL'
select set_config('bench.def', :'def', false), set_config('bench.cut', :'cut', false);
do $$ begin
  execute case when current_setting('bench.cut') = '1'
    then regexp_replace(current_setting('bench.def'), 'IF d\[6\] <> 0 OR d\[7\] <> 0 THEN.*?END IF;', '')
    else current_setting('bench.def') end;
  if current_setting('bench.cut') = '1' and
     pg_get_functiondef('processed_images_count_flush'::regproc) like '%processed_images_history%' then
    raise exception 'the history block was not cut out of the flush';
  end if;
end $$;
SQL
}
for round in $(seq "$ROUNDS"); do
  for variant in $VARIANTS; do
    state=$([[ $variant == none ]] && echo disable || echo enable)
    "${psql[@]}" -c "alter table processed_images $state trigger processed_images_webhook_event"
    set_flush "$([[ $variant == nohistory ]] && echo without || echo with)"
    options=""
    [[ $variant == global ]] && options="-c image_processor.webhook_url=https://hooks.example.com/images"
    tps=$(PGOPTIONS="$options" runuser -u postgres -- "$pg_bin/pgbench" -h "$work" -p "$port" -n -c "$CLIENTS" \
      -j 2 -T "$SECS" -f "$work/flip.sql" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    printf 'round %s %-7s %8s transactions/s (%s clients, %s s, synchronous_commit %s)\n' \
      "$round" "$variant" "$tps" "$CLIENTS" "$SECS" "$commit"
  done
done
printf 'outbox rows written: %s; history buckets: %s\n' \
  "$("${psql[@]}" -c 'select count(*) from webhook_deliveries')" \
  "$("${psql[@]}" -c 'select count(*) from processed_images_history')"
