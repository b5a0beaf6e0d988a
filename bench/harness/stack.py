"""Every process and directory a run starts, and the one place that undoes them."""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from . import log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _set_pdeathsig():
    # Children die with the driver even if it is SIGKILLed.
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
    except Exception:
        pass


class Stack:
    """Every process and directory this run starts; `close()` undoes them in reverse order."""

    def __init__(self, keep_tmp=False):
        self.tmp = Path(tempfile.mkdtemp(prefix="image-processor-bench."))
        os.chmod(self.tmp, 0o755)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        # Run after the processes are stopped (the PostgreSQL cluster's shutdown).
        self.cleanups: list = []
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
        for cleanup in reversed(self.cleanups):
            cleanup()
        if self.keep_tmp:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def wait_http(url, proc, name, stack, timeout=90):
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
