"""``/v1`` sessions: list (every filter, every sort both ways, keyset paging edges), one session, its events,
active sessions and the autocomplete lists; against real chDB and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import math
import random
import uuid
from collections.abc import Callable

import asyncpg
import httpx
import pytest
from clickhouse_connect.driver.client import Client

from bard.settings import Settings
from clickhouse.client import client_for
from replayer_api import replay
from replayer_api.errors import DependencyFailed
from replayer_api.parameters import iso_ms
from replayer_api.warehouse import Warehouse
from tests.replayer_support import (
    BASE_MS,
    EndedSession,
    at,
    clickhouse_uuid_key,
    insert_active,
    insert_conversions,
    insert_events,
    insert_sessions,
)

pytestmark = [pytest.mark.postgres, pytest.mark.clickhouse]

APPS = ("shop", "blog", "admin")


def make_sessions(count: int = 14, seed: int = 5) -> list[EndedSession]:
    """Sessions with ties on every sort key, so the tie-break by id is exercised too."""
    rng = random.Random(seed)
    return [
        EndedSession(
            session_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            app_name=APPS[i % 3],
            started_ms=BASE_MS + (i // 2) * 60_000,  # pairs share a start
            duration_ms=rng.choice((0, 1_000, 5_000, 5_000, 90_000)),
            error_count=rng.choice((0, 0, 1, 3)),
            event_count=rng.choice((1, 10, 10, 250)),
        )
        for i in range(count)
    ]


SORT_KEYS: dict[str, Callable[[EndedSession], object]] = {
    "start": lambda s: s.started_ms,
    "duration": lambda s: s.duration_ms,
    "app": lambda s: s.app_name,
    "events": lambda s: s.event_count,
    "errors": lambda s: s.error_count,
}


def expected_order(sessions: list[EndedSession], sort: str, order: str) -> list[str]:
    key = SORT_KEYS[sort]
    ordered = sorted(sessions, key=lambda s: (key(s), clickhouse_uuid_key(s.session_id)), reverse=order == "desc")
    return [str(s.session_id) for s in ordered]


async def walk(api: httpx.AsyncClient, params: dict[str, object]) -> tuple[list[str], int]:
    """Every page from the first to the one without a next cursor; returns the ids and the number of pages."""
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        response = await api.get("/v1/sessions", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        ids += [s["session_id"] for s in body["sessions"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 100


@pytest.mark.parametrize("sort", ["start", "duration", "app", "events", "errors"])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 4, 7, 14, 20], ids=["one", "uneven", "half", "exact", "past-the-end"])
async def test_every_sort_pages_through_every_session_once(strategy: str, api: httpx.AsyncClient, ch: Client, sort: str,
                                                           order: str, limit: int) -> None:
    sessions = make_sessions()
    insert_sessions(ch, sessions)
    ids, pages = await walk(api, {"sort": sort, "order": order, "limit": limit})
    assert ids == expected_order(sessions, sort, order)
    assert pages == max(1, math.ceil(len(sessions) / limit))


async def test_default_sort_is_newest_first_with_fifty_per_page(strategy: str, api: httpx.AsyncClient,
                                                                ch: Client) -> None:
    sessions = make_sessions(60)
    insert_sessions(ch, sessions)
    body = (await api.get("/v1/sessions")).json()
    assert [s["session_id"] for s in body["sessions"]] == expected_order(sessions, "start", "desc")[:50]
    assert body["next_cursor"] is not None


async def test_a_session_is_shown_as_its_latest_version(strategy: str, api: httpx.AsyncClient, ch: Client) -> None:
    session = make_sessions(1)[0]
    insert_sessions(ch, [EndedSession(session.session_id, "shop", BASE_MS, 1_000, 0)], version=1)
    insert_sessions(ch, [EndedSession(session.session_id, "shop", BASE_MS, 9_000, 2)], version=2)
    body = (await api.get("/v1/sessions")).json()
    assert len(body["sessions"]) == 1
    assert body["sessions"][0]["duration_ms"] == 9_000
    assert body["sessions"][0]["error_count"] == 2
    # The older copy matched these filters; the session as it is now does not.
    for params in ({"max_duration_ms": 1_000}, {"has_errors": "false"}):
        assert (await api.get("/v1/sessions", params=params)).json()["sessions"] == []


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_stale_copies_crowding_the_top_are_skipped(strategy: str, api: httpx.AsyncClient, ch: Client,
                                                         order: str) -> None:
    """45 sessions were moved twice; their first versions sort before everything and fill whole rounds of
    candidates. Pages must still hold each session once, where its newest version puts it."""
    day = 86_400_000
    moved = [EndedSession(uuid.uuid4(), "shop", BASE_MS + day + i * 1_000, 5_000, 0) for i in range(45)]
    steady = [EndedSession(uuid.uuid4(), "blog", BASE_MS + 3_600_000 + i * 1_000, 5_000, 0) for i in range(15)]
    edge = -day if order == "asc" else 3 * day  # where the stale copies sort first
    insert_sessions(ch, [EndedSession(s.session_id, "shop", BASE_MS + edge, 1, 1) for s in moved], version=1)
    insert_sessions(ch, moved, version=2)
    insert_sessions(ch, steady)
    ids, pages = await walk(api, {"sort": "start", "order": order, "limit": 5})
    assert ids == expected_order(moved + steady, "start", order)
    filtered, _ = await walk(api, {"sort": "start", "order": order, "limit": 5, "has_errors": "false",
                                   "min_duration_ms": 2})
    assert filtered == ids
    assert (await walk(api, {"has_errors": "true", "limit": 5}))[0] == []


# What a session without captured metadata (inserted as before issue 12) reads as; test_session_insight.py reads
# the metadata of sessions that have it.
NO_METADATA = {
    "browser": "", "browser_major": 0, "os": "", "device_type": "", "viewport": {"width": 0, "height": 0},
    "entry_url": "", "entry_path": "", "exit_path": "", "page_count": 0, "click_count": 0, "rage_click_count": 0,
    "dead_click_count": 0, "error_click_count": 0, "country": "",
}


async def test_session_fields(api: httpx.AsyncClient, ch: Client) -> None:
    session = EndedSession(uuid.uuid4(), "shop", BASE_MS + 1_250, 61_500, 2, event_count=33)
    insert_sessions(ch, [session])
    body = (await api.get("/v1/sessions")).json()
    assert body == {"sessions": [{
        "session_id": str(session.session_id), "app_name": "shop", "started_at": "2026-01-01T00:00:01.250Z",
        "ended_at": "2026-01-01T00:01:02.750Z", "duration_ms": 61_500, "event_count": 33, "error_count": 2,
        **NO_METADATA,
    }], "next_cursor": None, "prev_cursor": None}


SESSIONS = make_sessions()
SID = str(SESSIONS[3].session_id)
FILTERS: list[tuple[str, dict[str, object], Callable[[EndedSession], bool]]] = [
    ("app", {"app": "shop"}, lambda s: s.app_name == "shop"),
    ("apps", {"app": ["shop", "admin"]}, lambda s: s.app_name in ("shop", "admin")),
    ("app-unknown", {"app": "nope"}, lambda s: False),
    ("started-after-ms", {"started_after": BASE_MS + 120_000}, lambda s: s.started_ms >= BASE_MS + 120_000),
    ("started-after-iso", {"started_after": "2026-01-01T00:02:00Z"}, lambda s: s.started_ms >= BASE_MS + 120_000),
    ("started-before-iso-offset", {"started_before": "2026-01-01T01:03:00+01:00"},
     lambda s: s.started_ms < BASE_MS + 180_000),
    ("started-range", {"started_after": BASE_MS + 60_000, "started_before": BASE_MS + 240_000},
     lambda s: BASE_MS + 60_000 <= s.started_ms < BASE_MS + 240_000),
    ("min-duration", {"min_duration_ms": 5_000}, lambda s: s.duration_ms >= 5_000),
    ("max-duration", {"max_duration_ms": 1_000}, lambda s: s.duration_ms <= 1_000),
    ("duration-range", {"min_duration_ms": 1_000, "max_duration_ms": 5_000},
     lambda s: 1_000 <= s.duration_ms <= 5_000),
    ("has-errors", {"has_errors": "true"}, lambda s: s.error_count > 0),
    ("no-errors", {"has_errors": "false"}, lambda s: s.error_count == 0),
    ("id-prefix", {"id_prefix": SID[:6]}, lambda s: str(s.session_id).startswith(SID[:6])),
    ("id-prefix-upper", {"id_prefix": SID[:9].upper()}, lambda s: str(s.session_id).startswith(SID[:9])),
    ("id-whole", {"id_prefix": SID}, lambda s: str(s.session_id) == SID),
    ("combined", {"app": ["shop", "blog"], "has_errors": "false", "min_duration_ms": 1_000},
     lambda s: s.app_name in ("shop", "blog") and s.error_count == 0 and s.duration_ms >= 1_000),
]


@pytest.mark.parametrize(("params", "keep"), [(p, k) for _, p, k in FILTERS], ids=[n for n, _, _ in FILTERS])
@pytest.mark.parametrize("sort", ["start", "duration"])
async def test_filters(strategy: str, api: httpx.AsyncClient, ch: Client, params: dict[str, object],
                       keep: Callable[[EndedSession], bool], sort: str) -> None:
    insert_sessions(ch, SESSIONS)
    kept = [s for s in SESSIONS if keep(s)]
    ids, pages = await walk(api, {**params, "sort": sort, "order": "asc", "limit": 3})
    assert ids == expected_order(kept, sort, "asc")
    assert pages == max(1, math.ceil(len(kept) / 3))


HOSTILE_VALUES = ["x'); DROP TABLE sessions; --", "\\", "\x00", "{p0:String}", "ünïcødé ✓", "a" * 16_384]
# The longest value a filter takes (clickhouse.session_filters.MAX_TEXT_LENGTH); one more is a 400, see
# test_replayer_access.py.


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=["sql", "backslash", "nul", "placeholder", "unicode", "long"])
async def test_hostile_values_are_only_values(api: httpx.AsyncClient, ch: Client, value: str) -> None:
    insert_sessions(ch, [EndedSession(uuid.uuid4(), value, BASE_MS, 1, 0), *make_sessions(3)])
    insert_conversions(ch, [(uuid.uuid4(), "shop", BASE_MS, "click", value)])
    listed = (await api.get("/v1/sessions", params={"app": value})).json()["sessions"]
    assert [s["app_name"] for s in listed] == [value]
    by_app = (await api.get("/v1/sessions", params={"sort": "app", "order": "asc", "limit": 2})).json()
    second = await api.get("/v1/sessions", params={"sort": "app", "order": "asc", "limit": 2,
                                                   "cursor": by_app["next_cursor"]})
    assert second.status_code == 200 and len(second.json()["sessions"]) == 2
    labels = (await api.get("/v1/conversion-labels", params={"kind": "click", "prefix": value})).json()["labels"]
    assert labels == [value]
    legacy = (await api.get("/api/sessions", params={"filter_0": "appName", "textContent": value})).json()
    assert legacy["count"] == 1
    assert int(ch.query("SELECT count() FROM sessions").result_rows[0][0]) == 4


async def test_empty_warehouse(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/sessions", params={"sort": "app", "order": "asc"})
    assert response.json() == {"sessions": [], "next_cursor": None, "prev_cursor": None}


async def test_cursor_only_works_under_its_own_sort(strategy: str, api: httpx.AsyncClient, ch: Client) -> None:
    insert_sessions(ch, make_sessions())
    cursor = (await api.get("/v1/sessions", params={"sort": "duration", "limit": 2})).json()["next_cursor"]
    assert cursor
    for other in ({"sort": "start"}, {"sort": "duration", "order": "asc"}, {"sort": "app"}):
        response = await api.get("/v1/sessions", params={**other, "cursor": cursor, "limit": 2})
        assert response.status_code == 400
        assert response.json()["field"] == "cursor"
        assert "sort=duration" in response.json()["message"]
    same = await api.get("/v1/sessions", params={"sort": "duration", "cursor": cursor, "limit": 2})
    assert same.status_code == 200


async def test_a_cursor_past_the_last_session_gives_an_empty_page(strategy: str, api: httpx.AsyncClient,
                                                                  ch: Client) -> None:
    sessions = make_sessions(4)
    insert_sessions(ch, sessions)
    first = (await api.get("/v1/sessions", params={"limit": 3})).json()
    ch.command("TRUNCATE TABLE sessions")  # the rest disappears between two pages
    after = await api.get("/v1/sessions", params={"limit": 3, "cursor": first["next_cursor"]})
    assert after.json() == {"sessions": [], "next_cursor": None, "prev_cursor": None}


async def test_one_session_ended_active_and_unknown(api: httpx.AsyncClient, ch: Client, pg_pool: asyncpg.Pool
                                                    ) -> None:
    ended = EndedSession(uuid.uuid4(), "shop", BASE_MS, 2_000, 1, event_count=7)
    insert_sessions(ch, [ended])
    active_id = uuid.uuid4()
    await insert_active(pg_pool, active_id, "blog", BASE_MS, BASE_MS + 4_000, events=12, errors=2)

    body = (await api.get(f"/v1/sessions/{ended.session_id}")).json()
    assert body == {"session_id": str(ended.session_id), "app_name": "shop", "started_at": iso_ms(BASE_MS),
                    "ended_at": iso_ms(BASE_MS + 2_000), "duration_ms": 2_000, "event_count": 7, "error_count": 1,
                    **NO_METADATA, "status": "ended"}
    active = (await api.get(f"/v1/sessions/{active_id}")).json()
    assert (active["status"], active["app_name"], active["duration_ms"], active["event_count"]) == \
        ("active", "blog", 4_000, 12)
    missing = await api.get(f"/v1/sessions/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "no session" in missing.json()["message"]


def rrweb(ts: int, kind: int = 3, **data: object) -> dict[str, object]:
    return {"type": kind, "timestamp": ts, "data": data}


async def test_events_come_in_timestamp_order_once_each(api: httpx.AsyncClient, ch: Client) -> None:
    sid = uuid.uuid4()
    insert_sessions(ch, [EndedSession(sid, "shop", BASE_MS, 10_000, 0)])
    late_batch = uuid.uuid4()
    late = [rrweb(BASE_MS + 5_000, source=2, type=2, id=1), rrweb(BASE_MS + 6_000, kind=5, tag="paid")]
    insert_events(ch, sid, "shop", late, batch_id=late_batch)
    insert_events(ch, sid, "shop", [rrweb(BASE_MS, kind=4, href="https://x.test/", width=1, height=1),
                                    rrweb(BASE_MS + 1, kind=2, node={"id": 1})])
    insert_events(ch, sid, "shop", late, batch_id=late_batch)  # a redelivered copy of the same batch
    insert_events(ch, uuid.uuid4(), "shop", [rrweb(BASE_MS + 2)])  # another session's event

    response = await api.get(f"/v1/sessions/{sid}/events")
    assert response.status_code == 200
    events = response.json()
    assert [e["timestamp"] for e in events] == [BASE_MS, BASE_MS + 1, BASE_MS + 5_000, BASE_MS + 6_000]
    assert events[0] == rrweb(BASE_MS, kind=4, href="https://x.test/", width=1, height=1)
    assert events[3]["data"] == {"tag": "paid"}


async def test_large_replay_streams_in_order_and_gzipped(api: httpx.AsyncClient, ch: Client,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks of 1,000 then 700 events: 4,500 events end exactly on a chunk, and ties in time straddle chunks.
    monkeypatch.setattr(replay, "MAX_CHUNK_EVENTS", 700)
    sid = uuid.uuid4()
    insert_sessions(ch, [EndedSession(sid, "shop", BASE_MS, 10_000, 0)])
    rng = random.Random(1)
    stamps = [BASE_MS + rng.randrange(0, 3_000) for _ in range(4_500)]
    for start in range(0, len(stamps), 500):
        insert_events(ch, sid, "shop", [rrweb(ts, source=1, n=start + i)
                                        for i, ts in enumerate(stamps[start:start + 500])])
    async with api.stream("GET", f"/v1/sessions/{sid}/events", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    events = json.loads(gzip.decompress(raw))
    assert len(events) == len(stamps)
    assert [e["timestamp"] for e in events] == sorted(stamps)
    assert sorted(e["data"]["n"] for e in events) == list(range(len(stamps)))


async def test_events_as_ndjson_one_per_line_as_stored(api: httpx.AsyncClient, ch: Client,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """What the dashboard reads: one event per line, in order, across chunks; an event the agent sent with line
    breaks between its tokens is the same JSON value on one line."""
    monkeypatch.setattr(replay, "MAX_CHUNK_EVENTS", 100)
    sid = uuid.uuid4()
    insert_sessions(ch, [EndedSession(sid, "shop", BASE_MS, 10_000, 0)])
    insert_events(ch, sid, "shop", [rrweb(BASE_MS + i, source=1, n=i) for i in range(1, 1_250)])
    pretty = {"type": 5, "timestamp": BASE_MS, "data": {"tag": "line\nbreak", "payload": None}}
    ch.insert("events", [[sid, "shop", at(BASE_MS), 5, uuid.uuid4(), 0, json.dumps(pretty, indent=2), at(BASE_MS)]],
              column_names=["session_id", "app_name", "ts", "type", "batch_id", "seq", "event", "received_at"])
    response = await api.get(f"/v1/sessions/{sid}/events", headers={"Accept": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.text.split("\n")
    assert lines[-1] == ""  # every line ends with a newline
    events = [json.loads(line) for line in lines[:-1]]
    assert events[0] == pretty
    assert [e["timestamp"] for e in events] == [BASE_MS + i for i in range(1_250)]
    # Without the Accept header, the same events as one JSON array.
    assert (await api.get(f"/v1/sessions/{sid}/events")).json() == events
    empty = uuid.uuid4()
    insert_sessions(ch, [EndedSession(empty, "shop", BASE_MS, 0, 0)])
    response = await api.get(f"/v1/sessions/{empty}/events", headers={"Accept": "application/x-ndjson"})
    assert response.status_code == 200 and response.text == ""


async def test_events_of_a_session_without_events_and_of_no_session(api: httpx.AsyncClient, ch: Client,
                                                                     pg_pool: asyncpg.Pool) -> None:
    ended = uuid.uuid4()
    insert_sessions(ch, [EndedSession(ended, "shop", BASE_MS, 0, 0)])
    active = uuid.uuid4()
    await insert_active(pg_pool, active, "shop", BASE_MS, BASE_MS)
    assert (await api.get(f"/v1/sessions/{ended}/events")).json() == []
    assert (await api.get(f"/v1/sessions/{active}/events")).json() == []
    assert (await api.get(f"/v1/sessions/{uuid.uuid4()}/events")).status_code == 404


async def test_active_sessions_newest_activity_first_paged(api: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    for i, sid in enumerate(ids):
        await insert_active(pg_pool, sid, APPS[i % 2], BASE_MS, BASE_MS + i * 1_000 // 2 * 2)  # ties at 0 and 2000
    expected = sorted(ids, key=lambda s: ((ids.index(s) * 1_000 // 2 * 2), s), reverse=True)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/v1/active-sessions", params=params)).json()
        seen += [s["session_id"] for s in body["sessions"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(s) for s in expected]
    shop = (await api.get("/v1/active-sessions", params={"app": "shop"})).json()["sessions"]
    assert {s["session_id"] for s in shop} == {str(ids[0]), str(ids[2]), str(ids[4])}


async def test_active_sessions_with_odd_client_clocks_page_through(api: httpx.AsyncClient,
                                                                   pg_pool: asyncpg.Pool) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    for sid, ms in zip(ids, (-5_000, 0, 10**15), strict=True):  # client clocks are untrusted
        await insert_active(pg_pool, sid, "shop", ms, ms)
    first = (await api.get("/v1/active-sessions", params={"limit": 2})).json()
    rest = (await api.get("/v1/active-sessions", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [s["session_id"] for s in first["sessions"] + rest["sessions"]] == [str(i) for i in reversed(ids)]
    assert rest["next_cursor"] is None


async def test_apps_and_conversion_labels(api: httpx.AsyncClient, ch: Client) -> None:
    insert_sessions(ch, make_sessions(6))
    sid = uuid.uuid4()
    insert_conversions(ch, [(sid, "shop", BASE_MS, "click", "Buy"), (sid, "shop", BASE_MS + 1, "click", "Add"),
                            (sid, "shop", BASE_MS + 2, "click", "Buy"), (sid, "shop", BASE_MS, "custom", "paid"),
                            (sid, "shop", BASE_MS + 3, "click", "Back")])
    assert (await api.get("/v1/apps")).json() == {"apps": ["admin", "blog", "shop"]}
    clicks = (await api.get("/v1/conversion-labels", params={"kind": "click"})).json()
    assert clicks == {"kind": "click", "labels": ["Add", "Back", "Buy"]}
    assert (await api.get("/v1/conversion-labels", params={"kind": "custom"})).json()["labels"] == ["paid"]
    prefixed = await api.get("/v1/conversion-labels", params={"kind": "click", "prefix": "B", "limit": 1})
    assert prefixed.json()["labels"] == ["Back"]


async def test_clickhouse_orders_uuids_by_low_then_high_half(ch: Client) -> None:
    ids = [uuid.uuid4() for _ in range(50)]
    rows = ch.query("SELECT arrayJoin({ids:Array(UUID)}) AS u ORDER BY u",
                    parameters={"ids": [str(i) for i in ids]}).result_rows
    assert [r[0] for r in rows] == sorted(ids, key=clickhouse_uuid_key)


async def test_a_query_clickhouse_refuses_is_a_502_naming_it(settings: Settings, ch: Client) -> None:
    warehouse = Warehouse([client_for(settings)])
    try:
        with pytest.raises(DependencyFailed) as caught:
            await warehouse.rows("SELECT no_such_column FROM sessions", {})
        assert caught.value.status == 502
        assert caught.value.body() == {"error": "dependency_failed",
                                       "message": "ClickHouse failed the request: code 47", "dependency": "ClickHouse"}
        assert await warehouse.rows("SELECT count() FROM sessions", {}) == [(0,)]  # the client was given back
    finally:
        warehouse.close()
