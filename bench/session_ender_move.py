"""Benchmark: how long the session ender takes to move N expired sessions from PostgreSQL to ClickHouse (chDB).

    .venv/bin/python bench/session_ender_move.py --sessions 100000 --repeat 3

Each round fills ``active_sessions`` with N sessions idle for an hour, runs one ``expire_sessions()`` with the
default settings' batch size and PostgreSQL's clock, checks that every session arrived exactly once, and
reports the time of that run alone. ``--click-target-rows R``: each session also has R rows of click targets
(what the agent API keeps to name clicks on links), which the move deletes with it.
``--late K``: K of the N sessions already ended in ClickHouse, so their
move is a merge. ``--existing M``: M other sessions are already in ClickHouse (the read of each batch searches
among them). Uses a throwaway PostgreSQL database on ``--postgres`` and a throwaway chDB directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid

import asyncpg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bard import postgres
from bard.settings import Settings
from clickhouse.client import create_client
from clickhouse.migrations import migrate as migrate_clickhouse
from session_ender.ender import SessionEnder

FILL = """
INSERT INTO active_sessions (session_id, app_name, first_event_at, last_event_at, max_idle_ms, event_count,
                             error_count, last_seen_at, expires_at)
SELECT id, 'bench', 1700000000000 + n, 1700000060000 + n, 60000, 20 + n % 50, n % 3,
       now() - interval '1 hour', now() - interval '59 minutes'
FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)
"""

# What the agent API keeps for naming clicks (agent_api/click_targets.py): a page of 40 links and buttons per
# row, the first row starting the page. The move deletes them with the session (ON DELETE CASCADE).
CLICK_TARGETS = """
INSERT INTO active_session_click_targets (session_id, since, starts_page, targets)
SELECT id, 1700000000000 + r, r = 1,
       (SELECT jsonb_object_agg(100 + k, 'Product link number ' || k) FROM generate_series(1, 40) AS k)
FROM unnest($1::uuid[]) AS t(id), generate_series(1, $2::integer) AS r
"""

EXISTING = """
INSERT INTO sessions (session_id, app_name, started_at, ended_at, event_count, error_count, segments,
                      segment_event_counts, segment_error_counts, version)
SELECT generateUUIDv4(number), 'bench', 1700000000000 + number, 1700000060000 + number, 20, 0,
       [generateUUIDv4(number + 1)], [20], [0], 1
FROM numbers({n:UInt64})
"""


def cpu_seconds() -> float:
    """CPU time of this process, chDB's threads included (PostgreSQL's backends are not)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one_round(
    settings: Settings, pool: asyncpg.Pool, sessions: int, late: int, existing: int, target_rows: int
) -> tuple[float, float]:
    ch = create_client(settings.resolved_clickhouse_url, database=settings.resolved_clickhouse_database)
    ch.command("TRUNCATE TABLE sessions")
    if existing:  # other sessions that ended before: the read of each batch searches among them
        ch.command(EXISTING, parameters={"n": existing})
        ch.command("OPTIMIZE TABLE sessions FINAL")
    await pool.execute("TRUNCATE active_sessions CASCADE")
    ids = [uuid.uuid4() for _ in range(sessions)]
    ender = SessionEnder.from_settings(settings, pool, ch)
    if late:  # these sessions end once before the timed run, which then merges a late segment into each
        await pool.execute(FILL, ids[:late])
        await ender.expire_sessions()
    for start in range(0, sessions, 10_000):
        await pool.execute(FILL, ids[start:start + 10_000])
        if target_rows:
            await pool.execute(CLICK_TARGETS, ids[start:start + 10_000], target_rows)
    await pool.execute("VACUUM ANALYZE active_sessions")
    await pool.execute("VACUUM ANALYZE active_session_click_targets")

    started, cpu_started = time.perf_counter(), cpu_seconds()
    result = await ender.expire_sessions()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started

    rows, distinct = ch.query("SELECT count(), uniqExact(session_id) FROM sessions FINAL").result_rows[0]
    left = await pool.fetchval(
        "SELECT (SELECT count(*) FROM active_sessions) + (SELECT count(*) FROM active_session_click_targets)")
    rows, distinct = rows - existing, distinct - existing
    if result.ended != sessions or rows != sessions or distinct != sessions or left != 0:
        raise SystemExit(f"wrong result: ended={result.ended} rows={rows} distinct={distinct} left={left}")
    ch.close()
    return seconds, cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--late", type=int, default=0, help="how many of them are late segments to merge")
    parser.add_argument("--existing", type=int, default=0, help="ended sessions already in ClickHouse")
    parser.add_argument("--click-target-rows", type=int, default=0,
                        help="rows of click targets per session (40 targets each; see CLICK_TARGETS)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=Settings().ender_batch_size)
    parser.add_argument("--postgres", default="postgresql://localhost:5432")
    args = parser.parse_args()

    db = f"bard_bench_{uuid.uuid4().hex[:10]}"
    pg_url = f"{args.postgres}/{db}"
    with tempfile.TemporaryDirectory(prefix="bard-bench-") as tmp:
        settings = Settings.from_mapping({
            "BARD_DATA_DIR": tmp, "BARD_POSTGRES_URL": pg_url, "BARD_CLICKHOUSE_URL": f"chdb://{tmp}/ch",
            "BARD_ENDER_BATCH_SIZE": str(args.batch_size),
        })
        await postgres.ensure_database(pg_url)
        pool = await postgres.create_pool(pg_url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await postgres.migrate(conn)
            ch = create_client(settings.resolved_clickhouse_url, database=settings.resolved_clickhouse_database)
            migrate_clickhouse(ch, settings, settings.resolved_clickhouse_database)
            ch.close()
            times, cpus = [], []
            for i in range(args.repeat):
                seconds, cpu = await one_round(settings, pool, args.sessions, args.late, args.existing,
                                               args.click_target_rows)
                times.append(seconds)
                cpus.append(cpu)
                print(f"round {i + 1}: {args.sessions} sessions ({args.late} late, {args.existing} others, "
                      f"{args.click_target_rows} click target rows each) "
                      f"in {seconds:.2f} s = {args.sessions / seconds:,.0f}/s, {cpu:.2f} s CPU", flush=True)
        finally:
            await pool.close()
            await postgres.drop_database(pg_url)
    print(f"median {statistics.median(times):.2f} s ({statistics.median(cpus):.2f} s CPU) over {len(times)} "
          f"rounds, batch size {args.batch_size}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
