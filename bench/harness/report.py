"""The report: latest.md (the tables), latest.json and runs/<time>.json (every figure), and the
chart beside them."""
from __future__ import annotations

import json
from pathlib import Path

from . import NPROC, log
from .chart import write_chart


def fmt(v, unit=""):
    if v is None:
        return "–"
    if isinstance(v, float):
        v = f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"
    return f"{v}{unit}"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def variants_line(v, qd):
    """The variants phase beside the queue phase's single outputs."""
    if not v:
        return "- **Variants**: not measured in this run."
    return (f"- **Variants**: {v['n']} 16×16 PNGs inserted by SQL with {v['presets']} variants each (64×64 JPEG cover, "
            f"320 px WebP, 800 px JPEG), every output done: **{fmt(v['images_per_s'])} images/s = "
            f"{fmt(v['outputs_per_s'])} outputs/s** (median run of {v.get('all_outputs_per_s')}; {v['failed']} failed; "
            f"other load {v['cpu']['other_load']}), beside {fmt(qd['jobs_per_s'])} single outputs/s in the queue phase.")


def memory_line(um):
    """The API-memory phase: peak RSS per upload in flight, default and as API pods run."""
    if not um or not um.get("default"):
        return "- **API memory per upload in flight**: not measured in this run."
    d, pods = um["default"], um.get("api_pods") or {}
    return (f"- **API memory per upload in flight**: {d['clients']} clients uploading {d['file']} "
            f"({d['file_bytes'] / 1e6:.1f} MB, multipart) to a fresh `api` process for {d['duration_s']} s, no workers: "
            f"peak RSS {fmt(d['peak_mib'], ' MiB')} over {fmt(d['rest_mib'], ' MiB')} at rest = "
            f"**{fmt(d['per_upload_x'])}× the uploads' bytes** (RSS {fmt(d['after_mib'], ' MiB')} afterwards); "
            f"with MIMALLOC_PURGE_DELAY=0, as the prod overlay runs API pods: **{fmt(pods.get('per_upload_x'))}×** "
            f"(peak {fmt(pods.get('peak_mib'), ' MiB')}, {fmt(pods.get('after_mib'), ' MiB')} afterwards). Every "
            f"client's upload is counted as in flight the whole time, so this is an upper bound; "
            f"{d['accepted']} and {pods.get('accepted')} uploads accepted, {d['busy_503'] + (pods.get('busy_503') or 0)} × 503.")


def report_md(r, svg_name):
    h = r["headline"]
    s = r["settings"]
    seed = "seed" in h["photos"]
    lines = [f"# image-processor benchmark — {r['started']}", ""]
    m = r["machine"]
    lines.append(f"`scripts/bench{' --quick' if s['quick'] else ''}{' --against-seed' if s['against_seed'] else ''}` · "
                 f"git {r['git']['rev']}{' (+ uncommitted src changes)' if r['git']['dirty'] else ''} · "
                 f"{m['nproc']} cores ({m['cpu']}) · load average {m['loadavg_start'][0]:.2f} at start, "
                 f"{m['loadavg_end'][0]:.2f} at end · {r['postgres']['version']} ({r['postgres']['settings']}) · "
                 f"run took {r['duration_s']:.0f} s")
    lines.append("")
    lines.append("The machine is shared and noisy: *other load* below is the CPU (in cores) that processes "
                 "outside this benchmark used during a phase, and *iowait* the cores left idle waiting for the "
                 "disk (fsync stalls: a phase high there was disk-bound, not CPU-bound). Figures are medians of "
                 f"{s['repeats']} repeat(s); ratios are medians of back-to-back pairs.")
    lines += ["", f"![charts]({svg_name})", "", "## Targets (issue 21)", ""]
    rows = [[t["target"], fmt(t["value"]), t["goal"], {True: "met", False: "**not met**", None: "–"}[t["met"]]]
            for t in r["targets"]]
    lines.append(md_table(["target", "measured", "goal", ""], rows))
    lines += ["", f"## Headline: {h['workers']} worker process(es) × WORKER_THREADS={h['threads']}, "
                  f"{h['clients']} concurrent clients, closed loop (upload, wait until done, repeat)", ""]
    hdr = ["", "ours"] + (["seed", "ours / seed ¹"] if seed else [])
    rows = []
    for kind, label in (("photos", f"photos ({r['corpus']['photos']['megapixels_min']}–{r['corpus']['photos']['megapixels_max']} MP, "
                                    f"mean {r['corpus']['photos']['megapixels_mean']} MP) → fit 800×800"),
                        ("small", "small 640×480 JPEG → fit 800×800")):
        o = h[kind]["ours"]
        sd = h[kind].get("seed", {})
        for key, name, unit in (("per_s", "images/s", ""), ("per_s_per_core", "images/s per core", ""),
                                ("per_cpu_s", "images per service CPU-second", ""),
                                ("complete_p50_ms", "completion p50", " ms"), ("complete_p95_ms", "completion p95", " ms"),
                                ("complete_p99_ms", "completion p99", " ms"),
                                ("client_p50_ms", "client-observed p50 (upload start → seen done)", " ms")):
            row = [f"{label}: {name}" if key == "per_s" else f"  {name}", fmt(o.get(key), unit)]
            if seed:
                ratio = None
                if o.get(key) and sd.get(key):
                    ratio = h[kind]["ratio"] if key == "per_s" else o[key] / sd[key]
                row += [fmt(sd.get(key), unit), fmt(ratio, "×")]
            rows.append(row)
    lines.append(md_table(hdr, rows))
    if seed:
        lines += ["", "¹ images/s: median of the back-to-back pairs' ratios; other rows: ratio of the medians. "
                      f"Per-repeat ratios: photos {h['photos']['ratios']}, small {h['small']['ratios']}. "
                      "The seed has no `?wait`; the driver watches its table (one query per 10 ms) instead of "
                      "letting 8 clients poll its Flask app."]
    rows = []
    for kind in ("photos", "small"):
        for who in ("ours", "seed"):
            x = h[kind].get(who)
            if not x or not x.get("cpu_ms_per_image"):
                continue
            c = x["cpu_ms_per_image"]
            app = c.get("seed") if who == "seed" else (c.get("api") or 0) + (c.get("workers") or 0)
            rows.append([f"{kind}, {who}", fmt(c.get("api")) if who == "ours" else "–",
                         fmt(c.get("workers")) if who == "ours" else fmt(c.get("seed")),
                         fmt(c.get("pg_backends")), fmt(c.get("pg_background")),
                         fmt((app or 0) + (c.get("pg") or 0)), fmt(c.get("driver")), fmt(x.get("other_load")) + " / " + fmt(x.get("iowait_load"))])
    if rows:
        lines += ["", "### Where the CPU goes (ms of CPU per completed image, medians)", "",
                  md_table(["phase", "API", "workers (seed: whole app)", "PostgreSQL backends",
                            "PostgreSQL background (WAL writer, checkpointer, autovacuum, exited)",
                            "service total", "load driver", "other load / iowait (cores)"], rows)]
    for kind in ("photos", "small"):
        st = (h[kind]["ours"]["runs"][0].get("top_statements") if h[kind]["ours"]["runs"] else None)
        if st and "error" not in st[0]:
            lines += ["", f"Top statements by server time, ours, {kind} (first repeat, pg_stat_statements):", "",
                      md_table(["calls", "total ms", "mean ms", "WAL MB", "statement"],
                               [[x["calls"], fmt(x["total_ms"]), fmt(x["mean_ms"]), fmt(x["wal_mb"]),
                                 "`" + x["query"][:110].replace("|", "\\|") + "…`"] for x in st])]
    p = h["pickup"]
    lines += ["", "## Latency", "",
              md_table(["", "p50", "p95", "p99"], [
                  ["pickup, idle workers (one 16×16 upload at a time)", fmt(p["p50_ms"], " ms"), fmt(p["p95_ms"], " ms"), fmt(p["p99_ms"], " ms")],
                  ["pickup under photo load (queueing)", fmt(h["photos"]["ours"].get("pickup_p50_ms"), " ms"),
                   fmt(h["photos"]["ours"].get("pickup_p95_ms"), " ms"), fmt(h["photos"]["ours"].get("pickup_p99_ms"), " ms")],
                  ["completion, photos", fmt(h["photos"]["ours"].get("complete_p50_ms"), " ms"),
                   fmt(h["photos"]["ours"].get("complete_p95_ms"), " ms"), fmt(h["photos"]["ours"].get("complete_p99_ms"), " ms")],
                  ["completion, small", fmt(h["small"]["ours"].get("complete_p50_ms"), " ms"),
                   fmt(h["small"]["ours"].get("complete_p95_ms"), " ms"), fmt(h["small"]["ours"].get("complete_p99_ms"), " ms")],
              ])]
    qd = h["queue"]
    ing = r["ingest"]
    lines += ["", "## Queue overhead and ingest", "",
              f"- **Queue overhead**: {qd['n']} 16×16 PNGs inserted by one SQL statement, default pipeline: "
              f"**{fmt(qd['jobs_per_s'])} jobs/s** insert-to-last-completion (median run of {qd.get('all_jobs_per_s')}) ({fmt(qd['drain_jobs_per_s'])} jobs/s "
              f"first-claim-to-last-completion; job p50 {fmt(qd['job_p50_ms'], ' ms')}; {qd['failed']} failed; "
              f"other load {qd['cpu']['other_load']}, iowait {qd['cpu'].get('iowait_load')}).",
              variants_line(h.get("variants"), qd),
              f"- **Upload ingest**: {ing['clients']} concurrent clients ({ing['client_procs']} processes), "
              f"{ing['file_bytes'] // 1000} KB JPEG, multipart, no workers running: **{fmt(ing['per_s'])} uploads/s** accepted "
              f"({fmt(ing['mb_per_s'])} MB/s; latency p50 {fmt(ing['p50_ms'], ' ms')}, p99 {fmt(ing['p99_ms'], ' ms')}; "
              f"{ing['busy_503']} × 503, {ing['other_errors']} other errors; load driver used {ing['client_cpu_s']} CPU-s "
              f"in {ing['duration_s']} s).",
              memory_line(r.get("upload_memory")),
              f"- **Peak RSS** (VmHWM): API {fmt(r.get('rss_api_mb'), ' MB')} over the whole run; worker "
              f"{fmt(h['rss'].get('worker_mb'), ' MB')} (headline config)"
              + (f"; seed {fmt(h['rss'].get('seed_mb'), ' MB')}" if seed else "") + "."]
    caps = [(k, h[k]["ours"].get("capacity_idle_estimate_per_s")) for k in ("photos", "small")]
    if all(v for _, v in caps):
        lines.append(f"- **Estimated capacity on {NPROC} idle cores** (cores × 1000 / service CPU ms per image; assumes the "
                     f"service stays CPU-bound and scales perfectly; an estimate, not a measurement): photos "
                     f"{fmt(caps[0][1])}/s, small {fmt(caps[1][1])}/s.")
    bounds = [(k, h[k]["ours"].get("free_imaging_bound_per_s"), h[k].get("free_imaging_bound_ratio")) for k in ("photos", "small")]
    if all(v for _, v, _ in bounds):
        lines.append(f"- **Bound if imaging cost nothing** ({NPROC} cores × 1000 / (API + PostgreSQL + load driver CPU ms per "
                     "image), the imaging taken as free; an upper bound, not a measurement): "
                     + ", ".join(f"{k} {fmt(v)}/s" + (f" ({fmt(q)}× the seed)" if q else "") for k, v, q in bounds)
                     + ". A target above this needs less HTTP or database work per image, not faster pixels.")
    vr = r.get("reference", {}).get("libvips")
    if vr and "single_thread_per_s" in vr:
        lines.append(f"- **Bare libvips** (vipsthumbnail, no HTTP, no database, same photos): "
                     f"{fmt(vr['single_thread_per_s'])} photos/s on one thread, {fmt(vr['all_cores_per_s'])} on all {NPROC} cores. "
                     "It doubles as a check of the machine itself: far below an earlier run's figure means the "
                     "host slowed this VM, and every figure of this run is suspect.")
    if r.get("imaging_single_thread_per_s"):
        lines.append(f"- **Imaging core inside the service**: {fmt(r['imaging_single_thread_per_s'])} photos/s per core "
                     f"(worker CPU per photo) → ceiling {fmt(r['imaging_ceiling_per_s'])} photos/s on {NPROC} cores; the headline "
                     f"reaches {fmt(100 * r['photos_vs_ceiling'] if r.get('photos_vs_ceiling') else None, ' %')} of it. Imaging is "
                     f"{fmt(100 * r['imaging_cpu_share'] if r.get('imaging_cpu_share') else None, ' %')} of the service's CPU per photo "
                     "(the rest: API and PostgreSQL), which caps the pipeline at that fraction of the ceiling even on an idle machine.")
    if r.get("scaling"):
        lines += ["", f"## Scaling: worker processes × WORKER_THREADS={r['scaling'][0]['threads']}", "",
                  f"On {NPROC} cores the curve should flatten at {NPROC} processes; beyond that the extra processes "
                  "only compete for the same cores (and the API and PostgreSQL share them too).", ""]
        rows = []
        for row in r["scaling"]:
            rows.append([f"{row['workers']} × {row['threads']}", fmt(row["photos"].get("per_s")),
                         fmt(row["photos"].get("service_mean_ms"), " ms"), fmt(row["small"].get("per_s")),
                         fmt(row["queue"].get("jobs_per_s")), f"{fmt(row['pickup']['p50_ms'])} / {fmt(row['pickup']['p99_ms'])} ms",
                         fmt(row["rss"].get("worker_mb"), " MB"),
                         f"{row['photos']['cpu']['other_load']} / {row['small']['cpu']['other_load']}"])
        lines.append(md_table(["processes × threads", "photos/s", "photo job mean", "small/s", "queue jobs/s",
                               "pickup p50 / p99", "worker RSS", "other load (photos / small)"], rows))
    if r.get("baseline"):
        b = r["baseline"]
        lines += ["", f"## Against baseline `{b['file']}` ({b.get('old_started')}, git {(b.get('old_git') or {}).get('rev')})", "",
                  "Ratio new/old; the machine is noisy, so changes under 10 % are marked ≈."
                  + ("" if b.get("same_corpus") else " **The photo corpus differs from the baseline's.**")
                  + ("" if b.get("same_settings") else " **The settings (quick/workers/threads/clients/scaling) differ.**"), ""]
        rows = [[k, fmt(v["old"]), fmt(v["new"]), fmt(v["ratio"], "×"),
                 {True: "better", False: "worse", None: "≈"}[v["better"]]] for k, v in b["ratios"].items()]
        lines.append(md_table(["metric", "old", "new", "new/old", ""], rows))
    lines += ["", "## Method", "",
              "Throwaway PostgreSQL; release binary as one `image-processor api` and N `image-processor worker` "
              "processes. End-to-end phases: clients upload (multipart `file`, `width=800&height=800`), wait with "
              "`GET /api/images/{id}?wait=30`, and upload the next file. Throughput = completed rows / (last "
              "`processed_at` − first `uploaded_at`); pickup = `started_at` − `uploaded_at` (rows with attempts = 1); "
              "completion = `processed_at` − `uploaded_at`, all from the database's clock. *Service CPU-second* = "
              "CPU of the API, the workers and PostgreSQL (seed: gunicorn and PostgreSQL). JSON: `latest.json`.", ""]
    return "\n".join(lines)


def write_outputs(r, out: Path, stamp_run=True):
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    stamp = r["started"].replace(":", "").replace("+0000", "Z")
    js = json.dumps(r, indent=1, sort_keys=False, default=str)
    if stamp_run:
        (out / "runs" / f"{stamp}.json").write_text(js)
    (out / "latest.json").write_text(js)
    write_chart(r, out / "latest.svg")
    md = report_md(r, "latest.svg")
    (out / "latest.md").write_text(md + "\n")
    # stdout: the tables
    print(md.split("## Method")[0])
    log(f"wrote {out / 'latest.md'}, {out / 'latest.json'}, {out / 'latest.svg'}" + (f" and runs/{stamp}.json" if stamp_run else ""))
