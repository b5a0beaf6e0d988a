#!/usr/bin/env python3
"""End-to-end benchmark driver for image-processor (run it through scripts/bench).

Everything it starts (PostgreSQL cluster, API, workers, seed peer) lives in one temporary
directory and is stopped on exit, including on Ctrl-C. All traffic goes to 127.0.0.1.

Figures come from the database's own timestamps wherever possible:
  uploaded_at  (INSERT transaction start), started_at (claim), processed_at (result written).
  pickup latency     = started_at - uploaded_at, rows with attempts = 1
  completion latency = processed_at - uploaded_at
  throughput         = rows / (max(processed_at) - min(uploaded_at)) over one phase
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import datetime as dt
import io
import json
import math
import multiprocessing as mp
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import numpy as np
import psycopg
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
CLK = os.sysconf("SC_CLK_TCK")
NPROC = os.cpu_count() or 1
CORPUS_VERSION = "v1"


def log(msg: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')}: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- small helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), p))


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rnd(x, n=2):
    return None if x is None else round(x, n)


def loadavg():
    return [float(x) for x in open("/proc/loadavg").read().split()[:3]]


def machine_busy_s() -> float:
    """CPU-seconds the whole machine spent not idle (all cores), since boot."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return (sum(f[:8]) - idle) / CLK


def machine_iowait_s() -> float:
    """CPU-seconds the whole machine sat idle waiting for the disk (all cores), since boot."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (f[4] if len(f) > 4 else 0) / CLK


def proc_stat(pid: int):
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    rest = s[s.rfind(")") + 2:].split()
    return {"ppid": int(rest[1]), "self": (int(rest[11]) + int(rest[12])) / CLK,
            "children": (int(rest[13]) + int(rest[14])) / CLK}


def cpu_of(pid: int | None, with_children=False) -> float:
    if not pid:
        return 0.0
    st = proc_stat(pid)
    if st is None:
        return 0.0
    return st["self"] + (st["children"] if with_children else 0.0)


def tree_cpu(root: int | None) -> float:
    """CPU of a process, its live children (one level) and its reaped children."""
    if not root:
        return 0.0
    total = cpu_of(root, with_children=True)
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st["ppid"] == root:
                total += st["self"]
    return total


def pg_roles_cpu(postmaster: int | None) -> dict:
    """PostgreSQL CPU split by process role: backends (client connections) and background
    processes (walwriter, checkpointer, autovacuum, ...); reaped children count as 'exited'."""
    out = {"backends": 0.0, "background": 0.0, "exited": 0.0}
    if not postmaster:
        return out
    st = proc_stat(postmaster)
    if st:
        out["background"] += st["self"]
        out["exited"] += st["children"]
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if not st or st["ppid"] != postmaster:
            continue
        try:
            title = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out["backends" if "(" in title else "background"] += st["self"]  # backends show "host(port)"
    return out


def vm_hwm_mb(pid: int | None):
    if not pid:
        return None
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _set_pdeathsig():
    # Children die with the driver even if it is SIGKILLed.
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
    except Exception:
        pass


def as_postgres(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


# ----------------------------------------------------------------------------- corpus
def photo_jpeg(w: int, h: int, seed: int, quality=90) -> bytes:
    """A photo-like JPEG: smooth colour fields, hard-edged shapes, mid-frequency texture and
    sensor-like noise; about 0.28 bytes/pixel at q90, like a phone photo."""
    rng = np.random.default_rng(seed)
    gw, gh = max(3, w // 300), max(3, h // 300)
    base = Image.fromarray(rng.integers(0, 256, (gh, gw, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    d = ImageDraw.Draw(base)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(max(2, w // 60), max(3, w // 8)))
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            d.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=col)
        else:
            d.rectangle([x0 - r, y0 - r // 2, x0 + r, y0 + r // 2], fill=col)
    base = base.filter(ImageFilter.GaussianBlur(max(1, w // 1500)))
    mid = Image.fromarray(rng.normal(0, 18, (h // 8 + 1, w // 8 + 1)).astype(np.float32), "F").resize((w, h), Image.BILINEAR)
    arr = np.asarray(base, dtype=np.float32)
    arr += np.asarray(mid)[..., None]
    arr += rng.normal(0, 5, (h, w, 1)).astype(np.float32)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    b = io.BytesIO()
    img.save(b, "JPEG", quality=quality, subsampling=2)
    return b.getvalue()


PHOTO_SIZES = [(1152, 864), (1600, 1200), (2592, 1944), (3264, 2448), (4000, 3000), (3000, 4000), (5472, 3648)]
SMALL_SIZE = (640, 480)


def build_corpus(cache: Path, photo_dir: str | None):
    cache.mkdir(parents=True, exist_ok=True)
    stamp = cache / CORPUS_VERSION
    if not stamp.exists():
        log(f"generating the corpus in {cache} (once; cached)")
        for f in cache.glob("*"):
            if f.is_file():
                f.unlink()
        for i, (w, h) in enumerate(PHOTO_SIZES):
            for k in range(2):
                (cache / f"photo-{w}x{h}-{k}.jpg").write_bytes(photo_jpeg(w, h, 100 + 10 * i + k))
        for k in range(8):
            (cache / f"small-640x480-{k}.jpg").write_bytes(photo_jpeg(*SMALL_SIZE, 500 + k))
        # ~100 KB upload for the ingest test: the quality that lands closest to 100 000 bytes
        best = min(((abs(len(b) - 100_000), b) for q in range(80, 99, 2)
                    for b in [photo_jpeg(720, 540, 900, quality=q)]), key=lambda t: t[0])[1]
        (cache / "ingest-100k.jpg").write_bytes(best)
        b = io.BytesIO()
        Image.fromarray(np.random.default_rng(7).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(b, "PNG")
        (cache / "tiny-16x16.png").write_bytes(b.getvalue())
        stamp.write_text("ok\n")
    if photo_dir:
        exts = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
        photos = sorted(p for p in Path(photo_dir).iterdir() if p.suffix.lower() in exts and p.is_file())
        if not photos:
            sys.exit(f"bench: no images in {photo_dir}")
    else:
        photos = sorted(cache.glob("photo-*.jpg"))
    corpus = {
        "photos": [(p.name, p.read_bytes()) for p in photos],
        "small": [(p.name, p.read_bytes()) for p in sorted(cache.glob("small-*.jpg"))],
        "ingest": ("ingest-100k.jpg", (cache / "ingest-100k.jpg").read_bytes()),
        "tiny": ("tiny-16x16.png", (cache / "tiny-16x16.png").read_bytes()),
        "photo_paths": photos,
    }
    mp_list = []
    for p in photos:
        with Image.open(p) as im:
            mp_list.append(im.width * im.height / 1e6)
    corpus["photo_desc"] = {
        "files": len(photos), "source": photo_dir or "generated",
        "megapixels_min": rnd(min(mp_list), 1), "megapixels_max": rnd(max(mp_list), 1),
        "megapixels_mean": rnd(statistics.mean(mp_list), 1),
        "bytes_mean": int(statistics.mean(len(b) for _, b in corpus["photos"])),
    }
    return corpus


def multipart(filename: str, data: bytes, fields: dict[str, str]):
    boundary = "benchboundary" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    ctype = "image/png" if filename.endswith(".png") else "image/jpeg"
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


FIELDS = {"width": "800", "height": "800"}


# ----------------------------------------------------------------------------- processes
class Stack:
    """Every process and directory this run starts; `close()` undoes them in reverse order."""

    def __init__(self, keep_tmp=False):
        self.tmp = Path(tempfile.mkdtemp(prefix="image-processor-bench."))
        os.chmod(self.tmp, 0o755)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.pg = None  # (pg_bin, datadir)
        self.keep_tmp = keep_tmp
        self.closed = False

    def start(self, name, argv, env, cwd=None):
        logf = open(self.tmp / f"{name}.log", "ab")
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_set_pdeathsig)
        logf.close()
        self.procs.append((name, p))
        return p

    def stop(self, p: subprocess.Popen, timeout=30):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)
        self.procs = [(n, q) for n, q in self.procs if q is not p]

    def log_tail(self, name, n=30):
        try:
            return "\n".join((self.tmp / f"{name}.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def close(self):
        if self.closed:
            return
        self.closed = True
        for _, p in reversed(list(self.procs)):
            try:
                self.stop(p, timeout=15)
            except Exception as e:  # keep going: the cluster must still be stopped
                log(f"stopping pid {p.pid}: {e}")
        if self.pg:
            pg_bin, datadir = self.pg
            subprocess.run(as_postgres([f"{pg_bin}/pg_ctl", "-D", str(datadir), "-m", "immediate", "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.keep_tmp:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def find_pg_bin() -> str:
    found = shutil.which("initdb")
    if found:
        return str(Path(found).resolve().parent)
    cands = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not cands:
        sys.exit("bench: PostgreSQL server binaries not found: apt-get install postgresql")
    return str(cands[-1].parent)


def start_postgres(stack: Stack, durable: bool):
    pg_bin = find_pg_bin()
    port = free_port()
    pgdir = stack.tmp / "pg"
    pgdir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(pgdir, "postgres")
    datadir = pgdir / "data"
    r = subprocess.run(as_postgres([f"{pg_bin}/initdb", "-D", str(datadir), "-U", "postgres", "-A", "trust",
                                    "-E", "UTF8", "--no-sync"]), capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"bench: initdb failed:\n{r.stdout}\n{r.stderr}")
    opts = [f"-p {port}", f"-k {pgdir}", "-c listen_addresses=127.0.0.1", "-c max_connections=300",
            "-c shared_buffers=256MB", "-c shared_preload_libraries=pg_stat_statements",
            "-c pg_stat_statements.track=all"]
    if not durable:
        opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    r = subprocess.run(as_postgres([f"{pg_bin}/pg_ctl", "-D", str(datadir), "-l", str(pgdir / "postgres.log"),
                                    "-w", "-t", "60", "-o", " ".join(opts), "start"]), capture_output=True, text=True)
    stack.pg = (pg_bin, datadir)
    if r.returncode:
        sys.exit(f"bench: PostgreSQL did not start:\n{(pgdir / 'postgres.log').read_text(errors='replace')}")
    pid = int((datadir / "postmaster.pid").read_text().split()[0])
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    try:
        sql(url, "create extension if not exists pg_stat_statements", fetch=False)
    except Exception as e:  # contrib missing: the run goes on without statement statistics
        log(f"pg_stat_statements unavailable ({e})")
    version = subprocess.run([f"{pg_bin}/postgres", "--version"], capture_output=True, text=True).stdout.strip()
    return f"postgres://postgres@127.0.0.1:{port}/postgres", pid, version, port


def sql(url, query, params=None, fetch=True):
    with psycopg.connect(url, autocommit=True) as c:
        cur = c.execute(query, params)
        return cur.fetchall() if fetch and cur.description else None


def wait_http(url, proc, name, stack, timeout=90):
    import urllib.request
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"bench: {name} exited during start-up:\n{stack.log_tail(name)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"bench: {name} not ready within {timeout} s:\n{stack.log_tail(name)}")


class Service:
    """Our API process plus a changeable set of worker processes."""

    def __init__(self, stack, binary, db_url, rust_log, log_format):
        self.stack, self.bin, self.db_url = stack, binary, db_url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, DATABASE_URL=db_url, RUST_LOG=rust_log, LOG_FORMAT=log_format,
                        DATA_DIR=str(stack.tmp / "data"))
        self.api = stack.start("api", [binary, "api"], dict(self.env, LISTEN_ADDR=f"127.0.0.1:{self.port}"))
        wait_http(self.base + "/readyz", self.api, "api", stack)
        self.workers: list[subprocess.Popen] = []
        self.threads = 0

    def start_workers(self, n, threads):
        self.stop_workers()
        self.threads = threads
        for i in range(n):
            name = f"worker{len(self.workers)}-{n}x{threads}"
            self.workers.append(self.stack.start(name, [self.bin, "worker"],
                                                 dict(self.env, WORKER_THREADS=str(threads),
                                                      LISTEN_ADDR="127.0.0.1:0")))
        # Ready = every worker has processed a job: SQL-insert a few tiny rows and wait for them.
        time.sleep(0.5)
        for p in self.workers:
            if p.poll() is not None:
                sys.exit(f"bench: a worker exited during start-up:\n{self.stack.log_tail(name)}")
        tag = f"warmup-{uuid.uuid4().hex[:8]}"
        sql(self.db_url, "insert into processed_images (original_data, filename) "
                         "select %s, %s from generate_series(1, %s)", (TINY[1], tag, n * threads * 2), fetch=False)
        end = time.time() + 60
        while time.time() < end:
            left = sql(self.db_url, "select count(*) from processed_images where filename = %s "
                                    "and status not in ('completed','failed')", (tag,))[0][0]
            if left == 0:
                break
            time.sleep(0.05)
        else:
            sys.exit("bench: workers did not process the warm-up jobs within 60 s")
        time.sleep(0.3)  # let every worker settle back to idle on its LISTEN
        truncate(self.db_url)

    def stop_workers(self):
        for p in self.workers:
            self.stack.stop(p)
        self.workers = []

    def cpu(self):
        return {"api": cpu_of(self.api.pid, True), "workers": sum(cpu_of(p.pid, True) for p in self.workers)}

    def rss(self):
        return {"api_mb": rnd(vm_hwm_mb(self.api.pid), 1),
                "worker_mb": rnd(max((vm_hwm_mb(p.pid) or 0) for p in self.workers), 1) if self.workers else None}


class Seed:
    def __init__(self, stack, seed_dir: Path, pg_admin_url, pg_port):
        self.stack = stack
        venv = ROOT / ".venv-bench" / "seed"
        if not (venv / "bin" / "gunicorn").exists():
            log(f"creating {venv} for the seed peer")
            subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                            "-r", str(seed_dir / "requirements.txt")], check=True)
        sql(pg_admin_url, "create database seed")
        self.db_url = f"postgresql://postgres@127.0.0.1:{pg_port}/seed"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=self.db_url, BIND=f"127.0.0.1:{self.port}", PYTHONDONTWRITEBYTECODE="1",
                   LOG_LEVEL="WARNING")
        self.proc = stack.start("seed", [str(venv / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "app:app"],
                                env, cwd=str(seed_dir))
        wait_http(self.base + "/healthz", self.proc, "seed", stack)

    def cpu(self):
        return tree_cpu(self.proc.pid)

    def rss_mb(self):
        # gunicorn's single worker process is the master's child
        best = None
        for d in os.listdir("/proc"):
            if d.isdigit():
                st = proc_stat(int(d))
                if st and st["ppid"] == self.proc.pid:
                    best = max(best or 0, vm_hwm_mb(int(d)) or 0)
        return rnd(best, 1)


def settle(url, secs=0.5):
    """Every phase starts from the same state: no checkpoint or WAL backlog from the previous
    phase (the photo phases write GBs of WAL), then a short pause."""
    try:
        sql(url, "checkpoint", fetch=False)
    except Exception:
        pass
    time.sleep(secs)


def truncate(url):
    sql(url, "truncate processed_images", fetch=False)


# ----------------------------------------------------------------------------- CPU accounting
class CpuMeter:
    def __init__(self, ctx):
        self.ctx = ctx

    def snap(self):
        ctx = self.ctx
        roles = pg_roles_cpu(ctx["pg_pid"])
        s = {"wall": time.monotonic(), "machine": machine_busy_s(), "iowait": machine_iowait_s(),
             "pg": sum(roles.values()),
             "pg_backends": roles["backends"], "pg_background": roles["background"] + roles["exited"],
             "driver": sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime
                           for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))}
        s.update(ctx["service"].cpu())
        s["seed"] = ctx["seed"].cpu() if ctx.get("seed") else 0.0
        return s

    @staticmethod
    def delta(a, b):
        d = {k: b[k] - a[k] for k in a}
        wall = d.pop("wall")
        mine = d["pg"] + d["api"] + d["workers"] + d["seed"] + d["driver"]  # pg_* are parts of pg
        out = {k: rnd(v, 2) for k, v in d.items()}
        out["wall_s"] = rnd(wall, 2)
        out["other_s"] = rnd(max(0.0, d["machine"] - mine), 2)
        out["other_load"] = rnd(max(0.0, d["machine"] - mine) / wall if wall else 0, 2)
        # Cores idle for want of the disk (fsync stalls): a phase high here was disk-bound.
        out["iowait_load"] = rnd(d["iowait"] / wall if wall else 0, 2)
        return out


# ----------------------------------------------------------------------------- load phases
async def _wait_ours(session, base, image_id):
    while True:
        async with session.get(f"{base}/api/images/{image_id}", params={"wait": "30"}) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"GET status {r.status}: {body}")
        if body["status"] in ("completed", "failed"):
            return body["status"]


class SeedWaiter:
    """The seed has no ?wait: instead of having 8 clients poll its Flask app (which would steal
    its CPU), the driver watches the seed's table itself, one query every 10 ms."""

    def __init__(self, db_url):
        self.db_url = db_url
        self.futs: dict[str, asyncio.Future] = {}
        self.task = None

    async def __aenter__(self):
        self.conn = await psycopg.AsyncConnection.connect(self.db_url, autocommit=True)
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        await self.conn.close()

    async def _run(self):
        while True:
            if self.futs:
                ids = list(self.futs)
                cur = await self.conn.execute(
                    "select id::text, status from processed_images where id = any(%s::uuid[]) "
                    "and status in ('completed','failed')", (ids,))
                for i, st in await cur.fetchall():
                    f = self.futs.pop(i, None)
                    if f and not f.done():
                        f.set_result(st)
            await asyncio.sleep(0.01)

    def wait(self, image_id):
        f = asyncio.get_running_loop().create_future()
        self.futs[image_id] = f
        return f


async def closed_loop(target, items, clients, duration, fields=FIELDS):
    """`clients` concurrent clients, each: upload one file, wait until it is done, repeat, until
    `duration` s have passed. Returns [(id, client-observed seconds, status)]."""
    bodies = [multipart(name, data, fields) for name, data in items]
    results = []
    errors = []
    stop_at = time.monotonic() + duration
    conn = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        waiter_cm = SeedWaiter(target["db_url"]) if target["kind"] == "seed" else None
        waiter = await waiter_cm.__aenter__() if waiter_cm else None
        try:
            async def client(k):
                i = k
                while time.monotonic() < stop_at:
                    body, ctype = bodies[i % len(bodies)]
                    i += clients
                    t0 = time.monotonic()
                    async with session.post(target["base"] + "/api/images", data=body,
                                            headers={"Content-Type": ctype}) as r:
                        if r.status == 503:
                            await asyncio.sleep(0.05)
                            continue
                        js = await r.json()
                        if r.status != 202:
                            errors.append(f"upload {r.status}: {js}")
                            if len(errors) > 20:
                                raise RuntimeError("too many upload errors: " + errors[0])
                            continue
                    image_id = js["id"]
                    if waiter:
                        fut = waiter.wait(image_id)
                        status = await asyncio.wait_for(fut, 300)
                    else:
                        status = await _wait_ours(session, target["base"], image_id)
                    results.append((image_id, time.monotonic() - t0, status))

            await asyncio.gather(*(client(k) for k in range(clients)))
        finally:
            if waiter_cm:
                await waiter_cm.__aexit__(None, None, None)
    return results, errors


def db_rows(db_url, ids, has_started=True):
    started = "extract(epoch from started_at)" if has_started else "null"
    attempts = "attempts" if has_started else "1"
    return sql(db_url, f"select extract(epoch from uploaded_at)::float8, {started}::float8, "
                       f"extract(epoch from processed_at)::float8, {attempts}, status "
                       f"from processed_images where id = any(%s::uuid[])", (ids,))


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


def reset_statements(db_url):
    try:
        sql(db_url, "select pg_stat_statements_reset()")
        return sql(db_url, "select oid from pg_database where datname = current_database()")[0][0]
    except Exception:
        return None


def top_statements(db_url, dbid, n=6):
    """The statements that took the most server time during the phase (pg_stat_statements)."""
    try:
        rows = sql(db_url, """select calls, total_exec_time, mean_exec_time, rows, shared_blks_hit + shared_blks_read,
                                     wal_bytes, regexp_replace(query, '\\s+', ' ', 'g')
                              from pg_stat_statements where dbid = %s and query not like '%%pg_stat_statements%%'
                                and query not like 'select extract(%%' and query not ilike 'truncate%%'
                              order by total_exec_time desc limit %s""", (dbid, n))
    except Exception as e:
        return [{"error": str(e)}]
    return [{"calls": c, "total_ms": rnd(t, 1), "mean_ms": rnd(m, 3), "rows": r, "blocks": b,
             "wal_mb": rnd(float(w) / 1e6, 1), "query": q[:160]} for c, t, m, r, b, w, q in rows]


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
                await _wait_ours(session, service.base, js["id"])
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


def _ingest_child(base, body, ctype, conc, start_at, stop_at, q):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)

    async def go():
        acc, busy, other, lat = 0, 0, [], []
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as s:
            await asyncio.sleep(max(0, start_at - time.time()))

            async def one():
                nonlocal acc, busy
                while time.time() < stop_at:
                    t0 = time.monotonic()
                    try:
                        async with s.post(base + "/api/images", data=body, headers={"Content-Type": ctype}) as r:
                            await r.read()
                            if r.status == 202:
                                acc += 1
                                lat.append(time.monotonic() - t0)
                            elif r.status == 503:
                                busy += 1
                                await asyncio.sleep(0.005)
                            else:
                                other.append(r.status)
                    except aiohttp.ClientError as e:
                        other.append(str(e)[:80])

            await asyncio.gather(*(one() for _ in range(conc)))
        return acc, busy, other[:5], len(other), lat

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    res = asyncio.run(go())
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    q.put(res + (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime,))


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
    ps = [mpc.Process(target=_ingest_child, args=(service.base, body, ctype, c, start_at, stop_at, q)) for c in per if c]
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


# ----------------------------------------------------------------------------- the run
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


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="about a minute: shorter phases, one repeat")
    ap.add_argument("--against-seed", nargs="?", const=str(ROOT.parent / "shared" / "peers" / "seed"), default=None,
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
    ap.add_argument("--repeats", type=int, help="repeats of the headline phases (3; quick 1); medians are quoted")
    ap.add_argument("--photo-secs", type=float, help="length of a photo phase (8; quick 4)")
    ap.add_argument("--small-secs", type=float, help="length of a small-image phase (5; quick 3)")
    ap.add_argument("--ingest-secs", type=float, help="length of the ingest phase (5; quick 3)")
    ap.add_argument("--pickup-n", type=int, help="sequential uploads for pickup latency (100; quick 40)")
    ap.add_argument("--queue-n", type=int, help="tiny rows for the queue-overhead phase (5000; quick 2000)")
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
    args = ap.parse_args()
    if args.render:
        r = json.loads(Path(args.render).read_text())
        derive(r)
        if args.baseline:
            r["baseline"] = compare(r, json.loads(Path(args.baseline).read_text()), args.baseline)
        write_outputs(r, Path(args.out), stamp_run=False)
        return
    q = args.quick
    args.repeats = args.repeats or (1 if q else 3)
    args.photo_secs = args.photo_secs or (4 if q else 8)
    args.small_secs = args.small_secs or (3 if q else 5)
    args.ingest_secs = args.ingest_secs or (3 if q else 5)
    args.pickup_n = args.pickup_n or (40 if q else 100)
    args.queue_n = args.queue_n or (2000 if q else 5000)
    scaling = [int(x) for x in args.scaling.split(",") if x.strip()]

    t_start = time.time()
    started = dt.datetime.now(dt.timezone.utc)
    load_start = loadavg()
    result = {"version": 1, "started": started.isoformat(timespec="seconds"),
              "machine": {"nproc": NPROC, "cpu": cpu_model(), "mem_gb": mem_gb(), "kernel": platform.release(),
                          "loadavg_start": load_start},
              "git": git_info(),
              "settings": {k: v for k, v in vars(args).items() if k not in ("out",)}}

    # build
    binary = args.bin or str(ROOT / "target" / "release" / "image-processor")
    if not args.bin and not args.no_build:
        log("cargo build --release --locked (waits if another build holds the lock)")
        t = time.monotonic()
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "image-processor"], cwd=ROOT, check=True)
        result["build_s"] = rnd(time.monotonic() - t, 1)
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench: {binary} is not an executable")

    corpus = build_corpus(ROOT / "bench" / "corpus", args.corpus)
    global TINY
    TINY = corpus["tiny"]
    result["corpus"] = {"photos": corpus["photo_desc"], "small": {"files": len(corpus["small"]), "size": "640x480"},
                        "ingest_file_bytes": len(corpus["ingest"][1])}

    stack = Stack(keep_tmp=args.keep_tmp)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        log(f"starting a throwaway PostgreSQL in {stack.tmp}")
        db_url, pg_pid, pg_version, pg_port = start_postgres(stack, args.durable)
        result["postgres"] = {"version": pg_version, "durable": args.durable,
                              "settings": "fsync, synchronous_commit, full_page_writes " + ("on" if args.durable else "off")}
        service = Service(stack, binary, db_url, args.rust_log, "text")
        ctx = {"pg_pid": pg_pid, "service": service, "corpus": corpus, "seed": None, "statements": False}
        ours = {"kind": "ours", "base": service.base, "db_url": db_url}
        seed = None
        if args.against_seed:
            log(f"starting the seed peer from {args.against_seed}")
            seed = Seed(stack, Path(args.against_seed), db_url, pg_port)
            ctx["seed"] = seed
        seed_t = {"kind": "seed", "base": seed.base, "db_url": seed.db_url} if seed else None

        log("reference: bare libvips on the photo corpus")
        result["reference"] = {"libvips": run_vips_reference(corpus["photo_paths"], 1 if q else 2)}

        log(f"ingest: {args.ingest_clients} clients, ~{len(corpus['ingest'][1]) // 1000} KB files, no workers running")
        result["ingest"] = run_ingest(ctx, service, args.ingest_clients, args.ingest_procs, args.ingest_secs)

        # headline: the configured worker set, side by side with the seed, alternating order
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
        head["rss"] = service.rss()
        if seed:
            head["rss"]["seed_mb"] = seed.rss_mb()
        service.stop_workers()
        result["headline"] = head

        # scaling curve
        result["scaling"] = []
        for n in scaling:
            log(f"scaling: {n} worker process(es) x WORKER_THREADS={args.scaling_threads}")
            service.start_workers(n, args.scaling_threads)
            row = {"workers": n, "threads": args.scaling_threads}
            row["pickup"] = run_pickup(ctx, service, max(20, args.pickup_n // 2), 0.02)
            row["photos"] = run_e2e(ctx, ours, "photos", args.clients, args.photo_secs)
            row["small"] = run_e2e(ctx, ours, "small", args.clients, args.small_secs)
            row["queue"] = run_queue(ctx, service, args.queue_n)
            row["rss"] = service.rss()
            service.stop_workers()
            result["scaling"].append(row)
        result["rss_api_mb"] = service.rss()["api_mb"]
    finally:
        stack.close()

    result["machine"]["loadavg_end"] = loadavg()
    result["duration_s"] = rnd(time.time() - t_start, 1)
    derive(result)
    if args.baseline:
        result["baseline"] = compare(result, json.loads(Path(args.baseline).read_text()), args.baseline)
    write_outputs(result, Path(args.out))


# ----------------------------------------------------------------------------- reporting
def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def mem_gb():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None


def git_info():
    def g(*a):
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip()
    return {"rev": g("rev-parse", "--short", "HEAD"), "dirty": bool(g("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock", "sql"))}


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
    put("ingest_per_s", r.get("ingest", {}).get("per_s"), True, "uploads/s")
    put("api_rss_mb", r.get("rss_api_mb"), False, "MB")
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

    target("photos end to end vs seed", h["photos"].get("ratio"), ">=", 2.5, "x")
    target("  (noise-robust view: photos per service CPU-second vs seed)", h["photos"].get("cpu_efficiency_ratio"), ">=", 2.5, "x")
    target("photos vs imaging single-thread x cores", r.get("photos_vs_ceiling"), ">=", 0.85, "")
    target("imaging share of service CPU, photos", r.get("imaging_cpu_share"), ">=", 0.85, "")
    target("small images end to end vs seed", h["small"].get("ratio"), ">=", 4, "x")
    target("  (noise-robust view: small per service CPU-second vs seed)", h["small"].get("cpu_efficiency_ratio"), ">=", 4, "x")
    target("pickup latency p50 (idle)", h["pickup"].get("p50_ms"), "<=", 5, " ms")
    target("pickup latency p99 (idle)", h["pickup"].get("p99_ms"), "<=", 25, " ms")
    target("queue overhead (tiny, SQL bulk)", h["queue"].get("jobs_per_s"), ">=", 2000, " jobs/s")
    target("upload ingest (100 KB)", r["ingest"].get("per_s"), ">=", 500, " uploads/s")
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
    lines += ["", f"![charts]({svg_name})", "", "## Targets (issue 9)", ""]
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
              f"- **Upload ingest**: {ing['clients']} concurrent clients ({ing['client_procs']} processes), "
              f"{ing['file_bytes'] // 1000} KB JPEG, multipart, no workers running: **{fmt(ing['per_s'])} uploads/s** accepted "
              f"({fmt(ing['mb_per_s'])} MB/s; latency p50 {fmt(ing['p50_ms'], ' ms')}, p99 {fmt(ing['p99_ms'], ' ms')}; "
              f"{ing['busy_503']} × 503, {ing['other_errors']} other errors; load driver used {ing['client_cpu_s']} CPU-s "
              f"in {ing['duration_s']} s).",
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


def svg_charts(r):
    W, H = 880, 300
    panels = []
    sc = r.get("scaling") or []
    h = r["headline"]
    seed = h["photos"].get("seed")

    thr_note = f"worker processes × {sc[0]['threads'] if sc else 1} thread"

    def line_panel(x0, title, xs, ys, ref=None, ref_label=None, unit=""):
        pw, ph, left, top = 190, 190, x0 + 40, 60
        out = [f'<text x="{x0 + 10}" y="30" font-size="13" font-weight="bold">{title}</text>']
        vals = [v for v in ys if v is not None] + ([ref] if ref else [])
        if not vals:
            return "\n".join(out)
        ymax = max(vals) * 1.15 or 1
        xmax = max(xs) if xs else 1
        def X(x): return left + (0 if xmax == 1 else (math.log2(x) / math.log2(xmax)) * pw) if xmax > 1 else left + pw / 2
        def Y(y): return top + ph - y / ymax * ph
        out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>')
        out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>')
        for i in range(5):
            yv = ymax * i / 4
            out.append(f'<text x="{left - 4}" y="{Y(yv) + 4:.1f}" font-size="10" text-anchor="end">{yv:.0f}</text>')
            out.append(f'<line x1="{left}" y1="{Y(yv):.1f}" x2="{left + pw}" y2="{Y(yv):.1f}" stroke="#eee"/>')
        for x in xs:
            out.append(f'<text x="{X(x):.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{x}</text>')
        out.append(f'<text x="{left + pw / 2}" y="{top + ph + 30}" font-size="10" text-anchor="middle">{thr_note}</text>')
        if ref:
            out.append(f'<line x1="{left}" y1="{Y(ref):.1f}" x2="{left + pw}" y2="{Y(ref):.1f}" stroke="#c33" stroke-dasharray="5,4"/>')
            out.append(f'<text x="{left + pw}" y="{Y(ref) - 4:.1f}" font-size="10" fill="#c33" text-anchor="end">{ref_label} {ref:.1f}</text>')
        pts = [(X(x), Y(y)) for x, y in zip(xs, ys) if y is not None]
        if pts:
            out.append('<polyline fill="none" stroke="#2a6fb0" stroke-width="2" points="' +
                       " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
            for (a, b), y in zip(pts, [y for y in ys if y is not None]):
                out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="#2a6fb0"/>')
                out.append(f'<text x="{a:.1f}" y="{b - 8:.1f}" font-size="10" text-anchor="middle">{y:.0f}</text>')
        return "\n".join(out)

    xs = [row["workers"] for row in sc]
    thr = sc[0]["threads"] if sc else 1
    panels.append(line_panel(0, "photos/s", xs, [row["photos"].get("per_s") for row in sc],
                             seed.get("per_s") if seed else None, "seed"))
    sseed = h["small"].get("seed")
    panels.append(line_panel(220, "small images/s", xs, [row["small"].get("per_s") for row in sc],
                             sseed.get("per_s") if sseed else None, "seed"))
    panels.append(line_panel(440, "queue jobs/s (tiny)", xs, [row["queue"].get("jobs_per_s") for row in sc], 2000, "target"))
    # pickup latency bars: headline + each scaling row, p50/p95/p99
    x0, left, top, pw, ph = 660, 700, 60, 170, 190
    groups = [(f"{h['workers']}×{h['threads']}", h["pickup"])] + [(f"{row['workers']}×{row['threads']}", row["pickup"]) for row in sc]
    out = [f'<text x="{x0 + 10}" y="30" font-size="13" font-weight="bold">pickup latency, idle (ms)</text>']
    vals = [g[1].get(k) for g in groups for k in ("p50_ms", "p95_ms", "p99_ms") if g[1].get(k) is not None]
    ymax = max(vals + [25]) * 1.1
    def Y(y): return top + ph - y / ymax * ph
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>')
    for i in range(5):
        yv = ymax * i / 4
        out.append(f'<text x="{left - 4}" y="{Y(yv) + 4:.1f}" font-size="10" text-anchor="end">{yv:.0f}</text>')
    for yv in (5, 25):
        out.append(f'<line x1="{left}" y1="{Y(yv):.1f}" x2="{left + pw}" y2="{Y(yv):.1f}" stroke="#c33" stroke-dasharray="4,3"/>')
    out.append(f'<text x="{x0 + 10}" y="46" font-size="10" fill="#c33">dashed: goals p50 ≤ 5, p99 ≤ 25 ms</text>')
    gw = pw / max(1, len(groups))
    colors = {"p50_ms": "#2a6fb0", "p95_ms": "#7aa6d6", "p99_ms": "#c4d7ee"}
    for i, (lab, p) in enumerate(groups):
        for j, k in enumerate(("p50_ms", "p95_ms", "p99_ms")):
            v = p.get(k)
            if v is None:
                continue
            bx = left + i * gw + 4 + j * (gw - 8) / 3
            out.append(f'<rect x="{bx:.1f}" y="{Y(v):.1f}" width="{(gw - 8) / 3 - 1:.1f}" height="{top + ph - Y(v):.1f}" fill="{colors[k]}"/>')
        out.append(f'<text x="{left + i * gw + gw / 2:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{lab}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 30}" font-size="10" text-anchor="middle">procs × threads: p50 p95 p99</text>')
    panels.append("\n".join(out))
    title = (f"image-processor bench {r['started']} · git {r['git']['rev']} · {NPROC} cores · "
             f"load {r['machine']['loadavg_start'][0]:.1f}→{r['machine']['loadavg_end'][0]:.1f}")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
            f'font-family="sans-serif">\n<rect width="{W}" height="{H}" fill="white"/>\n'
            f'<text x="10" y="{H - 8}" font-size="10" fill="#666">{title}</text>\n' + "\n".join(panels) + "\n</svg>\n")


def write_outputs(r, out: Path, stamp_run=True):
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    stamp = r["started"].replace(":", "").replace("+0000", "Z")
    js = json.dumps(r, indent=1, sort_keys=False, default=str)
    if stamp_run:
        (out / "runs" / f"{stamp}.json").write_text(js)
    (out / "latest.json").write_text(js)
    (out / "latest.svg").write_text(svg_charts(r))
    md = report_md(r, "latest.svg")
    (out / "latest.md").write_text(md + "\n")
    # stdout: the tables
    print(md.split("## Method")[0])
    log(f"wrote {out / 'latest.md'}, {out / 'latest.json'}, {out / 'latest.svg'}" + (f" and runs/{stamp}.json" if stamp_run else ""))


TINY = None

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaned up")
        sys.exit(130)
