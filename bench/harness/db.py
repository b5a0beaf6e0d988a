"""The SQL the harness itself runs against a service's database: resets between phases, the
rows' own timestamps, and pg_stat_statements."""
from __future__ import annotations

import time

import psycopg

from .stats import rnd


def sql(url, query, params=None, fetch=True):
    with psycopg.connect(url, autocommit=True) as c:
        cur = c.execute(query, params)
        return cur.fetchall() if fetch and cur.description else None


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


def db_rows(db_url, ids, has_started=True):
    """(uploaded, started, processed as epoch seconds, attempts, status) of the rows `ids`; the
    seed's table has no started_at or attempts."""
    started = "extract(epoch from started_at)" if has_started else "null"
    attempts = "attempts" if has_started else "1"
    return sql(db_url, f"select extract(epoch from uploaded_at)::float8, {started}::float8, "
                       f"extract(epoch from processed_at)::float8, {attempts}, status "
                       f"from processed_images where id = any(%s::uuid[])", (ids,))


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
