#!/usr/bin/env bash
# Idle pickup alone, A/B (issue 21: pickup p50 <= 1.5 ms). A throwaway cluster (fsync and
# synchronous_commit on), then for each round each binary in turn: one `run` process with
# WORKER_THREADS=4, N 16x16 PNG uploads through the API one at a time (keep-alive HTTP, the
# next sent once the previous is completed, as scripts/bench's pickup phase), and the p50 /
# p99 of started_at - uploaded_at (upload's INSERT start to the claim) from the table. The
# order alternates every round; the last lines give the medians per binary. Needs root.
#
#   bench/pickup_phase.sh A=/tmp/ip-before B=target/release/image-processor [N] [ROUNDS]
set -euo pipefail
declare -A BINS; LABELS=()
for a in "$@"; do case $a in *=*) BINS[${a%%=*}]=${a#*=}; LABELS+=("${a%%=*}");; esac; done
ARGS=(); for a in "$@"; do case $a in *=*) ;; *) ARGS+=("$a");; esac; done
N=${ARGS[0]:-300}; ROUNDS=${ARGS[1]:-3}
B=$(dirname $(ls /usr/lib/postgresql/*/bin/initdb | tail -1))
W=$(mktemp -d /var/tmp/pexp.XXXXXX); chown postgres "$W"
runuser -u postgres -- $B/initdb -D $W/d -U postgres --auth=trust >/dev/null
PGPORT=$((20000 + RANDOM % 20000))
runuser -u postgres -- $B/pg_ctl -D $W/d -l $W/log -o "-p $PGPORT -k $W -c listen_addresses=127.0.0.1" -w start >/dev/null
URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
PSQL=(runuser -u postgres -- psql -h $W -p $PGPORT -qAtX)
APP=
trap '[ -n "$APP" ] && kill $APP 2>/dev/null; runuser -u postgres -- $B/pg_ctl -D $W/d -m immediate stop >/dev/null; rm -rf $W' EXIT
python3 -c "
import struct,zlib
def chunk(t,d): return struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d)&0xffffffff)
raw=b''.join(b'\x00'+b'\x80\x40\x20'*16 for _ in range(16))
open('$W/tiny.png','wb').write(b'\x89PNG\r\n\x1a\n'+chunk(b'IHDR',struct.pack('>IIBBBBB',16,16,8,2,0,0,0))+chunk(b'IDAT',zlib.compress(raw))+chunk(b'IEND',b''))"
declare -A P50 P99
for round in $(seq $ROUNDS); do
  order=("${LABELS[@]}"); [ $((round % 2)) = 0 ] && order=($(printf '%s\n' "${LABELS[@]}" | tac))
  for label in "${order[@]}"; do
    PORT=$((40000 + RANDOM % 20000))
    DATABASE_URL=$URL LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn WORKER_THREADS=4 ${BINS[$label]} run > $W/app.log 2>&1 &
    APP=$!
    for _ in $(seq 60); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.5; done
    "${PSQL[@]}" -c "truncate processed_images cascade" >/dev/null
    python3 - "$PORT" "$W/tiny.png" "$N" <<'PY'
import http.client, json, sys, time
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = open(path, 'rb').read()
c = http.client.HTTPConnection('127.0.0.1', port)
for _ in range(n):
    c.request('POST', '/api/images', body, {'content-type': 'image/png'})
    r = c.getresponse(); image = json.loads(r.read())
    c.request('GET', f"/api/images/{image['id']}?wait=10"); r = c.getresponse(); r.read()
    time.sleep(0.005)
PY
    read p50 p99 < <("${PSQL[@]}" -F ' ' -c "select round((percentile_cont(0.5) within group (order by ms))::numeric, 3), round((percentile_cont(0.99) within group (order by ms))::numeric, 3) from (select extract(epoch from started_at - uploaded_at) * 1000 as ms from processed_images where attempts = 1) t")
    echo "round $round $label: pickup p50 $p50 ms, p99 $p99 ms"
    P50[$label]+="$p50 "; P99[$label]+="$p99 "
    kill $APP; wait $APP 2>/dev/null || true; APP=
  done
done
for label in "${LABELS[@]}"; do
  echo "$label: p50 median $(echo ${P50[$label]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ms of [${P50[$label]% }], p99 median $(echo ${P99[$label]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ms"
done
