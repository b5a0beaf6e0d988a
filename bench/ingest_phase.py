"""The ingest phase alone, A/B: run by bench/ingest_phase.sh (which starts the cluster).

For each round, each binary in turn (A B A B ... with the order swapped every other round, so
neither always runs second): start `<bin> api`, one warm-up second of uploads, then the same
flood as `scripts/bench`'s ingest phase (bench/harness/phases.py run_ingest: CLIENTS clients in
PROCS forked processes posting the ~100 KB JPEG as multipart with width=800&height=800, no
workers running) for SECS seconds, then stop the API. Per run: uploads/s, CPU per upload of the
API, the PostgreSQL backends and background processes and the load driver, WAL bytes and WAL
syncs per upload, iowait and other load (cores). Then the medians per binary, the median of the
per-round B/A ratios, and the top statements of each binary's last run (pg_stat_statements,
track=all: trigger statements are listed on their own too).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.corpus import FIELDS, multipart  # noqa: E402
from harness.db import sql  # noqa: E402
from harness.load import ingest_client  # noqa: E402
from harness.procstat import children_of, cpu_of, machine_busy_s, machine_iowait_s, pg_roles_cpu  # noqa: E402
from harness.stack import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def ingest_file() -> bytes:
    """The harness's ingest file (bench/corpus/ingest-100k.jpg), generated the same way if absent."""
    cached = ROOT / "bench" / "corpus" / "ingest-100k.jpg"
    if cached.exists():
        return cached.read_bytes()
    subprocess.run(["cargo", "build", "--release", "--locked", "--example", "photo"], cwd=ROOT, check=True)
    tool = ROOT / "target" / "release" / "examples" / "photo"
    with tempfile.TemporaryDirectory(prefix="ingest-corpus.") as d:
        tries = []
        for q in range(80, 99, 2):
            out = Path(d) / f"ingest-q{q}.jpg"
            subprocess.run([str(tool), "720x540", "900", str(q), str(out)], check=True)
            tries.append(out)
        best = min(tries, key=lambda p: abs(p.stat().st_size - 100_000))
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(best.read_bytes())  # what harness/corpus.py writes there too
        return cached.read_bytes()


def wait_ready(base, proc):
    import urllib.request

    for _ in range(120):
        if proc.poll() is not None:
            sys.exit(f"ingest_phase: the API exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.25)
    sys.exit("ingest_phase: the API did not become ready")


def flood(base, body, ctype, clients, procs, secs):
    mpc = mp.get_context("fork")
    q = mpc.Queue()
    start_at = time.time() + 0.5
    stop_at = start_at + secs
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ps = [mpc.Process(target=ingest_client, args=(base, body, ctype, c, start_at, stop_at, q)) for c in per if c]
    for p in ps:
        p.start()
    res = [q.get(timeout=secs + 120) for _ in ps]
    for p in ps:
        p.join(30)
    return res, start_at


def wal_lsn(url):
    return sql(url, "select pg_current_wal_lsn() - '0/0'::pg_lsn")[0][0]


def wal_syncs(url):
    return sql(url, "select wal_sync, wal_write from pg_stat_wal")[0]


def run_one(label, binary, url, pg_pid, body, ctype, args, env):
    if os.environ.get(f"SQL_{label}"):  # SQL_<label>: run before each of that label's runs
        sql(url, os.environ[f"SQL_{label}"], fetch=False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(args.tmp / f"api-{label}.log", "ab")
    # ENV_<label>="NAME=value ...": extra environment for that label's API (e.g. RUST_LOG=warn).
    extra = dict(kv.split("=", 1) for kv in os.environ.get(f"ENV_{label}", "").split())
    proc = subprocess.Popen([binary, "api"], env=dict(env, LISTEN_ADDR=f"127.0.0.1:{port}", **extra),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(base, proc)
        flood(base, body, ctype, args.clients, args.procs, 1.0)  # warm-up: connections, caches
        sql(url, "truncate processed_images", fetch=False)
        sql(url, "checkpoint", fetch=False)
        time.sleep(0.5)
        sql(url, "select pg_stat_statements_reset()")
        sql(url, "select pg_stat_reset_shared('wal')")
        lsn0 = wal_lsn(url)
        api0, pg0, m0, io0 = cpu_of(proc.pid), pg_roles_cpu(pg_pid), machine_busy_s(), machine_iowait_s()
        w0 = time.monotonic()
        perf = None
        if os.environ.get("PERF"):  # PERF=prefix: a system-wide profile of each run, for `perf report`
            perf = subprocess.Popen(["perf", "record", "-a", "-g", "-q", "-o", f"{os.environ['PERF']}.{label}.data",
                                     "--", "sleep", str(args.secs)], stdout=subprocess.DEVNULL)
        elif os.environ.get("PERF_API"):  # PERF_API=prefix: the API process alone, DWARF call graphs
            perf = subprocess.Popen(["perf", "record", "-p", str(proc.pid), "--call-graph", "dwarf,16384", "-F", "999",
                                     "-q", "-o", f"{os.environ['PERF_API']}.{label}.data", "--", "sleep", str(args.secs)],
                                    stdout=subprocess.DEVNULL)
        elif os.environ.get("PERF_PG"):  # PERF_PG=prefix: this cluster's processes alone
            pids = ",".join(str(p) for p, _ in children_of(pg_pid))
            perf = subprocess.Popen(["perf", "record", "-p", pids, "-g", "-q", "-o",
                                     f"{os.environ['PERF_PG']}.{label}.data", "--", "sleep", str(args.secs)],
                                    stdout=subprocess.DEVNULL)
        res, _ = flood(base, body, ctype, args.clients, args.procs, args.secs)
        if perf:
            perf.wait()
        wall = time.monotonic() - w0
        api1, pg1, m1, io1 = cpu_of(proc.pid), pg_roles_cpu(pg_pid), machine_busy_s(), machine_iowait_s()
        lsn1 = wal_lsn(url)
        syncs = wal_syncs(url)
        top = sql(url, """select calls, total_exec_time, wal_bytes, regexp_replace(query, '\\s+', ' ', 'g')
                          from pg_stat_statements where query not like '%%pg_stat%%'
                            and query not ilike 'truncate%%' and query not ilike 'checkpoint%%'
                            and query not like 'select pg_current_wal_lsn%%'
                          order by total_exec_time desc limit %s""", (args.top,))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    acc = sum(r[0] for r in res)
    n = max(acc, 1)
    busy = sum(r[1] for r in res)
    other = sum(r[3] for r in res)
    lat = sorted(x * 1000 for r in res for x in r[4])
    driver = sum(r[5] for r in res)
    pgb = pg1["backends"] - pg0["backends"]
    pgbg = (pg1["background"] + pg1["exited"]) - (pg0["background"] + pg0["exited"])
    api = api1 - api0
    mine = api + pgb + pgbg + driver
    return {
        "label": label, "per_s": acc / args.secs, "accepted": acc, "busy": busy, "other": other,
        "p50": lat[len(lat) // 2] if lat else 0.0, "api_ms": 1000 * api / n, "pg_ms": 1000 * pgb / n,
        "pgbg_ms": 1000 * pgbg / n, "driver_ms": 1000 * driver / n, "wal_kb": (lsn1 - lsn0) / n / 1024,
        "syncs": syncs[0] / n, "iowait": (io1 - io0) / wall, "other_load": max(0.0, (m1 - m0) - mine) / wall,
        "top": top,
    }


def show(r):
    print(f"  {r['label']}: {r['per_s']:7.1f} uploads/s  p50 {r['p50']:5.1f} ms  | ms CPU/upload: API {r['api_ms']:.3f}"
          f"  PG backends {r['pg_ms']:.3f}  PG bg {r['pgbg_ms']:.3f}  driver {r['driver_ms']:.3f}"
          f"  | WAL {r['wal_kb']:.1f} KB, {r['syncs']:.3f} syncs/upload | iowait {r['iowait']:.2f}"
          f"  other {r['other_load']:.2f} cores"
          + (f"  | 503s {r['busy']} errors {r['other']}" if r["busy"] or r["other"] else ""), flush=True)


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("pg_pid", type=int)
    ap.add_argument("tmp", type=Path)
    ap.add_argument("binaries", nargs="+", help="LABEL=PATH or PATH")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 3)))
    ap.add_argument("--secs", type=float, default=float(os.environ.get("SECS", 5)))
    ap.add_argument("--clients", type=int, default=int(os.environ.get("CLIENTS", 32)))
    ap.add_argument("--procs", type=int, default=int(os.environ.get("PROCS", 2)))
    ap.add_argument("--top", type=int, default=int(os.environ.get("TOP", 10)))
    args = ap.parse_args()
    bins = []
    for i, b in enumerate(args.binaries):
        label, _, path = b.rpartition("=")
        bins.append((label or "ABCDEFGH"[i % 8], path))
    # FILE=path: upload that file instead (e.g. a corpus photo, for the large-upload path).
    name = Path(os.environ["FILE"]).name if os.environ.get("FILE") else "ingest-100k.jpg"
    data = Path(os.environ["FILE"]).read_bytes() if os.environ.get("FILE") else ingest_file()
    body, ctype = multipart(name, data, FIELDS)
    env = dict(os.environ, DATABASE_URL=args.url, RUST_LOG=os.environ.get("RUST_LOG", "info"),
               LOG_FORMAT="text", DATA_DIR=str(args.tmp / "data"))
    print(f"ingest: {args.clients} clients in {args.procs} processes, {len(data)} bytes, multipart "
          f"{' & '.join(f'{k}={v}' for k, v in FIELDS.items())}, {args.secs} s per run, {args.rounds} rounds, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    results = {label: [] for label, _ in bins}
    for rnd in range(args.rounds):
        order = bins if rnd % 2 == 0 else list(reversed(bins))
        print(f"round {rnd + 1}", flush=True)
        for label, path in order:
            r = run_one(label, path, args.url, args.pg_pid, body, ctype, args, env)
            results[label].append(r)
            show(r)
    print("\nmedians:")
    for label, _ in bins:
        rs = results[label]
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k not in ("label", "top")}
        show(dict(med, label=label, busy=0, other=0))
    if len(bins) > 1:
        a = bins[0][0]
        for label, _ in bins[1:]:
            ratios = [b["per_s"] / x["per_s"] for x, b in zip(results[a], results[label]) if x["per_s"]]
            print(f"  {label}/{a} uploads/s per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
                  f"median {statistics.median(ratios):.2f}")
    for label, _ in bins:
        r = results[label][-1]
        print(f"\ntop statements, {label} (last run, {r['accepted']} uploads): calls | total ms | ms/upload | "
              f"WAL KB/call | statement")
        for calls, total, wal, q in r["top"]:
            print(f"  {calls} | {total:.0f} | {total / max(r['accepted'], 1):.3f} | "
                  f"{float(wal) / max(calls, 1) / 1024:.1f} | {q[:110]}")


if __name__ == "__main__":
    main()
