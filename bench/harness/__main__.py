"""`scripts/bench`: the command line, and the run: which phase runs when, against what."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import harness

from . import NPROC, ROOT, log
from .build import build_photo_tool, build_service, default_service_binary
from .cluster import start_postgres
from .corpus import build_corpus
from .phases import (run_e2e, run_ingest, run_pickup, run_queue, run_upload_memory, run_variants,
                     run_vips_reference)
from .procstat import cpu_model, loadavg, mem_gb
from .report import write_outputs
from .services import Seed, Service
from .stack import Stack
from .stats import E2E_KEYS, compare, derive, med, median_summary, rnd


def default_seed_dir() -> str:
    """../shared/peers/seed beside the checkout, or beside the main checkout from a git worktree."""
    r = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
                       cwd=ROOT, capture_output=True, text=True)
    roots = [ROOT] + ([Path(r.stdout.strip()).parent] if r.returncode == 0 and r.stdout.strip() else [])
    for root in roots:
        if (root.parent / "shared" / "peers" / "seed").is_dir():
            return str(root.parent / "shared" / "peers" / "seed")
    return str(ROOT.parent / "shared" / "peers" / "seed")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="scripts/bench", description=harness.__doc__.split("\n\nLayout")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="about a minute: shorter phases, one repeat")
    ap.add_argument("--against-seed", nargs="?", const=default_seed_dir(), default=None,
                    metavar="DIR", help="also run the seed peer (default dir ../shared/peers/seed) and compute ratios")
    ap.add_argument("--baseline", metavar="FILE", help="an earlier result JSON: print and record ratios")
    ap.add_argument("--corpus", metavar="DIR", help="photos to use instead of the generated corpus")
    ap.add_argument("--workers", type=int, default=1, help="worker processes for the headline figures (1)")
    ap.add_argument("--threads", type=int, default=4, help="WORKER_THREADS for the headline figures (4)")
    ap.add_argument("--scaling", default="1,2,4", help="worker-process counts for the scaling curve ('' to skip)")
    ap.add_argument("--scaling-threads", type=int, default=1, help="WORKER_THREADS per process in the scaling curve (1)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients for end-to-end phases (8)")
    ap.add_argument("--ingest-clients", type=int, default=32, help="concurrent clients for the ingest phase (32)")
    ap.add_argument("--ingest-procs", type=int, default=2, help="client processes for the ingest phase (2)")
    ap.add_argument("--memory-clients", type=int, default=8,
                    help="uploads in flight for the API-memory phase (8; the largest corpus photo each)")
    ap.add_argument("--repeats", type=int, help="repeats of the headline phases (3; quick 1); medians are quoted")
    ap.add_argument("--photo-secs", type=float, help="length of a photo phase (8; quick 4)")
    ap.add_argument("--small-secs", type=float, help="length of a small-image phase (5; quick 3)")
    ap.add_argument("--ingest-secs", type=float, help="length of the ingest phase (5; quick 3)")
    ap.add_argument("--pickup-n", type=int, help="sequential uploads for pickup latency (100; quick 40)")
    ap.add_argument("--queue-n", type=int, help="tiny rows for the queue-overhead phase (5000; quick 2000)")
    ap.add_argument("--variants-n", type=int, help="tiny images (each with 3 variants) for the variants phase "
                                                  "(1500; quick 600)")
    ap.add_argument("--fsync-off", dest="durable", action="store_false",
                    help="PostgreSQL with fsync, synchronous_commit and full_page_writes off: the service's own cost "
                         "without the disk's (default: on, as in production)")
    # Kept so older command lines still work; durable is the default now.
    ap.add_argument("--durable", dest="durable", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bin", help="use this binary instead of building target/release/image-processor")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results directory (bench/results)")
    ap.add_argument("--rust-log", default="info", help="RUST_LOG for the service (info)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs) for debugging")
    ap.add_argument("--render", metavar="FILE", help="only re-render the report from a result JSON (no run)")
    args = ap.parse_args(argv)
    q = args.quick
    if not args.render:
        args.repeats = args.repeats or (1 if q else 3)
        args.photo_secs = args.photo_secs or (4 if q else 8)
        args.small_secs = args.small_secs or (3 if q else 5)
        args.ingest_secs = args.ingest_secs or (3 if q else 5)
        args.pickup_n = args.pickup_n or (40 if q else 100)
        args.queue_n = args.queue_n or (2000 if q else 5000)
        args.variants_n = args.variants_n or (600 if q else 1500)
    return args


def git_info():
    def g(*a):
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip()
    return {"rev": g("rev-parse", "--short", "HEAD"),
            "dirty": bool(g("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock", "sql"))}


def run_headline(ctx, service, ours, seed, seed_t, args):
    """The configured worker set, side by side with the seed, alternating which goes first."""
    W, T = args.workers, args.threads
    log(f"headline: {W} worker process(es) x WORKER_THREADS={T}, {args.clients} clients, {args.repeats} repeat(s)")
    service.start_workers(W, T)
    head = {"workers": W, "threads": T, "clients": args.clients}
    head["pickup"] = run_pickup(ctx, service, args.pickup_n, 0.02)
    runs = {("ours", "photos"): [], ("ours", "small"): [], ("seed", "photos"): [], ("seed", "small"): []}
    ctx["statements"] = True
    for r in range(args.repeats):
        for kind, secs in (("photos", args.photo_secs), ("small", args.small_secs)):
            order = [ours, seed_t] if r % 2 == 0 else [seed_t, ours]
            for t in order:
                if t:
                    runs[(t["kind"], kind)].append(run_e2e(ctx, t, kind, args.clients, secs))
    for kind in ("photos", "small"):
        head[kind] = {"ours": median_summary(runs[("ours", kind)], E2E_KEYS)}
        if seed:
            head[kind]["seed"] = median_summary(runs[("seed", kind)], E2E_KEYS)
            # per-repeat ratios (each pair ran back to back), then their median
            pairs = [a["per_s"] / b["per_s"] for a, b in zip(runs[("ours", kind)], runs[("seed", kind)])
                     if a.get("per_s") and b.get("per_s")]
            head[kind]["ratio"] = rnd(med(pairs), 2)
            head[kind]["ratios"] = [rnd(x, 2) for x in pairs]
    ctx["statements"] = False
    qruns = [run_queue(ctx, service, args.queue_n) for _ in range(args.repeats)]
    head["queue"] = dict(qruns[sorted(range(len(qruns)), key=lambda i: qruns[i]["jobs_per_s"] or 0)[len(qruns) // 2]])
    head["queue"]["all_jobs_per_s"] = [x["jobs_per_s"] for x in qruns]
    vruns = [run_variants(ctx, service, args.variants_n) for _ in range(args.repeats)]
    head["variants"] = dict(vruns[sorted(range(len(vruns)), key=lambda i: vruns[i]["outputs_per_s"] or 0)[len(vruns) // 2]])
    head["variants"]["all_outputs_per_s"] = [x["outputs_per_s"] for x in vruns]
    head["rss"] = service.rss()
    if seed:
        head["rss"]["seed_mb"] = seed.rss_mb()
    service.stop_workers()
    return head


def run_scaling(ctx, service, ours, counts, args):
    """Pickup, photos, small and queue once each for every worker-process count."""
    rows = []
    for n in counts:
        log(f"scaling: {n} worker process(es) x WORKER_THREADS={args.scaling_threads}")
        service.start_workers(n, args.scaling_threads)
        row = {"workers": n, "threads": args.scaling_threads}
        row["pickup"] = run_pickup(ctx, service, max(20, args.pickup_n // 2), 0.02)
        row["photos"] = run_e2e(ctx, ours, "photos", args.clients, args.photo_secs)
        row["small"] = run_e2e(ctx, ours, "small", args.clients, args.small_secs)
        row["queue"] = run_queue(ctx, service, args.queue_n)
        row["rss"] = service.rss()
        service.stop_workers()
        rows.append(row)
    return rows


def run(args):
    """Builds, starts everything, runs every phase, stops everything; the result before `derive`."""
    q = args.quick
    scaling = [int(x) for x in args.scaling.split(",") if x.strip()]
    t_start = time.time()
    started = dt.datetime.now(dt.timezone.utc)
    result = {"version": 1, "started": started.isoformat(timespec="seconds"),
              "machine": {"nproc": NPROC, "cpu": cpu_model(), "mem_gb": mem_gb(), "kernel": platform.release(),
                          "loadavg_start": loadavg()},
              "git": git_info(),
              "settings": {k: v for k, v in vars(args).items() if k not in ("out",)}}
    if args.bin:
        binary = args.bin
    elif args.no_build:
        binary = default_service_binary()
    else:
        binary, secs = build_service()
        result["build_s"] = rnd(secs, 1)
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench: {binary} is not an executable")

    corpus = build_corpus(ROOT / "bench" / "corpus", args.corpus, build_photo_tool)
    result["corpus"] = {"photos": corpus["photo_desc"], "small": {"files": len(corpus["small"]), "size": "640x480"},
                        "ingest_file_bytes": len(corpus["ingest"][1])}

    stack = Stack(keep_tmp=args.keep_tmp)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        log(f"starting a throwaway PostgreSQL in {stack.tmp}")
        pg = start_postgres(stack, args.durable)
        result["postgres"] = {"version": pg.version, "durable": args.durable,
                              "settings": "fsync, synchronous_commit, full_page_writes " + ("on" if args.durable else "off")}
        service = Service(stack, binary, pg.url, args.rust_log, "text", corpus["tiny"][1])
        ctx = {"pg_pid": pg.pid, "service": service, "corpus": corpus, "seed": None, "statements": False}
        ours = {"kind": "ours", "base": service.base, "db_url": pg.url}
        seed = None
        if args.against_seed:
            log(f"starting the seed peer from {args.against_seed}")
            seed = Seed(stack, Path(args.against_seed), pg.url, pg.port)
            ctx["seed"] = seed
        seed_t = {"kind": "seed", "base": seed.base, "db_url": seed.db_url} if seed else None

        log("reference: bare libvips on the photo corpus")
        result["reference"] = {"libvips": run_vips_reference(corpus["photo_paths"], 1 if q else 2)}

        log(f"ingest: {args.ingest_clients} clients, ~{len(corpus['ingest'][1]) // 1000} KB files, no workers running")
        result["ingest"] = run_ingest(ctx, service, args.ingest_clients, args.ingest_procs, args.ingest_secs)
        log(f"upload memory: {args.memory_clients} uploads of the largest photo in flight, a fresh API each run")
        result["upload_memory"] = {
            "default": run_upload_memory(ctx, service, args.memory_clients, args.ingest_secs),
            # As the prod overlay runs its API pods (kustomize/overlays/prod/api).
            "api_pods": run_upload_memory(ctx, service, args.memory_clients, args.ingest_secs,
                                          {"MIMALLOC_PURGE_DELAY": "0"}),
        }
        result["headline"] = run_headline(ctx, service, ours, seed, seed_t, args)
        result["scaling"] = run_scaling(ctx, service, ours, scaling, args)
        result["rss_api_mb"] = service.rss()["api_mb"]
    finally:
        stack.close()

    result["machine"]["loadavg_end"] = loadavg()
    result["duration_s"] = rnd(time.time() - t_start, 1)
    return result


def main():
    args = parse_args()
    if args.render:
        r = json.loads(Path(args.render).read_text())
    else:
        r = run(args)
    derive(r)
    if args.baseline:
        r["baseline"] = compare(r, json.loads(Path(args.baseline).read_text()), args.baseline)
    write_outputs(r, Path(args.out), stamp_run=not args.render)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaned up")
        sys.exit(130)
