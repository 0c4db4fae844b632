"""``/api``: the original Bard dashboard's contract (sessions with ``filter_N``, sorting and offset paging; replay
events; options), on real chDB and PostgreSQL. The funnel part of ``/api`` is in test_replayer_funnels.py."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from tests.replayer_support import (
    BASE_MS,
    EndedSession,
    insert_conversions,
    insert_events,
    insert_sessions,
)

pytestmark = [pytest.mark.postgres, pytest.mark.clickhouse]

HOUR = 3_600_000


def make_sessions(count: int = 14, seed: int = 8) -> list[EndedSession]:
    rng = random.Random(seed)
    return [
        EndedSession(
            session_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            app_name=("shop", "blog", "admin")[i % 3],
            started_ms=BASE_MS + (i // 2) * 10 * HOUR,  # 2026-01-01 .. 2026-01-03, pairs share a start
            duration_ms=rng.choice((0, 1_000, 5_000, 5_000, 90_000)),
            error_count=rng.choice((0, 0, 1, 3)),
        )
        for i in range(count)
    ]


SESSIONS = make_sessions()
LEGACY_KEYS: dict[str, Callable[[EndedSession], object]] = {
    "sessionId": lambda s: str(s.session_id),
    "length": lambda s: s.duration_ms,
    "date": lambda s: s.started_ms,
    "appName": lambda s: s.app_name,
    "errorCount": lambda s: s.error_count,
}


def legacy_order(sessions: list[EndedSession], sort_by: str, order: str) -> list[str]:
    """The sort key in the asked direction, ties by session id ascending (as the original did)."""
    key = LEGACY_KEYS[sort_by]
    by_id = sorted(sessions, key=lambda s: str(s.session_id))
    ordered = sorted(by_id, key=key, reverse=order == "descending")  # stable: keeps ids ascending within ties
    return [str(s.session_id) for s in ordered]


def day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date().isoformat()


async def test_defaults_and_row_shape(strategy: str, api: httpx.AsyncClient, ch: Client) -> None:
    insert_sessions(ch, SESSIONS)
    body = (await api.get("/api/sessions")).json()
    assert body["count"] == len(SESSIONS)
    expected = legacy_order(SESSIONS, "date", "descending")[:5]  # default: by date, newest first, 5 per page
    assert [s["sessionId"] for s in body["sessions"]] == expected
    first = next(s for s in SESSIONS if str(s.session_id) == expected[0])
    assert body["sessions"][0] == {"sessionId": expected[0], "length": first.duration_ms,
                                   "date": day(first.started_ms), "appName": first.app_name,
                                   "errorCount": first.error_count}


@pytest.mark.parametrize("sort_by", list(LEGACY_KEYS))
@pytest.mark.parametrize("order", ["ascending", "descending"])
async def test_sorting_and_offset_paging(strategy: str, api: httpx.AsyncClient, ch: Client,
                                         sort_by: str, order: str) -> None:
    insert_sessions(ch, SESSIONS)
    seen: list[str] = []
    for page in range(4):  # 4 pages of 4: the last holds 2, and one more page would be empty
        body = (await api.get("/api/sessions", params={"sortBy": sort_by, "sortOrder": order, "perPage": 4,
                                                       "pageNum": page})).json()
        assert body["count"] == len(SESSIONS)
        seen += [s["sessionId"] for s in body["sessions"]]
    assert seen == legacy_order(SESSIONS, sort_by, order)
    past = (await api.get("/api/sessions", params={"sortBy": sort_by, "perPage": 7, "pageNum": 2})).json()
    assert past == {"count": len(SESSIONS), "sessions": []}


DAY2 = day(BASE_MS + 24 * HOUR)
LEGACY_FILTERS: list[tuple[str, dict[str, object], Callable[[EndedSession], bool]]] = [
    ("length-min", {"filter_0": "length", "minLength": 5_000}, lambda s: s.duration_ms >= 5_000),
    ("length-range", {"filter_0": "length", "minLength": 1_000, "maxLength": 5_000},
     lambda s: 1_000 <= s.duration_ms <= 5_000),
    ("date-one-day", {"filter_0": "date", "startDate": DAY2, "endDate": DAY2},
     lambda s: day(s.started_ms) == DAY2),
    ("date-from", {"filter_0": "date", "startDate": DAY2}, lambda s: day(s.started_ms) >= DAY2),
    ("date-until", {"filter_0": "date", "endDate": DAY2}, lambda s: day(s.started_ms) <= DAY2),
    ("app", {"filter_0": "appName", "textContent": "blog"}, lambda s: s.app_name == "blog"),
    ("errors-yes", {"filter_0": "Has Errors?", "yesOrNo": "yes"}, lambda s: s.error_count > 0),
    ("errors-no", {"filter_0": "Has Errors?", "yesOrNo": "no"}, lambda s: s.error_count == 0),
    ("all-four", {"filter_0": "appName", "textContent": "shop", "filter_1": "Has Errors?", "yesOrNo": "no",
                  "filter_2": "length", "minLength": 1, "filter_3": "date", "startDate": "2026-01-01"},
     lambda s: s.app_name == "shop" and s.error_count == 0 and s.duration_ms >= 1),
    ("repeated-type", {"filter_0": "appName", "filter_5": "appName", "textContent": "admin"},
     lambda s: s.app_name == "admin"),
]


@pytest.mark.parametrize(("params", "keep"), [(p, k) for _, p, k in LEGACY_FILTERS],
                         ids=[n for n, _, _ in LEGACY_FILTERS])
async def test_filters(strategy: str, api: httpx.AsyncClient, ch: Client, params: dict[str, object],
                       keep: Callable[[EndedSession], bool]) -> None:
    insert_sessions(ch, SESSIONS)
    kept = [s for s in SESSIONS if keep(s)]
    body = (await api.get("/api/sessions", params={**params, "perPage": 100, "sortBy": "length",
                                                   "sortOrder": "ascending"})).json()
    assert body["count"] == len(kept)
    assert [s["sessionId"] for s in body["sessions"]] == legacy_order(kept, "length", "ascending")


async def test_stale_copies_do_not_show_or_count(strategy: str, api: httpx.AsyncClient, ch: Client) -> None:
    insert_sessions(ch, [EndedSession(s.session_id, "admin", BASE_MS - HOUR, 1, 9) for s in SESSIONS[:10]])
    insert_sessions(ch, SESSIONS, version=2)
    body = (await api.get("/api/sessions", params={"perPage": 3, "pageNum": 1, "sortBy": "errorCount"})).json()
    assert body["count"] == len(SESSIONS)
    assert [s["sessionId"] for s in body["sessions"]] == legacy_order(SESSIONS, "errorCount", "descending")[3:6]
    admin = (await api.get("/api/sessions", params={"filter_0": "appName", "textContent": "admin",
                                                    "perPage": 100})).json()
    assert admin["count"] == len([s for s in SESSIONS if s.app_name == "admin"])


async def test_a_date_filter_without_an_end_has_none(api: httpx.AsyncClient, ch: Client) -> None:
    """Bard's one rule for a missing bound (clickhouse.session_filters): open, in the list as in funnels. A session
    whose client clock put its start days ahead is listed, and counted by a funnel with the same filter."""
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    today = EndedSession(uuid.uuid4(), "shop", now - 1_000, 10, 0)
    future = EndedSession(uuid.uuid4(), "shop", now + 3 * 24 * HOUR, 10, 0)
    insert_sessions(ch, [today, future, *SESSIONS])
    start = dt.datetime.fromtimestamp(now // 1000, tz=dt.UTC).date().isoformat()
    body = (await api.get("/api/sessions", params={"filter_0": "date", "startDate": start, "perPage": 100})).json()
    assert {s["sessionId"] for s in body["sessions"]} == {str(today.session_id), str(future.session_id)}
    assert body["count"] == 2
    unbounded = (await api.get("/api/sessions", params={"filter_0": "date", "perPage": 100})).json()
    assert unbounded["count"] == len(SESSIONS) + 2
    funnel = {"funnelName": "f", "sessionFilters": [{"filterType": "date", "startDate": start}],
              "eventSequence": [{"eventType": "click", "textContent": "x"}]}
    created = (await api.post("/api/funnels", json=funnel)).json()
    results = (await api.get(f"/api/funnels/{created['id']}")).json()["results"]
    assert results["totalFilteredSessions"] == 2


async def test_replay_events_in_timestamp_order(api: httpx.AsyncClient, ch: Client) -> None:
    sid = uuid.uuid4()
    insert_sessions(ch, [EndedSession(sid, "shop", BASE_MS, 10, 0)])
    insert_events(ch, sid, "shop", [{"type": 3, "timestamp": BASE_MS + 9, "data": {"source": 1}},
                                    {"type": 3, "timestamp": BASE_MS + 3, "data": {"source": 1}}])
    insert_events(ch, sid, "shop", [{"type": 4, "timestamp": BASE_MS, "data": {"href": "h"}}])
    response = await api.get(f"/api/sessions/{sid}")
    assert response.status_code == 200
    assert [e["timestamp"] for e in response.json()] == [BASE_MS, BASE_MS + 3, BASE_MS + 9]
    assert (await api.get(f"/api/sessions/{uuid.uuid4()}")).status_code == 404


async def test_options(api: httpx.AsyncClient, ch: Client) -> None:
    insert_sessions(ch, SESSIONS)
    sid = uuid.uuid4()
    insert_conversions(ch, [(sid, "shop", BASE_MS, "click", "Buy now"), (sid, "shop", BASE_MS, "click", "Add"),
                            (sid, "shop", BASE_MS, "custom", "signup"), (sid, "shop", BASE_MS + 5, "click", "Add")])
    assert (await api.get("/api/options/funnel", params={"eventType": "click"})).json() == ["Add", "Buy now"]
    assert (await api.get("/api/options/funnel", params={"eventType": "custom"})).json() == ["signup"]
    assert (await api.get("/api/options/filter", params={"filterType": "appName"})).json() == \
        ["admin", "blog", "shop"]
