#!/usr/bin/env python3
"""What the processed_images triggers cost PostgreSQL, current schema vs a proposed variant.

Evidence for the bench report (issue 9). Needs an EMPTY scratch database (it drops and creates
processed_images and its trigger functions there) and the bench venv:

    .venv-bench/driver/bin/python bench/pg_trigger_cost.py postgres://postgres@127.0.0.1:PORT/scratch

Measures the server backend's CPU (from /proc, so run it on the database host) for
  1. INSERT of a ~3.3 MB JPEG (the API's upload path),
  2. one INSERT ... SELECT of 5 000 tiny rows (SQL as a job source),
  3. claim + complete cycles of tiny jobs on one connection (the queue machinery),
with sql/0001 as it is, and with the proposal:
  * the sizes trigger gets a WHEN clause, so its PL/pgSQL body (which copies the whole row,
    blobs included, into a record and back) runs only when a size is missing or wrong; the API
    and the worker pass original_bytes / processed_bytes themselves;
  * the wake-up on INSERT is a plain statement trigger without a transition table (no copy of
    every inserted row into a tuplestore); the wake-up on UPDATE is a row trigger with
    WHEN (new.status = 'pending' and old.status is distinct from 'pending'), which is evaluated
    in C and fires only on retry/reap/release instead of on every claim, renew and completion.
"""
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
CLK = os.sysconf("SC_CLK_TCK")
CORPUS = ROOT / "bench" / "corpus"

PROPOSAL = """
drop trigger processed_images_sizes on processed_images;
create trigger processed_images_sizes before insert or update of original_data, processed_data on processed_images
  for each row when (new.original_bytes is distinct from octet_length(new.original_data)
                     or new.processed_bytes is distinct from octet_length(new.processed_data))
  execute function processed_images_sizes();
drop trigger processed_images_wake_on_insert on processed_images;
drop trigger processed_images_wake_on_update on processed_images;
create function processed_images_wake() returns trigger language plpgsql as $$
begin perform pg_notify('image_jobs', ''); return null; end $$;
create trigger processed_images_wake_on_insert after insert on processed_images
  for each statement execute function processed_images_wake();
create trigger processed_images_wake_on_update after update of status on processed_images
  for each row when (new.status = 'pending' and old.status is distinct from 'pending')
  execute function processed_images_wake();
"""

CLAIM = """with picked as (select id from processed_images where status = 'pending' and run_after <= now()
  order by run_after limit 4 for update skip locked)
update processed_images p set status = 'processing', claimed_by = 'w', attempts = p.attempts + 1,
  lease_expires_at = now() + interval '30 s', started_at = now(), error = null
from picked where p.id = picked.id returning p.id, p.attempts, p.original_data, p.pipeline"""


def cpu(pid):
    s = open(f"/proc/{pid}/stat").read()
    r = s[s.rfind(")") + 2:].split()
    return (int(r[11]) + int(r[12])) / CLK


def main():
    url = sys.argv[1]
    big = next(iter(sorted(CORPUS.glob("photo-4000x3000-*.jpg")))).read_bytes()
    tiny = (CORPUS / "tiny-16x16.png").read_bytes()
    c = psycopg.connect(url, autocommit=True)
    pid = c.execute("select pg_backend_pid()").fetchone()[0]

    def reset(proposal):
        c.execute("drop table if exists processed_images cascade")
        for fn in ("processed_images_sizes", "processed_images_wake_workers", "processed_images_status_event",
                   "processed_images_wake"):
            c.execute(f"drop function if exists {fn} cascade")
        c.execute((ROOT / "sql" / "0001_processed_images.sql").read_text())
        if proposal:
            c.execute(PROPOSAL)

    def run(label, proposal):
        reset(proposal)
        n = 30
        cols, args = ("original_data, original_bytes", (big, len(big))) if proposal else ("original_data", (big,))
        ins = (f"insert into processed_images ({cols}, filename, original_content_type, original_width, original_height) "
               f"values ({', '.join(['%b'] + ['%s'] * (len(args) - 1))}, 'x', 'image/jpeg', 4000, 3000)")
        c0 = cpu(pid)
        for _ in range(n):
            c.execute(ins, args)
        c1 = cpu(pid)
        c.execute("truncate processed_images")
        t = time.perf_counter()
        c.execute("insert into processed_images (original_data) select %b from generate_series(1, 5000)", (tiny,))
        bulk = time.perf_counter() - t
        c.execute("vacuum analyze processed_images")
        done = ("update processed_images set status = 'completed', processed_at = now(), processed_data = %b, "
                + ("processed_bytes = %s, " if proposal else "")
                + "processed_content_type = 'image/png', processed_width = 16, processed_height = 16, "
                  "thumbnail_data = %b, thumbnail_content_type = 'image/jpeg', claimed_by = null, "
                  "lease_expires_at = null, error = null "
                  "where id = %s and claimed_by = 'w' and attempts = %s and status = 'processing'")
        c2, t2, jobs = cpu(pid), time.perf_counter(), 0
        while rows := c.execute(CLAIM, binary=True).fetchall():
            for i, a, _, _ in rows:
                c.execute(done, (tiny, len(tiny), tiny, i, a) if proposal else (tiny, tiny, i, a))
                jobs += 1
        c3, t3 = cpu(pid), time.perf_counter()
        ok = c.execute("select bool_and(original_bytes = octet_length(original_data) and "
                       "processed_bytes = octet_length(processed_data)) from processed_images").fetchone()[0]
        results.setdefault(label, []).append((1000 * (c1 - c0) / n, 1000 * bulk, 1e6 * (c3 - c2) / jobs, jobs / (t3 - t2)))
        print(f"{label:9} insert {len(big) / 1e6:.1f} MB: {1000 * (c1 - c0) / n:5.1f} ms CPU | "
              f"5000-row INSERT..SELECT: {1000 * bulk:5.0f} ms | claim+complete: {1e6 * (c3 - c2) / jobs:4.0f} us CPU/job, "
              f"{jobs / (t3 - t2):5.0f} jobs/s on one connection | sizes correct: {ok}", flush=True)

    results = {}
    for _ in range(int(os.environ.get("REPEATS", "5"))):
        run("current", False)
        run("proposal", True)
    reset(False)
    print("medians:")
    for label, rows in results.items():
        m = [statistics.median(col) for col in zip(*rows)]
        print(f"{label:9} insert 3.3 MB {m[0]:5.1f} ms CPU | 5000-row INSERT..SELECT {m[1]:5.0f} ms | "
              f"claim+complete {m[2]:4.0f} us CPU/job, {m[3]:5.0f} jobs/s")


if __name__ == "__main__":
    main()
