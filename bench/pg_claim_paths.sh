#!/usr/bin/env bash
# The queue's data model for variants (issue 18): job state on the rows themselves, or one
# narrow job table apart from the blobs? Evidence for docs/scaling.md, "Queue data model".
#
#   A  as migrated (sql/0015): processed_images and image_variants each carry their own queue
#      columns (status, priority, run_after, claim_seq, claimed_by, lease_expires_at, attempts,
#      lost_leases) and partial claim indexes; a worker claims from either table.
#   B  the same migrations, then reshaped: those columns and indexes dropped from both tables
#      (processed_images keeps `status`, which the API lists by; image_variants keeps only the
#      results), and one table `jobs(id identity, image_id, preset, format, status, priority,
#      run_after, claim_seq, claimed_by, lease_expires_at, attempts, lost_leases, started_at)`
#      with a partial claim index, a processing index and an image_id index (the foreign key's).
#      A claim updates only the jobs row and joins processed_images for the bytes (and
#      image_presets for a variant's pipeline); a completion updates the jobs row and writes the
#      result into the image or variant row, in one statement. The jobs row gets the
#      status-notify trigger the image and variant rows have (so claims notify in both models);
#      the image's status counters (sql/0008) stay on processed_images, which in B changes status
#      only at completion (pending -> completed; "processing" is the jobs rows').
#
# Starts a throwaway cluster with fsync on (max_wal_size 8 GB, a CHECKPOINT before each run, so
# no checkpoint lands inside one), migrates two template databases with the binary's `migrate`
# role, reshapes the B one, and for each case makes a fresh database per model from them. Cases:
#   tiny     claim + complete of an image job with a 64-byte original
#   big      the same with a 100 KB original (TOASTed, sent to the client)
#   variant  claim + complete of a variant job: the claim joins processed_images (original_data)
#            and image_presets (pipeline)
#   upload   one upload with 3 variants: A 1 image + 3 variant rows; B 1 image + 3 variant rows
#            (the results) + 4 jobs rows; durable, notifications left for after the commit (as
#            the API's connections do)
# A claim is one statement (FOR UPDATE SKIP LOCKED, priority desc, run_after; returns the
# original bytes), asynchronous (the workers' synchronous_commit=off); the completion is a
# second, fenced statement writing a 2 KB output with synchronous_commit on for its own commit
# and the status notification left for after it, as COMPLETE_JOB does. Pools are pre-filled
# (POOL image jobs, POOL/3 images x 3 variants, BIG_POOL 100 KB images) and re-queued and
# vacuumed between runs, so every run starts from the same queue; a run that drains its pool
# aborts its clients and is flagged.
#
# pgbench -M prepared, CLIENT_COUNTS clients, SECS seconds per run, ROUNDS rounds; in a round
# both models run back to back at each client count, A first in odd rounds and B first in
# even ones. Prints per run jobs (or uploads)/s and WAL bytes per transaction, then medians and
# the median of the per-round B/A ratios, then HOT updates / updates per table (summed over the
# runs) and the tables' sizes at the end. Needs root (runs PostgreSQL as postgres) and a
# debug build. About 7 minutes with the defaults on 2 cores.
#
#   bench/pg_claim_paths.sh [path/to/image-processor]
#   CLIENT_COUNTS="2 8" SECS=6 ROUNDS=3 CASES="tiny big variant upload" POOL=30000 BIG_POOL=5000
#   DURABLE=0: completions and uploads commit asynchronously too (the CPU cost without the
#   WAL flush, whose latency on a shared VM is most of the noise in the durable figures);
#   BIG_POOL is then 9000 (asynchronous 100 KB jobs reached 920/s, i.e. 5 500 in a 6 s run)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/image-processor}"
CLIENT_COUNTS="${CLIENT_COUNTS:-2 8}" SECS="${SECS:-6}" ROUNDS="${ROUNDS:-3}"
DURABLE="${DURABLE:-1}"
CASES="${CASES:-tiny big variant upload}" POOL="${POOL:-30000}"
BIG_POOL="${BIG_POOL:-$([[ $DURABLE == 1 ]] && echo 5000 || echo 9000)}"
commit=$([[ $DURABLE == 1 ]] && echo on || echo off)
pg_bin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"
work="$(mktemp -d /var/tmp/pg-claim.XXXXXX)"
chown postgres: "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
runuser -u postgres -- "$pg_bin/initdb" -D "$work/data" -U postgres --auth=trust >/dev/null
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/data" -l "$work/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $work -c fsync=on -c max_connections=50 -c max_wal_size=8GB -c checkpoint_timeout=1h -c shared_buffers=256MB" start >/dev/null
psql() { runuser -u postgres -- "$pg_bin/psql" -h "$work" -p "$port" -qAt -v ON_ERROR_STOP=1 "$@"; }
for m in a b; do
  psql -d postgres -c "create database tmpl_$m"
  DATABASE_URL="postgres://postgres@127.0.0.1:$port/tmpl_$m" "$BIN" migrate >"$work/migrate.log" 2>&1 ||
    { cat "$work/migrate.log"; exit 1; }
done
presets="insert into image_presets (name, pipeline) values
  ('thumb', '{\"steps\": [{\"op\": \"resize\", \"width\": 160, \"height\": 160}], \"format\": \"webp\"}'),
  ('small', '{\"steps\": [{\"op\": \"resize\", \"width\": 640, \"height\": 640}], \"format\": \"auto\"}'),
  ('large', '{\"steps\": [{\"op\": \"resize\", \"width\": 1600, \"height\": 1600}], \"format\": \"auto\"}')"
psql -d tmpl_a -c "$presets"
psql -d tmpl_b -c "$presets"
# Model B: the queue moves out of the blob tables into `jobs`.
psql -d tmpl_b <<'SQL'
-- What only the row-queue needs (they fire on retry, cancel, preset deletion; never in these runs).
DROP TRIGGER processed_images_variants_on_status ON processed_images;
DROP TRIGGER image_presets_on_delete ON image_presets;
DROP TRIGGER processed_images_wake_on_insert ON processed_images;
DROP TRIGGER processed_images_wake_on_update ON processed_images;
DROP TRIGGER image_variants_wake_on_insert ON image_variants;
DROP TRIGGER image_variants_wake_on_update ON image_variants;
DROP TRIGGER image_variants_status_on_insert ON image_variants;
DROP TRIGGER image_variants_status_on_update ON image_variants;
DROP TRIGGER processed_images_not_before ON processed_images;
DROP TRIGGER processed_images_not_before_changed ON processed_images;
-- Drops the queue indexes with them (claim, pending, lost, processing; variants' claim, unfinished).
ALTER TABLE processed_images DROP COLUMN priority, DROP COLUMN run_after, DROP COLUMN claim_seq,
    DROP COLUMN claimed_by, DROP COLUMN lease_expires_at, DROP COLUMN attempts,
    DROP COLUMN lost_leases;
DROP INDEX IF EXISTS processed_images_processing_idx;
ALTER TABLE image_variants DROP COLUMN status, DROP COLUMN priority, DROP COLUMN run_after,
    DROP COLUMN claim_seq, DROP COLUMN claimed_by, DROP COLUMN lease_expires_at,
    DROP COLUMN attempts, DROP COLUMN lost_leases, DROP COLUMN started_at;
CREATE TABLE jobs (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_id          UUID NOT NULL REFERENCES processed_images (id) ON DELETE CASCADE,
    preset            TEXT,                 -- NULL: the image's own pipeline
    format            TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    priority          SMALLINT NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    run_after         TIMESTAMPTZ NOT NULL DEFAULT now(),
    claim_seq         BIGINT NOT NULL DEFAULT 0,
    claimed_by        TEXT,
    lease_expires_at  TIMESTAMPTZ,
    attempts          INTEGER NOT NULL DEFAULT 0,
    lost_leases       INTEGER NOT NULL DEFAULT 0,
    started_at        TIMESTAMPTZ
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
        autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 1000);
CREATE INDEX jobs_claim_idx ON jobs (priority DESC, run_after) WHERE status = 'pending' AND lost_leases = 0;
CREATE INDEX jobs_processing_idx ON jobs (id) WHERE status = 'processing';
CREATE INDEX jobs_image_idx ON jobs (image_id);
CREATE TRIGGER jobs_wake_on_insert AFTER INSERT ON jobs FOR EACH STATEMENT
    WHEN (current_setting('image_processor.notify_after_commit', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION processed_images_wake_workers();
CREATE TRIGGER jobs_wake_on_update AFTER UPDATE OF status ON jobs FOR EACH ROW
    WHEN (NEW.status = 'pending' AND OLD.status IS DISTINCT FROM 'pending')
    EXECUTE FUNCTION processed_images_wake_workers();
CREATE FUNCTION jobs_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('image_status', NEW.image_id::text || ':' || NEW.status
                      || coalesce(':' || NEW.preset || ':' || NEW.format, ''));
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_status_on_update AFTER UPDATE OF status ON jobs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND current_setting('image_processor.status_notify_after_commit', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION jobs_status_event();
SQL

tiny="'\\x$(printf '%0128x' 0)'::bytea"                      # 64 bytes
out="'\\x$(head -c 2048 /dev/urandom | od -An -vtx1 | tr -d ' \n')'::bytea"   # the 2 KB output
durable="(select set_config('synchronous_commit', '$commit', true),
       set_config('image_processor.status_notify_after_commit', 'on', true)) durable"
result_cols="processed_at = now(), processed_data = $out, processed_bytes = 2048,
    processed_content_type = 'image/webp', processed_width = 16, processed_height = 16,
    blurhash = 'L00000fQfQfQfQfQfQfQfQfQfQfQ', dominant_color = '#808080', error = null, error_code = null"
variant_cols="processed_at = now(), data = $out, content_type = 'image/webp', bytes = 2048,
    width = 16, height = 16, error = null, error_code = null"
lease="claimed_by = 'w' || :client_id, attempts = j.attempts + 1, claim_seq = j.claim_seq + 1,
    lease_expires_at = now() + make_interval(secs => 300), started_at = now()"

# Scripts (one claim statement, one completion statement; each its own transaction).
cat >"$work/a_image.sql" <<SQL
with picked as (
    select id from processed_images
    where status = 'pending' and run_after <= now() and lost_leases = 0
    order by priority desc, run_after limit 1 for update skip locked)
update processed_images j set status = 'processing', $lease, error = null, error_code = null
from picked where j.id = picked.id
returning j.id, j.claim_seq as seq, j.original_data as orig, nullif(j.pipeline, 'null'::jsonb) as pipeline \gset
update processed_images set status = 'completed', $result_cols, claimed_by = null, lease_expires_at = null
from $durable
where id = :id and claimed_by = 'w' || :client_id and claim_seq = :seq and status = 'processing';
SQL
cat >"$work/a_variant.sql" <<SQL
with picked as (
    select image_id, preset, format from image_variants
    where status = 'pending' and run_after <= now() and lost_leases = 0
    order by priority desc, run_after limit 1 for update skip locked)
update image_variants j set status = 'processing', $lease, error = null, error_code = null
from picked join processed_images p on p.id = picked.image_id
     left join image_presets ps on ps.name = picked.preset
where (j.image_id, j.preset, j.format) = (picked.image_id, picked.preset, picked.format)
returning j.image_id as id, j.preset, j.format, j.claim_seq as seq, p.original_data as orig, ps.pipeline \gset
update image_variants set status = 'completed', $variant_cols, claimed_by = null, lease_expires_at = null
from $durable
where image_id = :id and preset = :preset and format = :format
  and claimed_by = 'w' || :client_id and claim_seq = :seq and status = 'processing';
SQL
# B: one claim for both kinds of job.
b_claim="with picked as (
    select id, image_id, preset from jobs
    where status = 'pending' and run_after <= now() and lost_leases = 0
    order by priority desc, run_after limit 1 for update skip locked)
update jobs j set status = 'processing', $lease
from picked join processed_images p on p.id = picked.image_id
     left join image_presets ps on ps.name = picked.preset
where j.id = picked.id
returning j.id, j.claim_seq as seq, p.original_data as orig,
    coalesce(ps.pipeline, nullif(p.pipeline, 'null'::jsonb)) as pipeline \gset"
b_done="update jobs set status = 'completed', claimed_by = null, lease_expires_at = null
    from $durable
    where id = :id and claimed_by = 'w' || :client_id and claim_seq = :seq and status = 'processing'
    returning image_id, preset, format"
cat >"$work/b_image.sql" <<SQL
$b_claim
with done as ($b_done)
update processed_images p set status = 'completed', $result_cols from done where p.id = done.image_id;
SQL
cat >"$work/b_variant.sql" <<SQL
$b_claim
with done as ($b_done)
update image_variants v set $variant_cols from done
where (v.image_id, v.preset, v.format) = (done.image_id, done.preset, done.format);
SQL
new_image="insert into processed_images (original_data, filename, original_content_type, original_width,
        original_height, original_bytes, original_frames, sha256)
    values ($tiny, 'upload.png', 'image/png', 16, 16, 64, 1, md5(random()::text) || md5(random()::text))
    returning id"
cat >"$work/a_upload.sql" <<SQL
with i as ($new_image)
insert into image_variants (image_id, preset)
select i.id, v.preset from i, (values ('thumb'), ('small'), ('large')) v (preset);
SQL
cat >"$work/b_upload.sql" <<SQL
with i as ($new_image),
v as (insert into image_variants (image_id, preset)
      select i.id, v.preset from i, (values ('thumb'), ('small'), ('large')) v (preset))
insert into jobs (image_id, preset)
select i.id, v.preset from i, (values (null), ('thumb'), ('small'), ('large')) v (preset);
SQL
chown postgres: "$work"/*.sql

# Pools: each case gets fresh databases (case_a, case_b) made from the templates.
image_fill() { # model, count, original expression, status
  local ids="insert into processed_images (original_data, filename, original_content_type, original_width,
      original_height, original_bytes, original_frames, sha256, status$([[ $1 == a ]] && echo ", run_after"))
    select $3, 'f.png', 'image/png', 16, 16, octet_length($3), 1, md5(g::text) || md5(g::text), '$4'
           $([[ $1 == a ]] && echo ", now() - g * interval '1 ms'")
    from generate_series(1, $2) g"
  echo "$ids"
}
fill() { # case, model
  local db="$1_$2" n
  case $1 in
    tiny|big)
      local orig=$tiny; n=$POOL
      [[ $1 == big ]] && orig="decode(repeat('ab', 102400), 'hex')" && n=$BIG_POOL
      psql -d "$db" -c "$(image_fill "$2" "$n" "$orig" pending)"
      [[ $2 == b ]] && psql -d "$db" -c "insert into jobs (image_id, run_after)
        select id, now() - row_number() over (order by sha256) * interval '1 ms' from processed_images"
      ;;
    variant)
      n=$((POOL / 3))
      psql -d "$db" -c "$(image_fill "$2" "$n" "$tiny" completed)"
      if [[ $2 == a ]]; then
        psql -d "$db" -c "insert into image_variants (image_id, preset, run_after)
          select id, p, now() - row_number() over (order by sha256, p) * interval '1 ms'
          from processed_images, unnest(array['thumb', 'small', 'large']) p"
      else
        psql -d "$db" -c "insert into image_variants (image_id, preset)
          select id, p from processed_images, unnest(array['thumb', 'small', 'large']) p" \
          -c "insert into jobs (image_id, preset, run_after)
          select id, p, now() - row_number() over (order by sha256, p) * interval '1 ms'
          from processed_images, unnest(array['thumb', 'small', 'large']) p"
      fi
      ;;
    upload) ;;
  esac
  psql -d "$db" -c "vacuum analyze"
}
requeue() { # case, model: everything claimed or completed back to pending, then vacuum
  local db="$1_$2"
  case "$1-$2" in
    tiny-a|big-a) psql -d "$db" -c "update processed_images set status = 'pending', processed_data = null,
        processed_bytes = null, processed_at = null, claimed_by = null, lease_expires_at = null
        where status in ('processing', 'completed')" -c "vacuum processed_images" ;;
    tiny-b|big-b) psql -d "$db" -c "update jobs set status = 'pending', claimed_by = null,
        lease_expires_at = null where status in ('processing', 'completed')" \
        -c "update processed_images set status = 'pending', processed_data = null, processed_bytes = null,
        processed_at = null where status = 'completed'" -c "vacuum processed_images" -c "vacuum jobs" ;;
    variant-a) psql -d "$db" -c "update image_variants set status = 'pending', data = null, bytes = null,
        processed_at = null, claimed_by = null, lease_expires_at = null
        where status in ('processing', 'completed')" -c "vacuum image_variants" ;;
    variant-b) psql -d "$db" -c "update jobs set status = 'pending', claimed_by = null,
        lease_expires_at = null where status in ('processing', 'completed')" \
        -c "update image_variants set data = null, bytes = null, processed_at = null where data is not null" \
        -c "vacuum image_variants" -c "vacuum jobs" ;;
    upload-*) ;;
  esac
}
pending() { # case, model
  case "$1-$2" in
    tiny-a|big-a) psql -d "$1_$2" -c "select count(*) from processed_images where status = 'pending'" ;;
    variant-a) psql -d "$1_$2" -c "select count(*) from image_variants where status = 'pending'" ;;
    *-b) psql -d "$1_$2" -c "select count(*) from jobs where status = 'pending'" ;;
  esac
}
upd_stats() { psql -d "$1" -c "select relname, n_tup_upd, n_tup_hot_upd from pg_stat_user_tables where n_tup_upd > 0"; }
lsn() { psql -d postgres -c "select pg_current_wal_lsn() - '0/0'::pg_lsn"; }

results="$work/results"   # case model clients round tps wal_per_tx
hot="$work/hot"           # case model table upd hot
: >"$results"; : >"$hot"
run() { # case, model, clients, round
  local c=$1 m=$2 n=$3 r=$4 db="$1_$2" script options="-c synchronous_commit=off"
  script="$work/${m}_$c.sql"
  case $c in tiny|big) script="$work/${m}_image.sql" ;; upload)
    options="-c image_processor.notify_after_commit=on -c synchronous_commit=$commit" ;; esac
  requeue "$c" "$m"
  psql -d postgres -c checkpoint
  upd_stats "$db" >"$work/before"
  local w0 w1 out tps tx
  w0=$(lsn)
  out=$(PGOPTIONS="$options" runuser -u postgres -- "$pg_bin/pgbench" -h "$work" -p "$port" -n -M prepared \
    -c "$n" -j "$(( n < 2 ? n : 2 ))" -T "$SECS" -f "$script" "$db" 2>&1) || true
  w1=$(lsn)
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
  tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
  if [[ -z $tps ]] || grep -q 'aborted\|error' <<<"$out"; then
    printf '%s\n' "$out" | grep -i 'abort\|error' | head -3 >&2
    echo "WARNING: $c/$m/$n clients round $r: clients aborted or no result (pool drained?); pending left: $(pending "$c" "$m")" >&2
    tps=${tps:-0}
  fi
  # a transaction of the claim scripts is one job (claim + completion)
  sleep 0.5  # let the exited backends flush their table statistics
  upd_stats "$db" >"$work/after"
  LC_ALL=C join -t"|" <(LC_ALL=C sort -t'|' -k1,1 "$work/before") <(LC_ALL=C sort -t'|' -k1,1 "$work/after") -a2 -e0 -o 0,1.2,1.3,2.2,2.3 |
    awk -F'|' -v c="$c" -v m="$m" '{print c, m, $1, $4-$2, $5-$3}' >>"$hot"
  local walpt=$(( tx > 0 ? (w1 - w0) / tx : 0 ))
  echo "$c $m $n $r $tps $walpt" >>"$results"
  printf 'round %s %-7s model %s %2s clients %9s /s  %6s WAL bytes/tx\n' "$r" "$c" "${m^^}" "$n" "$tps" "$walpt"
}

echo "start $(date -u '+%F %T UTC'), load $(cut -d' ' -f1-3 /proc/loadavg); completions and uploads: synchronous_commit $commit"
for c in $CASES; do
  for m in a b; do
    psql -d postgres -c "create database ${c}_$m template tmpl_$m"
    fill "$c" "$m"
  done
  for r in $(seq "$ROUNDS"); do
    for n in $CLIENT_COUNTS; do
      order="a b"; (( r % 2 == 0 )) && order="b a"
      for m in $order; do run "$c" "$m" "$n" "$r"; done
    done
  done
done
echo "end $(date -u '+%F %T UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== medians over $ROUNDS rounds (jobs/s; uploads/s for upload), B/A = median of per-round ratios =="
python3 - "$results" <<'PY'
import sys, statistics as st, collections
rows = [l.split() for l in open(sys.argv[1])]
d = collections.defaultdict(dict)
for c, m, n, r, tps, wal in rows:
    d[(c, int(n))][(m, int(r))] = (float(tps), int(wal))
print(f"{'case':8} {'clients':>7} {'A /s':>9} {'B /s':>9} {'B/A':>6} {'B/A per round':>22} {'WAL/tx A':>9} {'WAL/tx B':>9}")
for (c, n), v in d.items():
    rounds = sorted({r for _, r in v})
    a = [v[('a', r)][0] for r in rounds if ('a', r) in v]
    b = [v[('b', r)][0] for r in rounds if ('b', r) in v]
    ratios = [v[('b', r)][0] / v[('a', r)][0] for r in rounds
              if ('a', r) in v and ('b', r) in v and v[('a', r)][0] > 0]
    wa = st.median(v[('a', r)][1] for r in rounds if ('a', r) in v)
    wb = st.median(v[('b', r)][1] for r in rounds if ('b', r) in v)
    print(f"{c:8} {n:>7} {st.median(a):>9.0f} {st.median(b):>9.0f} {st.median(ratios):>6.2f} "
          f"{' '.join(f'{x:.2f}' for x in ratios):>22} {wa:>9.0f} {wb:>9.0f}")
PY
echo
echo "== HOT updates / updates during the runs, per case, model and table =="
awk '{k=$1" "$2" "$3; u[k]+=$4; h[k]+=$5} END {for (k in u) if (u[k] > 0) printf "%-40s %9d %9d %5.1f %%\n", k, u[k], h[k], 100*h[k]/u[k]}' "$hot" | sort
echo
echo "== sizes at the end (after the last run; kB), live rows; upload: bytes per upload over all tables =="
for c in $CASES; do
  for m in a b; do
    psql -d "${c}_$m" -F' ' -c "
      select '$c', '${m^^}', relname, n_live_tup,
             pg_relation_size(relid) / 1024, (pg_total_relation_size(relid) - pg_relation_size(relid)
               - pg_indexes_size(relid)) / 1024, pg_indexes_size(relid) / 1024,
             pg_total_relation_size(relid) / 1024
      from pg_stat_user_tables
      where relname in ('processed_images', 'image_variants', 'jobs') order by relname" |
      awk '{printf "%-8s %s %-17s rows %8d  heap %8d  toast %8d  indexes %7d  total %8d kB\n", $1, $2, $3, $4, $5, $6, $7, $8}'
    if [[ $c == upload ]]; then
      psql -d "${c}_$m" -c "select 'upload ${m^^}: ' || (sum(pg_total_relation_size(relid))
          / (select count(*) from processed_images))::int || ' bytes per upload (heap + toast + indexes)'
        from pg_stat_user_tables where relname in ('processed_images', 'image_variants', 'jobs')"
      psql -d "${c}_$m" -F' ' -c "select indexrelname, pg_relation_size(indexrelid) / 1024 from pg_stat_user_indexes
          where relname in ('processed_images', 'image_variants', 'jobs') order by 1" |
        awk '{printf "    index %-36s %8d kB\n", $1, $2}'
    fi
  done
done
