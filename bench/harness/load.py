"""The HTTP clients that load a service: the closed loop of uploads and waits, the watcher that
stands in for `?wait` on the seed, and the ingest flood's client process."""
from __future__ import annotations

import asyncio
import resource
import signal
import time

import aiohttp
import psycopg

from .corpus import FIELDS, multipart


async def wait_ours(session, base, image_id):
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
                        status = await wait_ours(session, target["base"], image_id)
                    results.append((image_id, time.monotonic() - t0, status))

            await asyncio.gather(*(client(k) for k in range(clients)))
        finally:
            if waiter_cm:
                await waiter_cm.__aexit__(None, None, None)
    return results, errors


def ingest_client(base, body, ctype, conc, start_at, stop_at, q):
    """One forked ingest process: `conc` uploaders as fast as they can from `start_at` to
    `stop_at`; puts (accepted, 503s, error sample, errors, latencies, own CPU-s) on `q`."""
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
