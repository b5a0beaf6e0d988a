"""End-to-end benchmark harness for image-processor (run it through scripts/bench).

Everything it starts (PostgreSQL cluster, API, workers, seed peer) lives in one temporary
directory and is stopped on exit, including on Ctrl-C. All traffic goes to 127.0.0.1.

Figures come from the database's own timestamps wherever possible:
  uploaded_at  (INSERT transaction start), started_at (claim), processed_at (result written).
  pickup latency     = started_at - uploaded_at, rows with attempts = 1
  completion latency = processed_at - uploaded_at
  throughput         = rows / (max(processed_at) - min(uploaded_at)) over one phase

Layout, in the order a run uses it:
  __main__   the command line and the run itself (which phase, in which order)
  build      cargo builds of the service binary and of the photo generator (examples/photo.rs)
  corpus     the generated (or the user's) photos, the multipart bodies
  stack      every process and directory the run starts, undone on exit
  cluster    the throwaway PostgreSQL cluster
  db         the SQL the harness itself runs (reset between phases, timestamps, statements)
  services   our API and workers, the seed peer under gunicorn
  procstat   /proc: CPU per process and PostgreSQL role, the machine's busy time, peak RSS
  load       the HTTP clients: closed loop, the seed's table watcher, ingest flood
  phases     one function per measured phase, returning its summary
  stats      percentiles, medians, derived figures, targets, baseline ratios
  report     latest.md / latest.json / runs/<time>.json
  chart      latest.svg, drawn with matplotlib
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NPROC = os.cpu_count() or 1


def log(msg: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')}: {msg}", file=sys.stderr, flush=True)
