"""The run's throwaway PostgreSQL cluster.

Not the binary's own local cluster (src/db/local.rs): that one keeps its data across runs, is
started by whichever process comes first, and has fixed settings; the bench needs one cluster
shared by the API, N workers and the seed, with pg_stat_statements, a larger shared_buffers,
`--fsync-off`, and the postmaster's pid for the CPU accounting.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import log
from .db import sql
from .stack import Stack, free_port


@dataclass
class Cluster:
    url: str  # the `postgres` database
    pid: int  # the postmaster
    version: str  # `postgres --version`
    port: int


def as_postgres(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


def find_pg_bin() -> str:
    found = shutil.which("initdb")
    if found:
        return str(Path(found).resolve().parent)
    cands = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not cands:
        sys.exit("bench: PostgreSQL server binaries not found: apt-get install postgresql")
    return str(cands[-1].parent)


def start_postgres(stack: Stack, durable: bool) -> Cluster:
    """initdb + start under `stack.tmp`; `stack.close()` stops it (immediate mode)."""
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
    stack.cleanups.append(lambda: subprocess.run(
        as_postgres([f"{pg_bin}/pg_ctl", "-D", str(datadir), "-m", "immediate", "-w", "stop"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if r.returncode:
        sys.exit(f"bench: PostgreSQL did not start:\n{(pgdir / 'postgres.log').read_text(errors='replace')}")
    pid = int((datadir / "postmaster.pid").read_text().split()[0])
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    try:
        sql(url, "create extension if not exists pg_stat_statements", fetch=False)
    except Exception as e:  # contrib missing: the run goes on without statement statistics
        log(f"pg_stat_statements unavailable ({e})")
    version = subprocess.run([f"{pg_bin}/postgres", "--version"], capture_output=True, text=True).stdout.strip()
    return Cluster(url=url, pid=pid, version=version, port=port)
