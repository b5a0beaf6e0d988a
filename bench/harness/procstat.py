"""CPU and memory from /proc: per process, per PostgreSQL role, for the whole machine; and the
meter that turns two snapshots into a phase's CPU accounting."""
from __future__ import annotations

import os
import platform
import resource
import time

from .stats import rnd

CLK = os.sysconf("SC_CLK_TCK")


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


def children_of(parent: int):
    """Pids of the live processes whose parent is `parent`, with their /proc stat."""
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st["ppid"] == parent:
                yield int(d), st


def tree_cpu(root: int | None) -> float:
    """CPU of a process, its live children (one level) and its reaped children."""
    if not root:
        return 0.0
    return cpu_of(root, with_children=True) + sum(st["self"] for _, st in children_of(root))


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
    for pid, st in children_of(postmaster):
        try:
            title = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out["backends" if "(" in title else "background"] += st["self"]  # backends show "host(port)"
    return out


def _status_mb(pid: int | None, field: str):
    """A memory line of /proc/PID/status (kB) in MiB; None if the process is gone."""
    if not pid:
        return None
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def vm_hwm_mb(pid: int | None):
    """Peak resident memory (VmHWM), in MiB."""
    return _status_mb(pid, "VmHWM")


def vm_rss_mb(pid: int | None):
    """Resident memory now (VmRSS), in MiB."""
    return _status_mb(pid, "VmRSS")


def reset_hwm(pid: int):
    """Sets a process's peak resident memory (VmHWM) back to its current RSS (Linux >= 4.0)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


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


class CpuMeter:
    """Snapshots of every CPU counter a phase is charged with; `delta` of two is the phase's
    accounting, including the *other load* of processes outside the benchmark."""

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
