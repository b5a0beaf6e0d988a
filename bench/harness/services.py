"""The two systems under test: our API with a changeable set of worker processes, and the seed
peer (the original Flask design) under gunicorn."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from . import ROOT, log
from .db import sql, truncate
from .procstat import children_of, cpu_of, tree_cpu, vm_hwm_mb
from .stack import free_port, wait_http
from .stats import rnd


class Service:
    """Our API process plus a changeable set of worker processes."""

    def __init__(self, stack, binary, db_url, rust_log, log_format, warmup_file: bytes):
        self.stack, self.bin, self.db_url = stack, binary, db_url
        # The tiny image the warm-up jobs are made of.
        self.warmup_file = warmup_file
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
                         "select %s, %s from generate_series(1, %s)", (self.warmup_file, tag, n * threads * 2),
            fetch=False)
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
    """The seed peer in its own venv, on its own database `seed` of the same cluster."""

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
        for pid, _ in children_of(self.proc.pid):
            best = max(best or 0, vm_hwm_mb(pid) or 0)
        return rnd(best, 1)
