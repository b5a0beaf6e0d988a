"""One function per measured phase; each settles the database, measures, returns its summary
and leaves the table empty for the next."""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import aiohttp
import psycopg

from . import NPROC, log
from .corpus import FIELDS, multipart
from .db import db_rows, reset_statements, settle, sql, top_statements, truncate
from .load import ingest_client, wait_ours, closed_loop
from .procstat import CpuMeter, reset_hwm, vm_hwm_mb, vm_rss_mb
from .stack import free_port, wait_http
from .stats import pct, rnd, summarize


def run_e2e(ctx, target, kind, clients, duration):
    items = ctx["corpus"][kind]
    settle(target["db_url"])
    meter = CpuMeter(ctx)
    stmts = reset_statements(target["db_url"]) if ctx.get("statements") else None
    a = meter.snap()
    results, errors = asyncio.run(closed_loop(target, items, clients, duration))
    b = meter.snap()
    ids = [r[0] for r in results]
    rows = db_rows(target["db_url"], ids, has_started=target["kind"] == "ours") if ids else []
    s = summarize(rows, [r[1] for r in results])
    s["cpu"] = CpuMeter.delta(a, b)
    s["api_hwm_mb_after"] = rnd(vm_hwm_mb(ctx["service"].api.pid), 1)
    svc = s["cpu"]["pg"] + (s["cpu"]["seed"] if target["kind"] == "seed" else s["cpu"]["api"] + s["cpu"]["workers"])
    s["service_cpu_s"] = rnd(svc, 2)
    if s.get("completed") and svc:
        s["per_cpu_s"] = rnd(s["completed"] / svc, 2)
        parts = ("pg", "pg_backends", "pg_background", "driver") + (("seed",) if target["kind"] == "seed" else ("api", "workers"))
        s["cpu_ms_per_image"] = {k: rnd(1000 * s["cpu"][k] / s["completed"], 1) for k in parts}
    if stmts is not None:
        s["top_statements"] = top_statements(target["db_url"], stmts)
    if errors:
        s["errors"] = errors[:5]
    if s.get("failed"):
        s["fail_sample"] = sql(target["db_url"], "select error from processed_images where status='failed' limit 3") \
            if target["kind"] == "ours" else None
    truncate(target["db_url"])
    log(f"  {target['kind']:4} {kind:6}: {s.get('per_s')} /s  ({s['completed']} done, {s['failed']} failed, "
        f"p50 {s.get('complete_p50_ms')} ms, other load {s['cpu']['other_load']}, "
        f"iowait {s['cpu'].get('iowait_load')})")
    return s


def run_pickup(ctx, service, n, gap):
    """One upload at a time with idle workers: the pure wake-up + claim path."""
    settle(service.db_url, 1.0)
    target = {"kind": "ours", "base": service.base, "db_url": service.db_url}
    name, data = ctx["corpus"]["tiny"]
    body, ctype = multipart(name, data, FIELDS)

    async def go():
        ids = []
        async with aiohttp.ClientSession() as session:
            for _ in range(n):
                async with session.post(service.base + "/api/images", data=body, headers={"Content-Type": ctype}) as r:
                    js = await r.json()
                    if r.status != 202:
                        raise RuntimeError(f"upload {r.status}: {js}")
                await wait_ours(session, service.base, js["id"])
                ids.append(js["id"])
                await asyncio.sleep(gap)
        return ids

    ids = asyncio.run(go())
    rows = db_rows(target["db_url"], ids)
    firsts = [r for r in rows if r[3] == 1 and r[1] is not None]
    wait = [(r[1] - r[0]) * 1000 for r in firsts]
    comp = [(r[2] - r[0]) * 1000 for r in rows if r[2] is not None]
    out = {"n": len(firsts)}
    for p in (50, 95, 99):
        out[f"p{p}_ms"] = rnd(pct(wait, p), 2)
    out["max_ms"] = rnd(max(wait), 2) if wait else None
    out["complete_p50_ms"] = rnd(pct(comp, 50), 2)
    truncate(target["db_url"])
    log(f"  pickup: p50 {out['p50_ms']} ms, p95 {out['p95_ms']} ms, p99 {out['p99_ms']} ms (n={out['n']})")
    return out


def run_queue(ctx, service, n):
    """Queue overhead: n tiny PNGs inserted by SQL in one statement, default pipeline."""
    tag = f"queue-{uuid.uuid4().hex[:8]}"
    settle(service.db_url)
    meter = CpuMeter(ctx)
    a = meter.snap()
    sql(service.db_url, "insert into processed_images (original_data, filename) select %s, %s "
                        "from generate_series(1, %s)", (ctx["corpus"]["tiny"][1], tag, n), fetch=False)
    end = time.time() + max(60, n / 100)
    # One connection for the whole wait: a new one per poll cost PostgreSQL a backend start-up
    # (several ms of CPU) twenty times a second, on the same two cores as the queue it measures.
    with psycopg.connect(service.db_url, autocommit=True) as c:
        while time.time() < end:
            left = c.execute("select count(*) from processed_images where filename = %s "
                             "and status not in ('completed','failed')", (tag,)).fetchone()[0]
            if left == 0:
                break
            time.sleep(0.05)
    b = meter.snap()
    r = sql(service.db_url, """
        select count(*) filter (where status = 'completed'), count(*) filter (where status = 'failed'),
               count(*) filter (where status not in ('completed','failed')),
               extract(epoch from max(processed_at) - min(uploaded_at))::float8,
               extract(epoch from max(processed_at) - min(started_at))::float8,
               (percentile_cont(0.5) within group (order by extract(epoch from processed_at - started_at)))::float8
        from processed_images where filename = %s""", (tag,))[0]
    done, failed, left, span, drain, svc = r
    out = {"n": n, "completed": done, "failed": failed, "unfinished": left,
           "jobs_per_s": rnd(done / span, 1) if span else None,
           "drain_jobs_per_s": rnd(done / drain, 1) if drain else None,
           "job_p50_ms": rnd(svc * 1000 if svc is not None else None, 2),
           "cpu": CpuMeter.delta(a, b)}
    truncate(service.db_url)
    log(f"  queue: {out['jobs_per_s']} jobs/s ({done}/{n} completed, {failed} failed, "
        f"other load {out['cpu']['other_load']}, iowait {out['cpu'].get('iowait_load')})")
    return out


# Three presets a page would use, all small outputs: what "tiny images with 3 variants each" means
# in issue 21, and the shape issue 18's figure asks for (variants/s with 3 presets per upload).
VARIANT_PRESETS = {
    "bench_thumb": '{"width": 64, "height": 64, "fit": "cover", "format": "jpeg"}',
    "bench_card": '{"width": 320, "format": "webp"}',
    "bench_hero": '{"width": 800, "format": "jpeg"}',
}


def run_variants(ctx, service, n, kind="tiny"):
    """n images inserted by SQL with 3 variants each (one statement each): every output done
    (the image's own job and its 3 variants). Beside run_queue's single outputs/s."""
    tag = f"variants-{uuid.uuid4().hex[:8]}"
    settle(service.db_url)
    name, data = ctx["corpus"][kind] if kind == "tiny" else ctx["corpus"][kind][0]
    for preset, pipeline in VARIANT_PRESETS.items():
        sql(service.db_url, "insert into image_presets (name, pipeline) values (%s, %s::jsonb) "
                            "on conflict (name) do update set pipeline = excluded.pipeline", (preset, pipeline), fetch=False)
    meter = CpuMeter(ctx)
    a = meter.snap()
    # One transaction: the images and their variants become visible (and wake the workers) together.
    with psycopg.connect(service.db_url, autocommit=False) as c:
        c.execute("insert into processed_images (original_data, filename) select %s, %s from generate_series(1, %s)",
                  (data, tag, n))
        c.execute("insert into image_variants (image_id, preset) select p.id, v from processed_images p, "
                  "unnest(%s::text[]) v where p.filename = %s", (list(VARIANT_PRESETS), tag))
        c.commit()
    end = time.time() + max(120, n / 50)
    with psycopg.connect(service.db_url, autocommit=True) as c:
        while time.time() < end:
            left = c.execute("""
                select (select count(*) from processed_images where filename = %s and status not in ('completed','failed'))
                     + (select count(*) from image_variants v join processed_images p on p.id = v.image_id
                        where p.filename = %s and v.status not in ('completed','failed'))""", (tag, tag)).fetchone()[0]
            if left == 0:
                break
            time.sleep(0.05)
    b = meter.snap()
    r = sql(service.db_url, """
        with outs as (
            select status, uploaded_at as queued, processed_at from processed_images where filename = %s
            union all
            select v.status, v.created_at, v.processed_at from image_variants v
            join processed_images p on p.id = v.image_id where p.filename = %s)
        select count(*) filter (where status = 'completed'), count(*) filter (where status = 'failed'),
               count(*) filter (where status not in ('completed','failed')),
               extract(epoch from max(processed_at) - min(queued))::float8
        from outs""", (tag, tag))[0]
    done, failed, left, span = r
    out = {"n": n, "kind": kind, "presets": len(VARIANT_PRESETS), "outputs": n * (1 + len(VARIANT_PRESETS)),
           "completed": done, "failed": failed, "unfinished": left,
           "outputs_per_s": rnd(done / span, 1) if span else None,
           "images_per_s": rnd(done / span / (1 + len(VARIANT_PRESETS)), 1) if span else None,
           "cpu": CpuMeter.delta(a, b)}
    if failed:
        out["fail_sample"] = sql(service.db_url, "select v.error from image_variants v join processed_images p "
                                                 "on p.id = v.image_id where p.filename = %s and v.status = 'failed' limit 3", (tag,))
    truncate(service.db_url)
    log(f"  variants ({kind}): {out['images_per_s']} images/s with {len(VARIANT_PRESETS)} variants each = "
        f"{out['outputs_per_s']} outputs/s ({done}/{out['outputs']} done, {failed} failed, "
        f"other load {out['cpu']['other_load']})")
    return out


def run_ingest(ctx, service, clients, procs, duration):
    """Uploads accepted per second with `clients` concurrent clients (no workers running)."""
    name, data = ctx["corpus"]["ingest"]
    body, ctype = multipart(name, data, FIELDS)
    settle(service.db_url)
    meter = CpuMeter(ctx)
    a = meter.snap()
    start_at = time.time() + 1.0
    stop_at = start_at + duration
    mpc = mp.get_context("fork")
    q = mpc.Queue()
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ps = [mpc.Process(target=ingest_client, args=(service.base, body, ctype, c, start_at, stop_at, q)) for c in per if c]
    for p in ps:
        p.start()
    res = [q.get(timeout=duration + 120) for _ in ps]
    for p in ps:
        p.join(30)
    b = meter.snap()
    acc = sum(r[0] for r in res)
    busy = sum(r[1] for r in res)
    nother = sum(r[3] for r in res)
    lat = [x * 1000 for r in res for x in r[4]]
    client_cpu = sum(r[5] for r in res)
    dbn = sql(service.db_url, "select count(*), extract(epoch from max(uploaded_at) - min(uploaded_at))::float8 "
                              "from processed_images")[0]
    out = {"clients": clients, "client_procs": len(ps), "file_bytes": len(data), "duration_s": duration,
           "accepted": acc, "per_s": rnd(acc / duration, 1), "busy_503": busy, "other_errors": nother,
           "error_sample": [x for r in res for x in r[2]][:5],
           "p50_ms": rnd(pct(lat, 50), 1), "p99_ms": rnd(pct(lat, 99), 1),
           "rows_in_db": dbn[0], "mb_per_s": rnd(acc * len(data) / duration / 1e6, 1),
           "client_cpu_s": rnd(client_cpu, 2), "cpu": CpuMeter.delta(a, b),
           "api_hwm_mb_after": rnd(vm_hwm_mb(service.api.pid), 1)}
    truncate(service.db_url)
    log(f"  ingest: {out['per_s']} uploads/s accepted ({busy} x 503, {nother} other errors; "
        f"p50 {out['p50_ms']} ms; client CPU {out['client_cpu_s']} s of {duration} s)")
    return out


def run_upload_memory(ctx, service, clients, duration, env=None):
    """API memory per upload in flight: a fresh `api` process (no workers, `env` added to its
    environment), `clients` closed-loop uploaders of the corpus's largest photo as multipart, and
    its peak RSS over the phase above its RSS at rest, divided by the bytes of `clients` uploads
    (every client's upload counted as in flight the whole time, so an upper bound). A fresh
    process, so memory an earlier phase freed and the allocator kept cannot hide what this load
    needs."""
    name, data = max(ctx["corpus"]["photos"], key=lambda p: len(p[1]))
    body, ctype = multipart(name, data, FIELDS)
    stack = service.stack
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = stack.start("api-memory", [service.bin, "api"],
                      dict(service.env, LISTEN_ADDR=f"127.0.0.1:{port}", **(env or {})))
    try:
        wait_http(base + "/readyz", api, "api-memory", stack)
        settle(service.db_url)
        # One upload first, so the process's own lazily made state (pools, prepared statements)
        # counts as the rest it starts from, not as the uploads' memory.
        q = mp.get_context("fork").Queue()
        ingest_client(base, body, ctype, 1, time.time(), time.time() + 0.01, q)
        q.get(timeout=60)
        time.sleep(0.5)
        rest = vm_rss_mb(api.pid)
        reset_hwm(api.pid)
        start_at = time.time() + 0.5
        p = mp.get_context("fork").Process(target=ingest_client,
                                           args=(base, body, ctype, clients, start_at, start_at + duration, q))
        p.start()
        acc, busy, sample, nother, lat, _cpu = q.get(timeout=duration + 120)
        p.join(30)
        peak = vm_hwm_mb(api.pid)
        after = vm_rss_mb(api.pid)
    finally:
        stack.stop(api)
    held = clients * len(data) / 2**20
    out = {"clients": clients, "file": name, "file_bytes": len(data), "duration_s": duration, "env": env or {},
           "accepted": acc, "busy_503": busy, "other_errors": nother, "error_sample": sample,
           "p50_ms": rnd(pct([x * 1000 for x in lat], 50), 1),
           "rest_mib": rnd(rest, 1), "peak_mib": rnd(peak, 1), "after_mib": rnd(after, 1),
           "per_upload_x": rnd((peak - rest) / held, 2) if rest is not None and peak is not None else None}
    truncate(service.db_url)
    log(f"  upload memory{' with ' + str(env) if env else ''}: {clients} x {len(data) / 1e6:.1f} MB in flight: "
        f"peak {out['peak_mib']} MiB over {out['rest_mib']} MiB at rest = {out['per_upload_x']}x the uploads' "
        f"bytes ({acc} accepted, {busy} x 503, {nother} other errors)")
    return out


def run_vips_reference(photo_paths, passes):
    """Bare libvips (vipsthumbnail: shrink-on-load, fit 800x800, JPEG q85): no HTTP, no DB."""
    exe = shutil.which("vipsthumbnail")
    if not exe:
        return None
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-vips.") as d:
        files = [str(p) for p in photo_paths] * passes
        argv = [exe, "--size", "800x800", "-o", f"{d}/%s-out.jpg[Q=85]"] + files
        env = dict(os.environ, VIPS_CONCURRENCY="1")
        subprocess.run(argv[:5] + files[:2], env=env, capture_output=True)  # warm the page cache
        t = time.monotonic()
        r = subprocess.run(argv, env=env, capture_output=True, text=True)
        if r.returncode:
            return {"error": r.stderr[-300:]}
        single = len(files) / (time.monotonic() - t)
        t = time.monotonic()
        ps = [subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(NPROC)]
        for p in ps:
            p.wait()
        allc = NPROC * len(files) / (time.monotonic() - t)
    out = {"single_thread_per_s": rnd(single, 2), "all_cores_per_s": rnd(allc, 2)}
    log(f"  libvips reference: {out['single_thread_per_s']} photos/s on one thread, {out['all_cores_per_s']} on {NPROC}")
    return out
