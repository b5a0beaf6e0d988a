"""`scripts/bench-table`: table health at a million rows (issue 15, item 10).

One throwaway cluster, one `image-processor api` (which applies the migrations), no workers:
  fill        N rows (default 1 000 000) by `INSERT ... SELECT generate_series` in batches, with
              one-byte blobs and realistic metadata (filename, pipeline, types, dimensions,
              errors): 97 % completed, 2 % failed, 1 % pending, uploaded over the last 30 days;
              then VACUUM ANALYZE, the steady state autovacuum reaches.
  http        sequential keep-alive requests to /api/stats and the list pages (newest first, by
              status, and keyset pages half-way down the table): median, p95, p99 in ms, timed
              by the client, so HTTP, JSON and the pool are included.
  plans       EXPLAIN of the list statements as the service sends them, generic plans forced
              (what the plan cache may switch to): which index each uses.
  reference   what the statements before sql/0008 cost on the same table (count(*) per status,
              completed in the last minute), timed on the server.
  heartbeats  rows claimed as the worker claims them, then renewed with the worker's heartbeat
              statement many times: the share of HOT updates, from pg_stat_user_tables.
Results: bench/results/table/latest.{json,md}; ratios against bench/results/table/baseline.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import signal
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

import psycopg

from . import ROOT, log
from .build import build_service, default_service_binary
from .cluster import start_postgres
from .procstat import cpu_model, loadavg
from .stack import Stack, free_port, wait_http
from .stats import pct, rnd

RESULTS = ROOT / "bench" / "results" / "table"
TARGET_MS = 10.0  # issue 15: p95 of /api/stats and list pages at 1 M rows
HOT_TARGET = 0.9  # heartbeats that are HOT updates

# The worker's statements (src/db/jobs.rs: CLAIM_JOBS without the columns it returns, and
# RENEW_LEASE as it is). Copied: keep them in step.
CLAIM = """with picked as (
    select id from processed_images where status = 'pending' and run_after <= now() and lost_leases = 0
    order by run_after limit %s for update skip locked)
update processed_images p
set status = 'processing', claimed_by = %s, attempts = p.attempts + 1, claim_seq = p.claim_seq + 1,
    lease_expires_at = now() + make_interval(secs => 30), started_at = now(), error = null, error_code = null
from picked where p.id = picked.id returning p.id, p.claim_seq"""
RENEW = ("update processed_images set lease_expires_at = now() + make_interval(secs => 30) "
         "where id = %s and claimed_by = %s and claim_seq = %s and status = 'processing'")

# src/db/images.rs LIST_IMAGES*, with the metadata columns the service selects.
COLUMNS = ("id, status, filename, error, error_code, attempts, uploaded_at, started_at, processed_at, pipeline, "
           "original_content_type, original_bytes, original_width, original_height, processed_content_type, "
           "processed_bytes, processed_width, processed_height")
LISTS = {
    "list": ("", "(bigint)"),
    "list_before": ("where (uploaded_at, id) < ($2, $3)", "(bigint, timestamptz, uuid)"),
    "list_status": ("where status = $2", "(bigint, text)"),
    "list_status_before": ("where status = $2 and (uploaded_at, id) < ($3, $4)", "(bigint, text, timestamptz, uuid)"),
}

FILL = """insert into processed_images (original_data, original_bytes, processed_data, processed_bytes, status,
    filename, pipeline, original_content_type, original_width, original_height, processed_content_type,
    processed_width, processed_height, attempts, claim_seq, error, error_code, uploaded_at, started_at, processed_at)
select '\\x00'::bytea, 1, case when s = 'completed' then '\\x00'::bytea end, case when s = 'completed' then 1 end, s,
    'IMG_' || g || '.jpg', '{"steps": [{"op": "resize", "width": 800, "height": 800, "fit": "contain"}]}'::jsonb,
    'image/jpeg', 4032, 3024, case when s = 'completed' then 'image/jpeg' end,
    case when s = 'completed' then 800 end, case when s = 'completed' then 600 end,
    case when s = 'pending' then 0 else 1 end, case when s = 'pending' then 0 else 1 end,
    case when s = 'failed' then 'the image is corrupt: unexpected end of file' end,
    case when s = 'failed' then 'corrupt_image' end,
    t, case when s <> 'pending' then t + interval '1 second' end,
    case when s <> 'pending' then t + interval '2 seconds' end
from (select g,
             case when g %% 100 = 7 then 'pending' when g %% 50 = 3 then 'failed' else 'completed' end as s,
             now() - make_interval(secs => 2592000.0 * (%(total)s - g) / %(total)s) as t
      from generate_series(%(lo)s, %(hi)s) g) rows"""


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="scripts/bench-table", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows to fill the table with (1000000)")
    ap.add_argument("--requests", type=int, default=300, help="timed requests per endpoint (300)")
    ap.add_argument("--heartbeats", type=int, default=200, help="heartbeats per claimed row (200)")
    ap.add_argument("--baseline", default=str(RESULTS / "baseline.json"),
                    help="earlier result JSON to compare with (bench/results/table/baseline.json)")
    ap.add_argument("--out", default=str(RESULTS), help="results directory (bench/results/table)")
    ap.add_argument("--fsync-off", dest="durable", action="store_false",
                    help="PostgreSQL without fsync (default: durable, as in production)")
    ap.add_argument("--bin", help="use this binary instead of building target/release/image-processor")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs)")
    return ap.parse_args(argv)


def fill(url: str, rows: int, batch=100_000) -> float:
    t = time.monotonic()
    with psycopg.connect(url, autocommit=True) as c:
        # As the API's connections do: the per-row status NOTIFYs are for uploads, not a bulk load.
        c.execute("set image_processor.notify_after_commit = on")
        for lo in range(1, rows + 1, batch):
            hi = min(lo + batch - 1, rows)
            c.execute(FILL, {"lo": lo, "hi": hi, "total": rows})
            log(f"filled {hi} rows")
        secs = time.monotonic() - t
        c.execute("vacuum analyze processed_images")
        c.execute("checkpoint")
    return secs


def size_of(url):
    with psycopg.connect(url, autocommit=True) as c:
        heap, total, idx = c.execute(
            "select pg_relation_size('processed_images'), pg_total_relation_size('processed_images'), "
            "pg_indexes_size('processed_images')").fetchone()
    return {"heap_mb": rnd(heap / 1e6, 1), "indexes_mb": rnd(idx / 1e6, 1), "total_mb": rnd(total / 1e6, 1)}


def cursor_at(url, offset, status=None):
    """The `before` cursor the API would give for the row at `offset` (newest first)."""
    where = "where status = %s" if status else ""
    params = (status, offset) if status else (offset,)
    with psycopg.connect(url, autocommit=True) as c:
        (cur,) = c.execute(
            f"select (extract(epoch from uploaded_at) * 1000000)::bigint || '_' || replace(id::text, '-', '') "
            f"from processed_images {where} order by uploaded_at desc, id desc offset %s limit 1", params).fetchone()
    return cur


def timed_gets(port: int, path: str, n: int, warmup=20) -> dict:
    """`n` sequential GETs on one keep-alive connection: latency to the full body, in ms."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    body = b""
    for i in range(warmup + n):
        t = time.perf_counter()
        conn.request("GET", path)
        res = conn.getresponse()
        body = res.read()
        dt_ms = (time.perf_counter() - t) * 1000
        if res.status != 200:
            sys.exit(f"bench-table: GET {path}: {res.status} {body[:200]!r}")
        if i >= warmup:
            times.append(dt_ms)
    conn.close()
    doc = json.loads(body)
    rows = len(doc["images"]) if "images" in doc else None
    return {"path": path, "n": n, "rows": rows, "p50_ms": rnd(statistics.median(times), 3),
            "p95_ms": rnd(pct(times, 95), 3), "p99_ms": rnd(pct(times, 99), 3), "max_ms": rnd(max(times), 3)}


def plans(url, cursor) -> dict:
    """The index (or scan) each list statement uses under a forced generic plan."""
    at, hexid = cursor.split("_")
    at_ts = dt.datetime.fromtimestamp(int(at) / 1e6, dt.timezone.utc).isoformat()
    args = {"list": "50", "list_before": f"50, '{at_ts}', '{hexid}'", "list_status": "50, 'failed'",
            "list_status_before": f"50, 'failed', '{at_ts}', '{hexid}'"}
    out = {}
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("set plan_cache_mode = force_generic_plan")
        for name, (where, types) in LISTS.items():
            c.execute(f"prepare {name}{types} as select {COLUMNS} from processed_images {where} "
                      f"order by uploaded_at desc, id desc limit $1")
            (plan,) = c.execute(f"explain (analyze, format json) execute {name}({args[name]})").fetchone()
            out[name] = {"scan": scan_of(plan[0]["Plan"]), "exec_ms": rnd(plan[0]["Execution Time"], 3)}
    return out


def scan_of(node) -> str:
    if "Index Name" in node:
        return f"{node['Node Type']} on {node['Index Name']}"
    if node["Node Type"] in ("Seq Scan", "Sort"):
        return node["Node Type"]
    for child in node.get("Plans", []):
        return scan_of(child)
    return node["Node Type"]


def reference(url, repeats=5) -> dict:
    """The statements /api/stats ran before sql/0008, on this table (server time, median)."""
    queries = {
        "count_by_status": "select status, count(*) from processed_images group by status",
        "completed_last_minute": "select count(*) from processed_images where status = 'completed' "
                                 "and processed_at > now() - interval '1 minute'",
        "stats_now": "select sum(pending), sum(processing), sum(completed), sum(failed), "
                     "(select coalesce(sum(n), 0) from processed_images_completions "
                     "where second >= date_trunc('second', now()) - interval '59 seconds') from processed_images_counts",
    }
    out = {}
    with psycopg.connect(url, autocommit=True) as c:
        for name, q in queries.items():
            times = []
            for _ in range(repeats):
                (plan,) = c.execute(f"explain (analyze, format json) {q}").fetchone()
                times.append(plan[0]["Execution Time"])
            out[name + "_ms"] = rnd(statistics.median(times), 3)
        exact = c.execute("select (select array[sum(pending), sum(processing), sum(completed), sum(failed)]::int8[] "
                          "from processed_images_counts) = (select array[count(*) filter (where status = 'pending'), "
                          "count(*) filter (where status = 'processing'), count(*) filter (where status = 'completed'), "
                          "count(*) filter (where status = 'failed')]::int8[] from processed_images)").fetchone()[0]
        out["counters_exact"] = bool(exact)
    return out


def heartbeats(url, per_row: int, rows=4) -> dict:
    """Claims `rows` fresh rows like a worker with 4 threads, renews each `per_row` times."""
    with psycopg.connect(url, autocommit=True) as c:
        # The worker's connections commit asynchronously (src/db/mod.rs, worker_pool).
        c.execute("set synchronous_commit = off")
        c.execute("set image_processor.notify_after_commit = on")
        c.execute("insert into processed_images (original_data, filename) select '\\x00', 'heartbeat' "
                  "from generate_series(1, %s)", (rows,))
        # Only these rows are runnable now: the filled pending rows wait (run_after in the future).
        c.execute("update processed_images set run_after = now() + interval '1 day' "
                  "where status = 'pending' and filename <> 'heartbeat'")
        claimed = c.execute(CLAIM, (rows, "bench-worker")).fetchall()
        c.execute("select pg_stat_force_next_flush()")
        before = c.execute("select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables "
                           "where relid = 'processed_images'::regclass").fetchone()
        t = time.monotonic()
        for _ in range(per_row):
            for rid, seq in claimed:
                c.execute(RENEW, (rid, "bench-worker", seq))
        secs = time.monotonic() - t
        c.execute("select pg_stat_force_next_flush()")
        want = len(claimed) * per_row
        upd = hot = 0
        end = time.time() + 10
        while time.time() < end:
            u, h = c.execute("select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables "
                             "where relid = 'processed_images'::regclass").fetchone()
            upd, hot = u - before[0], h - before[1]
            if upd >= want:
                break
            time.sleep(0.2)
    return {"rows": len(claimed), "heartbeats": want, "updates_counted": upd, "hot_updates": hot,
            "hot_ratio": rnd(hot / upd, 3) if upd else None, "mean_ms": rnd(secs * 1000 / max(want, 1), 3)}


def compare(result, baseline_path) -> dict | None:
    try:
        base = json.loads(Path(baseline_path).read_text())
    except (OSError, ValueError):
        return None
    ratios = {}
    for name, r in result["http"].items():
        b = base.get("http", {}).get(name)
        if b and b.get("p50_ms"):
            ratios[name] = {"p50": rnd(r["p50_ms"] / b["p50_ms"], 2), "p95": rnd(r["p95_ms"] / b["p95_ms"], 2)}
    hb, bhb = result["heartbeats"].get("hot_ratio"), base.get("heartbeats", {}).get("hot_ratio")
    return {"baseline": str(baseline_path), "baseline_time": base.get("time"), "latency_ratios": ratios,
            "hot_ratio": {"now": hb, "baseline": bhb}}


def targets(result) -> list:
    rows = []
    for name, r in result["http"].items():
        rows.append({"what": f"{name} p95 ≤ {TARGET_MS:g} ms", "value": r["p95_ms"], "met": r["p95_ms"] <= TARGET_MS})
    hot = result["heartbeats"].get("hot_ratio")
    rows.append({"what": f"heartbeats HOT ≥ {HOT_TARGET:.0%}", "value": hot, "met": hot is not None and hot >= HOT_TARGET})
    rows.append({"what": "counters = count(*)", "value": result["reference"]["counters_exact"],
                 "met": result["reference"]["counters_exact"]})
    return rows


def markdown(result) -> str:
    m = result["machine"]
    lines = [f"# Table health at {result['rows']:,} rows", "",
             f"{result['time']} · {m['cpu']} × {m['cores']} · load {m['loadavg']} · {result['postgres']} · "
             f"durable={result['durable']} · fill {result['fill_secs']} s · table {result['size']}", "",
             "| request | rows | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for name, r in result["http"].items():
        lines.append(f"| `{r['path']}` | {r['rows'] if r['rows'] is not None else ''} | {r['p50_ms']} | "
                     f"{r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} |")
    lines += ["", "| list statement (generic plan) | plan | server ms |", "|---|---|---|"]
    for name, p in result["plans"].items():
        lines.append(f"| {name} | {p['scan']} | {p['exec_ms']} |")
    ref = result["reference"]
    hb = result["heartbeats"]
    lines += ["", "| server time on this table | ms |", "|---|---|",
              f"| before sql/0008: `count(*)` per status | {ref['count_by_status_ms']} |",
              f"| before sql/0008: completed in the last minute | {ref['completed_last_minute_ms']} |",
              f"| now: the counters | {ref['stats_now_ms']} |", "",
              f"Heartbeats: {hb['hot_updates']} of {hb['updates_counted']} updates HOT "
              f"(ratio {hb['hot_ratio']}) over {hb['rows']} claimed rows, {hb['mean_ms']} ms each.", "",
              "| target | value | |", "|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['what']} | {t['value']} | {'met' if t['met'] else 'NOT met'} |")
    cmp = result.get("comparison")
    if cmp:
        lines += ["", f"Against {cmp['baseline']} ({cmp['baseline_time']}): p50/p95 ratios (now / then) "
                      + ", ".join(f"{k} {v['p50']}/{v['p95']}" for k, v in cmp["latency_ratios"].items())
                  + f"; HOT ratio {cmp['hot_ratio']['now']} (then {cmp['hot_ratio']['baseline']})."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    binary = args.bin or (default_service_binary() if args.no_build else build_service()[0])
    stack = Stack(keep_tmp=args.keep_tmp)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        cluster = start_postgres(stack, durable=args.durable)
        port = free_port()
        env = dict(os.environ, DATABASE_URL=cluster.url, RUST_LOG="warn", DATA_DIR=str(stack.tmp / "data"),
                   LISTEN_ADDR=f"127.0.0.1:{port}")
        api = stack.start("api", [binary, "api"], env)
        wait_http(f"http://127.0.0.1:{port}/readyz", api, "api", stack)
        log(f"filling processed_images with {args.rows} rows")
        fill_secs = fill(cluster.url, args.rows)
        log(f"filled in {fill_secs:.1f} s; measuring")
        deep = cursor_at(cluster.url, args.rows // 2)
        deep_failed = cursor_at(cluster.url, args.rows // 100, "failed")
        q = urllib.parse.quote
        endpoints = {
            "stats": "/api/stats",
            "list": "/api/images?limit=50",
            "list_before": f"/api/images?limit=50&before={q(deep)}",
            "list_failed": "/api/images?status=failed&limit=50",
            "list_failed_before": f"/api/images?status=failed&limit=50&before={q(deep_failed)}",
            "list_pending": "/api/images?status=pending&limit=50",
        }
        result = {
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "rows": args.rows, "durable": args.durable, "postgres": cluster.version,
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "loadavg": loadavg(),
                        "python": platform.python_version()},
            "fill_secs": rnd(fill_secs, 1), "size": size_of(cluster.url),
            "http": {name: timed_gets(port, path, args.requests) for name, path in endpoints.items()},
            "plans": plans(cluster.url, deep),
            "reference": reference(cluster.url),
            "heartbeats": heartbeats(cluster.url, args.heartbeats),
        }
        result["machine"]["loadavg_end"] = loadavg()
        result["targets"] = targets(result)
        result["comparison"] = compare(result, args.baseline)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
        md = markdown(result)
        (out / "latest.md").write_text(md)
        print(md)
        log(f"wrote {out / 'latest.json'} and latest.md (copy latest.json to baseline.json to keep it as the baseline)")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
