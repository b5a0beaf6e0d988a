#!/usr/bin/env bash
# The ingest phase alone, A/B, with its statements (issue 21: "ingest, 100 KB uploads, durable",
# 1 142 uploads/s at the first release, 754/s in the latest bench, target >= 2 000/s).
#
# A throwaway cluster with the bench's settings (fsync, synchronous_commit and full_page_writes
# on, shared_buffers 256MB, pg_stat_statements with track=all, so trigger statements are listed
# on their own), then for each round each binary in turn: `<bin> api` (no workers, as in
# scripts/bench), the bench's own ingest clients (bench/harness/load.py ingest_client: 32
# clients in 2 processes posting the ~100 KB JPEG as multipart with width=800&height=800; the
# API with RUST_LOG=info and text logs, as the bench starts it), and per run uploads/s, CPU ms
# per upload (API, PostgreSQL backends and background, load driver), WAL KB and WAL syncs per
# upload, iowait and other load; then medians per binary, the per-round
# B/A ratios and the top statements of each binary's last run. The order alternates every round.
# DISABLE="trigger ..." turns triggers of processed_images off first, to attribute cost;
# SQL_<label>="..." runs that SQL before each run of the binary labelled so (an A/B of schema
# changes with one binary: A=bin B=bin SQL_B="alter table ... disable trigger ..."), and
# ENV_<label>="NAME=value ..." adds to that label's API environment (e.g. ENV_B="RUST_LOG=warn").
# FILE=path uploads that file instead (FILE=bench/corpus/photo-3000x4000-0.jpg CLIENTS=8 PROCS=1:
# the large-upload path, COPY from 1 MiB up).
# Needs root (PostgreSQL runs as postgres), built binaries, and the bench venv (scripts/bench
# makes it; this reuses .venv-bench/driver).
#
#   bench/ingest_phase.sh target/release/image-processor
#   ROUNDS=5 SECS=5 bench/ingest_phase.sh A=/tmp/ip-before B=target/release/image-processor
#   DISABLE="processed_images_count_insert processed_images_count_flush" bench/ingest_phase.sh BIN
#   SQL_A="alter table processed_images enable trigger user" \
#   SQL_B="alter table processed_images disable trigger processed_images_count_flush" \
#     bench/ingest_phase.sh A=BIN B=BIN
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${BENCH_VENV:-$ROOT/.venv-bench/driver}/bin/python
[[ -x $PY ]] || { echo "no $PY: run scripts/bench --help once to create the bench venv" >&2; exit 1; }
B=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
W=$(mktemp -d /var/tmp/ingest.XXXXXX); chown postgres "$W"
runuser -u postgres -- "$B/initdb" -D "$W/d" -U postgres --auth=trust -E UTF8 >/dev/null
PGPORT=$((20000 + RANDOM % 20000))
runuser -u postgres -- "$B/pg_ctl" -D "$W/d" -l "$W/log" -w -o "-p $PGPORT -k $W -c listen_addresses=127.0.0.1 \
  -c max_connections=300 -c shared_buffers=256MB -c shared_preload_libraries=pg_stat_statements \
  -c pg_stat_statements.track=all -c fsync=on -c synchronous_commit=on -c full_page_writes=on" start >/dev/null
trap 'runuser -u postgres -- "$B/pg_ctl" -D "$W/d" -m immediate stop >/dev/null 2>&1; rm -rf "$W"' EXIT
URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
PSQL=(runuser -u postgres -- psql -h "$W" -p "$PGPORT" -qAtX)
"${PSQL[@]}" -c "create extension pg_stat_statements" >/dev/null
PGPID=$(head -1 "$W/d/postmaster.pid")
# The schema, from the first binary (every API start checks it is current).
first=${1#*=}
DATABASE_URL=$URL RUST_LOG=warn "$first" migrate >/dev/null
for t in ${DISABLE:-}; do "${PSQL[@]}" -c "alter table processed_images disable trigger $t"; done
echo "triggers on processed_images: $("${PSQL[@]}" -c "select string_agg(tgname || case when tgenabled = 'D' then ' (off)' else '' end, ' ' order by tgname) from pg_trigger where tgrelid = 'processed_images'::regclass and not tgisinternal" 2>/dev/null || echo '(none yet)')"
PYTHONPATH="$ROOT/bench" "$PY" -u "$ROOT/bench/ingest_phase.py" "$URL" "$PGPID" "$W" "$@"
