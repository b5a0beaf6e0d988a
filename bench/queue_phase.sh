#!/usr/bin/env bash
# The queue phase alone, with its statements: N tiny (16x16) PNG rows inserted by one SQL
# statement into a throwaway cluster (fsync on, pg_stat_statements with track=all, so trigger
# statements are listed too), one `run` process with WORKER_THREADS=4, insert to last
# completion. Prints jobs/s and the top statements by server time. DISABLE="trigger ..." turns
# triggers of processed_images off first, to attribute cost (issue 21: the queue phase fell
# from 2 298 to about 1 000 jobs/s; turning off the counters' update and flush, webhook and
# variants triggers gave 1.3-1.6x in three back-to-back pairs, the webhook and variants row
# triggers alone 1.04-1.18x). Also prints the CPU time per job of the service and of all
# PostgreSQL processes (backends that exited meanwhile are not counted). Needs root (PostgreSQL runs as postgres) and a built binary.
#
#   bench/queue_phase.sh target/release/image-processor [N]
#   DISABLE="processed_images_webhook_event" bench/queue_phase.sh target/release/image-processor
set -euo pipefail
BIN=$1; N=${2:-5000}
B=$(dirname $(ls /usr/lib/postgresql/*/bin/initdb | tail -1))
W=$(mktemp -d /var/tmp/qexp.XXXXXX); chown postgres "$W"
runuser -u postgres -- $B/initdb -D $W/d -U postgres --auth=trust >/dev/null
PGPORT=$((20000 + RANDOM % 20000))
runuser -u postgres -- $B/pg_ctl -D $W/d -l $W/log -o "-p $PGPORT -k $W -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" -w start >/dev/null
URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
PSQL=(runuser -u postgres -- psql -h $W -p $PGPORT -qAtX)
"${PSQL[@]}" -c "create extension pg_stat_statements" >/dev/null
PORT=$((40000 + RANDOM % 20000))
DATABASE_URL=$URL LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn WORKER_THREADS=4 $BIN run > $W/app.log 2>&1 &
APP=$!
trap 'kill $APP 2>/dev/null; runuser -u postgres -- $B/pg_ctl -D $W/d -m immediate stop >/dev/null; rm -rf $W' EXIT
for _ in $(seq 60); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.5; done
python3 -c "
import struct,zlib
def chunk(t,d): return struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d)&0xffffffff)
raw=b''.join(b'\x00'+b'\x80\x40\x20'*16 for _ in range(16))
open('$W/tiny.png','wb').write(b'\x89PNG\r\n\x1a\n'+chunk(b'IHDR',struct.pack('>IIBBBBB',16,16,8,2,0,0,0))+chunk(b'IDAT',zlib.compress(raw))+chunk(b'IEND',b''))"
HEX=$(xxd -p $W/tiny.png | tr -d '\n')
"${PSQL[@]}" -c "select tgname from pg_trigger where tgrelid = 'processed_images'::regclass and not tgisinternal order by 1" | tr '\n' ' '; echo
for t in ${DISABLE:-}; do "${PSQL[@]}" -c "alter table processed_images disable trigger $t"; done
"${PSQL[@]}" -c "select pg_stat_statements_reset()" >/dev/null
# CPU seconds (user + system) of the service process and of every PostgreSQL process.
cpu_of() { awk '{ t += $14 + $15 } END { printf "%.2f", t / '"$(getconf CLK_TCK)"' }' $(for p in "$@"; do echo /proc/$p/stat; done) 2>/dev/null; }
pg_pids() { pgrep -u postgres -d ' ' postgres; }
app0=$(cpu_of $APP); pg0=$(cpu_of $(pg_pids))
t0=$(date +%s.%N)
"${PSQL[@]}" -c "insert into processed_images (original_data, filename) select '\\x$HEX'::bytea, 'q' from generate_series(1,$N)"
while true; do left=$("${PSQL[@]}" -c "select count(*) from processed_images where status not in ('completed','failed')"); [ "$left" = 0 ] && break; sleep 0.05; done
t1=$(date +%s.%N)
app1=$(cpu_of $APP); pg1=$(cpu_of $(pg_pids))
echo "jobs/s: $(echo "$N / ($t1 - $t0)" | bc -l | cut -c1-7)  failed: $("${PSQL[@]}" -c "select count(*) from processed_images where status='failed'")"
echo "CPU ms per job: service $(echo "($app1 - $app0) * 1000 / $N" | bc -l | cut -c1-5)  PostgreSQL $(echo "($pg1 - $pg0) * 1000 / $N" | bc -l | cut -c1-5)  (wall $(echo "($t1 - $t0) * 1000 / $N" | bc -l | cut -c1-5) ms per job on $(nproc) cores)"
"${PSQL[@]}" -F ' | ' -c "select calls, round(total_exec_time::numeric,1) total_ms, round((total_exec_time/calls)::numeric,3) mean_ms, left(regexp_replace(query, '\s+', ' ', 'g'), 90) from pg_stat_statements order by total_exec_time desc limit 12"
