"""The arithmetic of a run: percentiles and medians, a phase's summary from the rows' own
timestamps, the derived figures (imaging ceiling, bounds, targets) and ratios against a baseline."""
from __future__ import annotations

import statistics

import numpy as np

from . import NPROC


def pct(values, p):
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), p))


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rnd(x, n=2):
    return None if x is None else round(x, n)


def summarize(rows, client_lat, nproc=NPROC):
    done = [r for r in rows if r[4] == "completed" and r[2] is not None]
    out = {"n": len(rows), "completed": len(done), "failed": sum(1 for r in rows if r[4] == "failed")}
    if not done:
        return out
    t0 = min(r[0] for r in done)
    t1 = max(r[2] for r in done)
    out["span_s"] = rnd(t1 - t0, 3)
    out["per_s"] = rnd(len(done) / (t1 - t0), 2) if t1 > t0 else None
    out["per_s_per_core"] = rnd(out["per_s"] / nproc, 2) if out.get("per_s") else None
    comp = [(r[2] - r[0]) * 1000 for r in done]
    for p in (50, 95, 99):
        out[f"complete_p{p}_ms"] = rnd(pct(comp, p), 1)
    firsts = [r for r in done if r[1] is not None and r[3] == 1]
    if firsts:
        wait = [(r[1] - r[0]) * 1000 for r in firsts]
        svc = [(r[2] - r[1]) * 1000 for r in firsts]
        for p in (50, 95, 99):
            out[f"pickup_p{p}_ms"] = rnd(pct(wait, p), 2)
        out["service_mean_ms"] = rnd(statistics.mean(svc), 1)
        out["service_p50_ms"] = rnd(pct(svc, 50), 1)
    if client_lat:
        out["client_p50_ms"] = rnd(pct([x * 1000 for x in client_lat], 50), 1)
    return out


def median_summary(runs, keys):
    out = {}
    for k in keys:
        vals = [r.get(k) for r in runs if r.get(k) is not None]
        out[k] = rnd(med(vals), 2) if vals else None
    per = [r["cpu_ms_per_image"] for r in runs if r.get("cpu_ms_per_image")]
    if per:
        out["cpu_ms_per_image"] = {k: rnd(med([p.get(k) for p in per]), 1) for k in per[0]}
    out["other_load"] = rnd(med([r["cpu"]["other_load"] for r in runs]), 2)
    io = [r["cpu"].get("iowait_load") for r in runs if r["cpu"].get("iowait_load") is not None]
    out["iowait_load"] = rnd(med(io), 2) if io else None
    out["runs"] = runs
    return out


E2E_KEYS = ["per_s", "per_s_per_core", "per_cpu_s", "complete_p50_ms", "complete_p95_ms", "complete_p99_ms",
            "pickup_p50_ms", "pickup_p95_ms", "pickup_p99_ms", "service_mean_ms", "client_p50_ms"]


# Flat metrics used for targets and baseline ratios: name -> (path getter, higher is better, unit)
def flat_metrics(r):
    h = r.get("headline", {})
    m = {}

    def put(name, val, higher, unit):
        if val is not None:
            m[name] = {"value": val, "higher_is_better": higher, "unit": unit}

    # Not ours: bare libvips on the same photos. A drop here against a baseline means the machine,
    # not the service, got slower (this VM class's host sometimes slows it several-fold).
    put("machine_check_libvips_per_s", (r.get("reference", {}).get("libvips") or {}).get("single_thread_per_s"),
        True, "photos/s")
    put("photos_per_s", h.get("photos", {}).get("ours", {}).get("per_s"), True, "images/s")
    put("small_per_s", h.get("small", {}).get("ours", {}).get("per_s"), True, "images/s")
    put("photos_vs_seed", h.get("photos", {}).get("ratio"), True, "x")
    put("small_vs_seed", h.get("small", {}).get("ratio"), True, "x")
    put("photos_per_cpu_s", h.get("photos", {}).get("ours", {}).get("per_cpu_s"), True, "images/CPU-s")
    put("photos_cpu_vs_seed", h.get("photos", {}).get("cpu_efficiency_ratio"), True, "x")
    put("small_cpu_vs_seed", h.get("small", {}).get("cpu_efficiency_ratio"), True, "x")
    put("small_per_cpu_s", h.get("small", {}).get("ours", {}).get("per_cpu_s"), True, "images/CPU-s")
    put("photos_complete_p50_ms", h.get("photos", {}).get("ours", {}).get("complete_p50_ms"), False, "ms")
    put("photos_complete_p99_ms", h.get("photos", {}).get("ours", {}).get("complete_p99_ms"), False, "ms")
    put("small_complete_p50_ms", h.get("small", {}).get("ours", {}).get("complete_p50_ms"), False, "ms")
    put("small_complete_p99_ms", h.get("small", {}).get("ours", {}).get("complete_p99_ms"), False, "ms")
    put("pickup_p50_ms", h.get("pickup", {}).get("p50_ms"), False, "ms")
    put("pickup_p95_ms", h.get("pickup", {}).get("p95_ms"), False, "ms")
    put("pickup_p99_ms", h.get("pickup", {}).get("p99_ms"), False, "ms")
    put("queue_jobs_per_s", h.get("queue", {}).get("jobs_per_s"), True, "jobs/s")
    put("variants_images_per_s", h.get("variants", {}).get("images_per_s"), True, "images/s")
    put("variants_outputs_per_s", h.get("variants", {}).get("outputs_per_s"), True, "outputs/s")
    put("ingest_per_s", r.get("ingest", {}).get("per_s"), True, "uploads/s")
    put("api_rss_mb", r.get("rss_api_mb"), False, "MB")
    um = r.get("upload_memory") or {}
    put("upload_memory_x", (um.get("default") or {}).get("per_upload_x"), False, "x")
    put("upload_memory_api_pods_x", (um.get("api_pods") or {}).get("per_upload_x"), False, "x")
    put("worker_rss_mb", h.get("rss", {}).get("worker_mb"), False, "MB")
    for row in r.get("scaling", []):
        k = f"{row['workers']}x{row['threads']}"
        put(f"scaling_{k}_photos_per_s", row["photos"].get("per_s"), True, "images/s")
        put(f"scaling_{k}_small_per_s", row["small"].get("per_s"), True, "images/s")
        put(f"scaling_{k}_queue_jobs_per_s", row["queue"].get("jobs_per_s"), True, "jobs/s")
        put(f"scaling_{k}_pickup_p50_ms", row["pickup"].get("p50_ms"), False, "ms")
    return m


def derive(r):
    h = r["headline"]
    # The imaging core's single-thread speed, measured inside the service: worker CPU per photo in
    # the headline photo phase (decode, resize, encode, thumbnail, plus the worker's own DB client
    # work). Ceiling = that speed x cores. CPU-based, so other load on the machine barely moves it.
    cpu = h["photos"]["ours"].get("cpu_ms_per_image") or {}
    if cpu.get("workers"):
        single = 1000 / cpu["workers"]
        r["imaging_single_thread_per_s"] = rnd(single, 2)
        r["imaging_ceiling_per_s"] = rnd(single * NPROC, 2)
        if h["photos"]["ours"].get("per_s"):
            r["photos_vs_ceiling"] = rnd(h["photos"]["ours"]["per_s"] / (single * NPROC), 3)
        total = (cpu.get("api") or 0) + cpu["workers"] + (cpu.get("pg") or 0)
        r["imaging_cpu_share"] = rnd(cpu["workers"] / total, 3) if total else None
    for kind in ("photos", "small"):
        o = h[kind]["ours"]
        c = o.get("cpu_ms_per_image") or {}
        tot = (c.get("api") or 0) + (c.get("workers") or 0) + (c.get("pg") or 0)
        if tot:
            # If the service had every core to itself and stayed CPU-bound: an estimate, not a measurement.
            o["capacity_idle_estimate_per_s"] = rnd(NPROC * 1000 / tot, 1)
        sd = h[kind].get("seed")
        # What no imaging speed-up can beat: the CPU the API, PostgreSQL and the load driver spend per
        # image, with the imaging itself taken as free. A throughput target above this bound needs
        # less HTTP or database work per image, not faster pixels.
        rest = (c.get("api") or 0) + (c.get("pg") or 0) + (c.get("driver") or 0)
        if rest:
            o["free_imaging_bound_per_s"] = rnd(NPROC * 1000 / rest, 1)
            if sd and sd.get("per_s"):
                h[kind]["free_imaging_bound_ratio"] = rnd(o["free_imaging_bound_per_s"] / sd["per_s"], 2)
        if sd and o.get("per_cpu_s") and sd.get("per_cpu_s"):
            h[kind]["cpu_efficiency_ratio"] = rnd(o["per_cpu_s"] / sd["per_cpu_s"], 2)
    m = flat_metrics(r)
    r["metrics"] = m
    t = []

    def target(name, value, op, goal, unit):
        ok = None if value is None else (value >= goal if op == ">=" else value <= goal)
        t.append({"target": name, "value": value, "goal": f"{op} {goal}{unit}", "met": ok})

    # Issue 21's table (the second round); the first round's goals (issue 9) were met or are
    # superseded by these.
    target("photos end to end vs seed", h["photos"].get("ratio"), ">=", 3, "x")
    target("  (noise-robust view: photos per service CPU-second vs seed)", h["photos"].get("cpu_efficiency_ratio"), ">=", 3, "x")
    target("640×480 images end to end vs seed", h["small"].get("ratio"), ">=", 3, "x")
    target("  (noise-robust view: small per service CPU-second vs seed)", h["small"].get("cpu_efficiency_ratio"), ">=", 3, "x")
    target("queue overhead (tiny, SQL bulk, durable)", h["queue"].get("jobs_per_s"), ">=", 5000, " jobs/s")
    target("tiny images with 3 variants each, every output done", (h.get("variants") or {}).get("images_per_s"),
           ">=", 1000, " images/s")
    target("pickup latency p50 (idle)", h["pickup"].get("p50_ms"), "<=", 1.5, " ms")
    target("pickup latency p99 (idle)", h["pickup"].get("p99_ms"), "<=", 5, " ms")
    rss = h.get("rss") or {}
    both = (rss.get("worker_mb") or 0) + (r.get("rss_api_mb") or 0)
    target("peak RSS, API + worker (what one `run` process holds)", both or None, "<=", 629, " MB (600 MiB)")
    um = r.get("upload_memory") or {}
    target("API memory per upload in flight, as API pods run (MIMALLOC_PURGE_DELAY=0)",
           (um.get("api_pods") or {}).get("per_upload_x"), "<=", 2, "x its size")
    target("  (the same with the allocator's default purge delay, as `run` and the dev overlay)",
           (um.get("default") or {}).get("per_upload_x"), "<=", 2, "x its size")
    target("upload ingest (100 KB, durable)", r["ingest"].get("per_s"), ">=", 2000, " uploads/s")
    r["targets"] = t


def compare(new, old, path):
    a, b = new["metrics"], old.get("metrics") or flat_metrics(old)
    out = {"file": str(path), "old_started": old.get("started"), "old_git": old.get("git"), "ratios": {},
           "same_corpus": (old.get("corpus") or {}).get("photos") == (new.get("corpus") or {}).get("photos"),
           "same_settings": all(old.get("settings", {}).get(k) == new["settings"].get(k)
                                for k in ("quick", "workers", "threads", "clients", "scaling", "scaling_threads"))}
    for k, v in a.items():
        if k in b and b[k]["value"]:
            ratio = v["value"] / b[k]["value"]
            better = ratio > 1 if v["higher_is_better"] else ratio < 1
            out["ratios"][k] = {"new": v["value"], "old": b[k]["value"], "ratio": rnd(ratio, 3),
                                "better": better if abs(ratio - 1) > 0.10 else None}
    return out
