#!/usr/bin/env python3
"""Does NOTIFY in every transaction serialize commits? Evidence for the bench report (issue 9).

PostgreSQL takes a database-wide lock in PreCommit_Notify and holds it until the commit record is
written (and, with synchronous_commit = on, flushed), so transactions that NOTIFY commit one at a
time: no group commit. processed_images notifies from every INSERT (image_jobs + image_status)
and every status change (image_status), i.e. from every upload, claim and completion.

Needs an EMPTY scratch database on a cluster with fsync on (it drops and creates
processed_images there) and the bench venv:

    .venv-bench/driver/bin/python bench/pg_notify_commit.py postgres://postgres@127.0.0.1:PORT/scratch

Runs CLIENTS (32) connections inserting a ~100 KB row each in its own transaction for SECS (5) s,
with synchronous_commit on and off, with the notify triggers as they are ("trigger"), disabled
("none"), and disabled with the client sending the same notifications in a separate statement
after the insert committed ("after": a transaction that only notifies writes no WAL of its own,
so its commit is not flushed synchronously and holds the notify lock only briefly).
"""
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
NOTIFY_TRIGGERS = ("processed_images_wake_on_insert", "processed_images_status_on_insert")


def main():
    url = sys.argv[1]
    clients = int(os.environ.get("CLIENTS", "32"))
    secs = float(os.environ.get("SECS", "5"))
    data = (ROOT / "bench" / "corpus" / "ingest-100k.jpg").read_bytes()
    admin = psycopg.connect(url, autocommit=True)
    admin.execute("drop table if exists processed_images cascade")
    for fn in ("processed_images_sizes", "processed_images_wake_workers", "processed_images_status_event"):
        admin.execute(f"drop function if exists {fn} cascade")
    admin.execute((ROOT / "sql" / "0001_processed_images.sql").read_text())
    print(f"fsync = {admin.execute('show fsync').fetchone()[0]}, {clients} clients, {len(data) // 1000} KB rows, {secs} s each")

    def run(sync, notify):
        """notify: 'trigger' (as sql/0001), 'none', or 'after' (triggers off; the client sends the
        same two notifications in a separate statement after the insert has committed)."""
        for t in NOTIFY_TRIGGERS:
            admin.execute(f"alter table processed_images {'enable' if notify == 'trigger' else 'disable'} trigger {t}")
        admin.execute("truncate processed_images")
        admin.execute("checkpoint")
        counts = [0] * clients
        lat = [[] for _ in range(clients)]
        stop = time.monotonic() + secs

        def worker(i):
            with psycopg.connect(url, autocommit=True) as c:
                c.execute(f"set synchronous_commit = {sync}")
                while time.monotonic() < stop:
                    t = time.monotonic()
                    row = c.execute("insert into processed_images (original_data, filename) values (%b, 'x') "
                                    "returning id::text", (data,)).fetchone()
                    if notify == "after":
                        c.execute("select pg_notify('image_jobs', ''), pg_notify('image_status', %s)", (row[0] + ":pending",))
                    lat[i].append(time.monotonic() - t)
                    counts[i] += 1

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        all_lat = sorted(x for l in lat for x in l)
        p50 = 1000 * all_lat[len(all_lat) // 2] if all_lat else float("nan")
        print(f"synchronous_commit={sync:3} notify {notify:8}: "
              f"{sum(counts) / secs:7.0f} inserts/s, p50 {p50:6.1f} ms", flush=True)
        return sum(counts) / secs

    for sync in ("on", "off"):
        for notify in ("trigger", "none", "after"):
            run(sync, notify)
    for t in NOTIFY_TRIGGERS:
        admin.execute(f"alter table processed_images enable trigger {t}")


if __name__ == "__main__":
    main()
