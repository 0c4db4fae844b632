"""Benchmark: the replayer API's session list over N ended sessions, and the replay of one large session.

    .venv/bin/python bench/replayer.py --sessions 1000000 --events 10000 --repeat 21

Requests go through the whole app (auth, routing, query, JSON, gzip) in process, over httpx's ASGI transport,
with the app's real lifespan: a throwaway PostgreSQL database on ``--postgres`` and a chDB directory (kept in
``--data`` between runs, so the data is generated once). The data is generated inside ClickHouse
(``INSERT ... SELECT FROM numbers()``): N sessions over a year, four apps, a few with errors, 1 % of them moved
twice (two versions, so ``FINAL`` has copies to collapse); one session of ``--events`` rrweb events of ~300 bytes
plus a 200 kB full snapshot. Reports the median and p95 of ``--repeat`` requests after one warm-up each.

Deep ``/api`` offset pages (past ``replayer_api.legacy.DEEP_OFFSET``) are read by sample and window; each is
timed again the way it was read before (``FINAL``, sorted whole, with the count beside it), marked "before",
so the two compare in the same run. ``--only`` keeps the cases whose name contains a given text.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bard import postgres
from bard.settings import Settings
from clickhouse.client import create_client
from clickhouse.migrations import migrate as migrate_clickhouse
from replayer_api import legacy
from replayer_api.app import create_app
from replayer_api.cursors import Cursor

# Metadata (since issue 12) spread like a shop's traffic: mostly Chrome, a third on phones, a few rage clicks.
SESSIONS = """
INSERT INTO sessions (session_id, app_name, started_at, ended_at, event_count, error_count, segments,
                      segment_event_counts, segment_error_counts, version, browser, browser_major, os, device_type,
                      viewport_width, viewport_height, entry_url, entry_path, exit_path, page_count, click_count,
                      rage_click_count, dead_click_count, error_click_count)
SELECT generateUUIDv4(number), ['shop', 'blog', 'admin', 'docs'][number % 4 + 1],
       fromUnixTimestamp64Milli(toInt64(1735689600000 + number * {spacing:UInt64}), 'UTC'),
       fromUnixTimestamp64Milli(toInt64(1735689600000 + number * {spacing:UInt64} + (number * 7919) % 3600000), 'UTC'),
       number % 500, if(number % 13 = 0, number % 5 + 1, 0), [], [], [], 1,
       ['Chrome', 'Chrome', 'Chrome', 'Mobile Safari', 'Firefox', 'Edge', 'Chrome Mobile'][number % 7 + 1],
       100 + number % 30, ['Windows', 'Mac OS X', 'iOS', 'Android', 'Linux'][intDiv(number, 7) % 5 + 1],
       ['desktop', 'desktop', 'mobile', 'tablet', 'desktop', 'mobile', 'bot'][intDiv(number, 3) % 7 + 1],
       1440, 900, concat('https://shop.example.com', entry), entry, '/checkout/done', number % 9 + 1,
       number % 23, if(number % 20 = 0, 1, 0), if(number % 7 = 0, 1, 0), if(number % 31 = 0, 1, 0)
FROM (SELECT number, ['/', '/products/42', '/checkout', '/blog/post', '/pricing'][number % 5 + 1] AS entry
      FROM numbers({n:UInt64}))
"""
# A second version of 1 % of the sessions (a late batch merged in): FINAL must pick these.
REMOVED = """
INSERT INTO sessions (session_id, app_name, started_at, ended_at, event_count, error_count, segments,
                      segment_event_counts, segment_error_counts, version)
SELECT session_id, app_name, started_at, ended_at + toIntervalSecond(30), event_count + 1, error_count, segments,
       segment_event_counts, segment_error_counts, 2
FROM sessions WHERE cityHash64(session_id) % 100 = 0
"""
EVENTS = """
INSERT INTO events (session_id, app_name, ts, type, batch_id, seq, event, received_at)
SELECT {sid:UUID}, 'shop', fromUnixTimestamp64Milli(toInt64(1767225600000 + number * 37), 'UTC'), 3,
       generateUUIDv4(intDiv(number, 10)), number % 10,
       concat('{"type":3,"timestamp":', toString(1767225600000 + number * 37),
              ',"data":{"source":1,"positions":[{"x":', toString(number % 1280), ',"y":', toString(number % 720),
              ',"id":', toString(number % 97), ',"timeOffset":-', toString(number % 50),
              '}]},"note":"', repeat('m', 180), '"}'),
       fromUnixTimestamp64Milli(toInt64(1767225600000 + number * 37), 'UTC')
FROM numbers({n:UInt64})
"""
SNAPSHOT = """
INSERT INTO events (session_id, app_name, ts, type, batch_id, seq, event, received_at)
SELECT {sid:UUID}, 'shop', fromUnixTimestamp64Milli(toInt64(1767225599999), 'UTC'), 2, generateUUIDv4(), 0,
       concat('{"type":2,"timestamp":1767225599999,"data":{"node":{"type":0,"childNodes":[{"textContent":"',
              repeat('<div class=row>cell</div>', 8000), '"}]},"initialOffset":{"left":0,"top":0}}}'),
       now64(3)
"""
REPLAY_SESSION = uuid.UUID("00000000-0000-4000-8000-000000010000")


def prepare_warehouse(settings: Settings, sessions: int, events: int) -> None:
    ch = create_client(settings.resolved_clickhouse_url, database="default")
    database = settings.resolved_clickhouse_database
    migrate_clickhouse(ch, settings, database)
    ch.database = database
    have = int(ch.query("SELECT uniqExact(session_id) FROM sessions").result_rows[0][0])
    if have != sessions:
        print(f"generating {sessions} sessions ...", flush=True)
        started = time.perf_counter()
        ch.command("TRUNCATE TABLE sessions")
        spacing = max(1, 365 * 86_400_000 // sessions)
        ch.command(SESSIONS, parameters={"n": sessions, "spacing": spacing})
        ch.command(REMOVED)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    have_events = int(ch.query("SELECT count() FROM events WHERE session_id = {sid:UUID}",
                               parameters={"sid": str(REPLAY_SESSION)}).result_rows[0][0])
    if have_events != events + 1:
        ch.command("TRUNCATE TABLE events")
        ch.command(EVENTS, parameters={"sid": str(REPLAY_SESSION), "n": events})
        ch.command(SNAPSHOT, parameters={"sid": str(REPLAY_SESSION)})
    parts = ch.query("SELECT table, count() FROM system.parts WHERE database = {db:String} AND active "
                     "AND table IN ('sessions', 'events') GROUP BY table ORDER BY table",
                     parameters={"db": database}).result_rows
    active = {table: count for table, count in parts}
    print(f"active parts: {active}", flush=True)
    ch.close()


async def timed(client: httpx.AsyncClient, path: str, params: dict[str, Any], repeat: int,
                headers: dict[str, str] | None = None) -> tuple[float, float, int]:
    await client.get(path, params=params, headers=headers)  # warm-up
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path, params=params, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        size = response.num_bytes_downloaded
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], size


# Deep /api pages over every sort and a filter; each also timed as read before the sample-and-window path.
DEEP_CASES: list[tuple[str, dict[str, Any]]] = [
    ("/api deep offset page (pageNum 100000)", {"pageNum": 100_000}),
    ("/api deep page, by date ascending (pageNum 150000)", {"sortOrder": "ascending", "pageNum": 150_000}),
    ("/api deep page, by length ascending, 20 a page (offset 300000)",
     {"sortBy": "length", "sortOrder": "ascending", "perPage": 20, "pageNum": 15_000}),
    ("/api deep page, by appName (offset 600000)", {"sortBy": "appName", "pageNum": 120_000}),
    ("/api deep page, by errorCount (offset 900000)", {"sortBy": "errorCount", "pageNum": 180_000}),
    ("/api deep page, by sessionId ascending (offset 500000)",
     {"sortBy": "sessionId", "sortOrder": "ascending", "pageNum": 100_000}),
    ("/api deep page, date filter Mar-Oct, by length (offset 250000)",
     {"filter_0": "date", "startDate": "2025-03-01", "endDate": "2025-10-31", "sortBy": "length",
      "pageNum": 50_000}),
    ("/api deep page, blog with errors, 20 a page (offset 10000)",
     {"filter_0": "appName", "textContent": "blog", "filter_1": "Has Errors?", "yesOrNo": "yes", "sortBy": "length",
      "perPage": 20, "pageNum": 500}),
]


async def measure(settings: Settings, repeat: int, sessions: int, only: str | None = None) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        headers = {"Authorization": f"Bearer {settings.dashboard_token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=with_state), base_url="http://bench",
                                     headers=headers, timeout=120) as client:
            # A cursor into the middle of the list: what the page after the N/2-th session would carry.
            middle = await state["warehouse"].rows(
                "SELECT toUnixTimestamp64Milli(started_at), session_id FROM sessions FINAL "
                "ORDER BY started_at DESC, session_id DESC LIMIT 1 OFFSET {o:UInt64}", {"o": sessions // 2})
            deep = Cursor("start", "desc", int(middle[0][0]), middle[0][1]).encode()
            cases: list[tuple[str, str, dict[str, Any], dict[str, str] | None]] = [
                ("v1 first page (50, newest first)", "/v1/sessions", {"limit": 50}, None),
                (f"v1 deep page by cursor (after {sessions // 2})", "/v1/sessions", {"limit": 50, "cursor": deep},
                 None),
                ("v1 filtered page (app, errors, min duration; by duration)", "/v1/sessions",
                 {"app": "shop", "has_errors": "true", "min_duration_ms": 60_000, "sort": "duration", "limit": 50},
                 None),
                ("v1 filtered page (started in one month; by errors asc)", "/v1/sessions",
                 {"started_after": "2025-06-01T00:00:00Z", "started_before": "2025-07-01T00:00:00Z",
                  "sort": "errors", "order": "asc", "limit": 50}, None),
                ("v1 by browser (Chrome, 3 in 7)", "/v1/sessions", {"browser": "Chrome", "limit": 50}, None),
                ("v1 by OS and device (iOS, mobile)", "/v1/sessions",
                 {"os": "iOS", "device_type": "mobile", "limit": 50}, None),
                ("v1 by entry path prefix (/checkout)", "/v1/sessions", {"entry_path": "/checkout", "limit": 50},
                 None),
                ("v1 by min pages (8)", "/v1/sessions", {"min_pages": 8, "limit": 50}, None),
                ("v1 with rage clicks (1 in 20)", "/v1/sessions", {"has_rage_clicks": "true", "limit": 50}, None),
                ("v1 with dead clicks, by pages", "/v1/sessions",
                 {"has_dead_clicks": "true", "sort": "pages", "limit": 50}, None),
                ("v1 options: entry paths", "/v1/options/entry_path", {}, None),
                ("/api first page with count (5, by date)", "/api/sessions", {}, None),
                ("/api page at offset 100 (pageNum 20: the candidates path's deepest)", "/api/sessions",
                 {"pageNum": 20}, None),
                ("/api filtered page with count", "/api/sessions",
                 {"filter_0": "appName", "textContent": "blog", "filter_1": "Has Errors?", "yesOrNo": "yes",
                  "sortBy": "length", "perPage": 20}, None),
                ("replay of the large session (gzip)", f"/v1/sessions/{REPLAY_SESSION}/events", {},
                 {"Accept-Encoding": "gzip"}),
                ("replay of the large session (identity)", f"/v1/sessions/{REPLAY_SESSION}/events", {},
                 {"Accept-Encoding": "identity"}),
            ]
            deep_offset = legacy.DEEP_OFFSET
            print(f"{'case':<72} {'median ms':>10} {'p95 ms':>8} {'bytes sent':>10}")
            for name, path, params, extra in cases:
                if only and only not in name:
                    continue
                median, p95, size = await timed(client, path, params, repeat, extra)
                print(f"{name:<72} {median:>10.1f} {p95:>8.1f} {size:>10}", flush=True)
            for name, params in DEEP_CASES:
                if only and only not in name:
                    continue
                # Now and before, request by request in turn, so both see the same load on the machine.
                ways = {name: legacy.DEEP_OFFSET, "  before: FINAL, sorted whole": 10**18}
                times: dict[str, list[float]] = {label: [] for label in ways}
                answers, sizes = {}, {}
                for turn in range(repeat + 1):
                    for label, threshold in ways.items():
                        legacy.DEEP_OFFSET = threshold
                        try:
                            started = time.perf_counter()
                            response = await client.get("/api/sessions", params=params)
                            elapsed = (time.perf_counter() - started) * 1000
                        finally:
                            legacy.DEEP_OFFSET = deep_offset
                        assert response.status_code == 200, response.text
                        answers[label], sizes[label] = response.content, response.num_bytes_downloaded
                        if turn:  # the first turn warms up
                            times[label].append(elapsed)
                assert len(set(answers.values())) == 1, f"{name}: the two ways answer differently"
                for label, taken in times.items():
                    taken.sort()
                    print(f"{label:<72} {statistics.median(taken):>10.1f} {taken[int(0.95 * (len(taken) - 1))]:>8.1f} "
                          f"{sizes[label]:>10}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--data", default="/tmp/bard-bench-replayer")
    parser.add_argument("--postgres", default="postgresql://localhost:5432")
    parser.add_argument("--only", help="time only the cases whose name contains this text")
    args = parser.parse_args()

    pg_url = f"{args.postgres}/bard_bench_replayer_{uuid.uuid4().hex[:8]}"
    settings = Settings.from_mapping({
        "BARD_DATA_DIR": args.data, "BARD_CLICKHOUSE_URL": f"chdb://{args.data}/clickhouse",
        "BARD_CLICKHOUSE_DATABASE": "bench_replayer", "BARD_POSTGRES_URL": pg_url,
        "BARD_DASHBOARD_TOKEN": "bench", "BARD_JWT_SECRET": "bench",
    })
    await asyncio.to_thread(prepare_warehouse, settings, args.sessions, args.events)
    await postgres.ensure_database(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        await postgres.migrate(conn)
    finally:
        await conn.close()
    try:
        print(f"{args.sessions} ended sessions, replay of {args.events + 1} events; {os.cpu_count()} cores; "
              f"load average {os.getloadavg()}", flush=True)
        await measure(settings, args.repeat, args.sessions, args.only)
    finally:
        await postgres.drop_database(pg_url)


if __name__ == "__main__":
    asyncio.run(main())
