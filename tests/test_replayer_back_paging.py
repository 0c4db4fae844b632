"""``GET /v1/sessions`` paged back with ``before``: forward N pages then back N pages gives the same pages (bodies
and cursors alike) for every sort and order, with ties, with stale versions of moved sessions on either side,
and ``prev_cursor`` is exact; against real chDB, on both ways of reading a page."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from replayer_api.cursors import Cursor
from tests.replayer_support import BASE_MS, EndedSession, clickhouse_snapshot, insert_sessions
from tests.test_replayer_sessions import expected_order, make_sessions

pytestmark = [pytest.mark.postgres, pytest.mark.clickhouse]

DAY = 86_400_000


async def page(api: httpx.AsyncClient, params: dict[str, Any]) -> dict[str, Any]:
    response = await api.get("/v1/sessions", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids_of(body: dict[str, Any]) -> list[str]:
    return [s["session_id"] for s in body["sessions"]]


async def forward_then_back(api: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page forward from the first (following ``next_cursor``), then every page back from the last
    (following ``prev_cursor``); the pages met going back must be the pages met going forward, whole."""
    forward = [await page(api, params)]
    assert forward[0]["prev_cursor"] is None
    while forward[-1]["next_cursor"] is not None:
        forward.append(await page(api, {**params, "cursor": forward[-1]["next_cursor"]}))
        assert len(forward) < 100
    back = [forward[-1]]
    while back[-1]["prev_cursor"] is not None:
        back.append(await page(api, {**params, "before": back[-1]["prev_cursor"]}))
        assert len(back) <= len(forward)
    assert back[::-1] == forward
    return forward


@pytest.mark.parametrize("sort", ["start", "duration", "app", "events", "errors"])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 4, 14, 20], ids=["one", "uneven", "exact", "past-the-end"])
async def test_back_pages_are_the_forward_pages(strategy: str, api: httpx.AsyncClient, ch: Client, sort: str,
                                                order: str, limit: int) -> None:
    sessions = make_sessions()  # ties on every sort key
    insert_sessions(ch, sessions)
    pages = await forward_then_back(api, {"sort": sort, "order": order, "limit": limit})
    assert [i for p in pages for i in ids_of(p)] == expected_order(sessions, sort, order)
    # Every page but the first says how to go back, and the first row's cursor is the way.
    for number, body in enumerate(pages):
        assert (body["prev_cursor"] is None) == (number == 0)


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("stale_at", ["start", "end"])
async def test_stale_versions_on_either_side_never_show(strategy: str, api: httpx.AsyncClient, ch: Client,
                                                        order: str, stale_at: str) -> None:
    """45 sessions were moved twice; their first versions sort before (or after) everything, filling whole rounds
    of candidates read forward (or backward). Each session still shows once, where its newest version puts it."""
    moved = [EndedSession(uuid.uuid4(), "shop", BASE_MS + DAY + i * 1_000, 5_000, 0) for i in range(45)]
    steady = [EndedSession(uuid.uuid4(), "blog", BASE_MS + 3_600_000 + i * 1_000, 5_000, 0) for i in range(15)]
    first_in_asc = stale_at == "start" if order == "asc" else stale_at == "end"
    edge = -DAY if first_in_asc else 3 * DAY
    insert_sessions(ch, [EndedSession(s.session_id, "shop", BASE_MS + edge, 1, 1) for s in moved], version=1)
    insert_sessions(ch, moved, version=2)
    insert_sessions(ch, steady)
    for params in ({"sort": "start", "order": order, "limit": 5},
                   {"sort": "start", "order": order, "limit": 7, "has_errors": "false", "min_duration_ms": 2},
                   {"sort": "duration", "order": order, "limit": 6}):
        pages = await forward_then_back(api, params)
        assert [i for p in pages for i in ids_of(p)] == expected_order(moved + steady, str(params["sort"]), order)


async def test_before_gives_the_sessions_just_before_in_list_order(strategy: str, api: httpx.AsyncClient,
                                                                  ch: Client) -> None:
    sessions = make_sessions()
    insert_sessions(ch, sessions)
    everything = expected_order(sessions, "duration", "desc")
    params = {"sort": "duration", "order": "desc", "limit": 4}
    second = await page(api, {**params, "cursor": (await page(api, params))["next_cursor"]})
    assert ids_of(second) == everything[4:8]

    # Fewer than a page before the position: what there is, and no page before it.
    three = await page(api, {**params, "limit": 3, "before": second["prev_cursor"]})
    assert ids_of(three) == everything[1:4]
    assert three["prev_cursor"] is not None and three["next_cursor"] is not None
    rest = await page(api, {**params, "limit": 3, "before": three["prev_cursor"]})
    assert ids_of(rest) == everything[:1]
    assert rest["prev_cursor"] is None
    # next_cursor of a page reached going back is its last row's: forward from it is the page after.
    after_three = await page(api, {**params, "cursor": three["next_cursor"]})
    assert ids_of(after_three) == everything[4:8]
    # before= a page's next_cursor (its last row) gives the rows before that row.
    before_last = await page(api, {**params, "before": second["next_cursor"]})
    assert ids_of(before_last) == everything[3:7]
    # Before the very first session there is nothing.
    nothing = await page(api, {**params, "before": rest["next_cursor"]})
    assert nothing == {"sessions": [], "next_cursor": None, "prev_cursor": None}


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_prev_cursor_is_exact_when_the_sessions_before_moved_away(strategy: str, api: httpx.AsyncClient,
                                                                       ch: Client, order: str) -> None:
    """The sessions before a page move behind it (a late batch made them start later): their stale versions are
    still before the page, but no session is, so the page has no previous page."""
    sessions = [EndedSession(uuid.uuid4(), "shop", BASE_MS + i * 1_000, 1_000, 0) for i in range(8)]
    insert_sessions(ch, sessions)
    ordered = expected_order(sessions, "start", order)
    params = {"sort": "start", "order": order, "limit": 3}
    first = await page(api, params)
    leading = [s for s in sessions if str(s.session_id) in ids_of(first)]
    later = BASE_MS + (-DAY if order == "desc" else DAY)
    moved = [EndedSession(s.session_id, "shop", later, 1_000, 0) for s in leading]
    insert_sessions(ch, moved, version=2)
    second = await page(api, {**params, "cursor": first["next_cursor"]})
    assert ids_of(second) == ordered[3:6]
    assert second["prev_cursor"] is None
    third = await page(api, {**params, "cursor": second["next_cursor"]})
    assert ids_of(third) == ordered[6:8] + expected_order(moved, "start", order)[:1]
    assert ids_of(await page(api, {**params, "before": third["prev_cursor"]})) == ordered[3:6]


async def test_a_cursor_past_the_end_has_no_previous_page(strategy: str, api: httpx.AsyncClient, ch: Client) -> None:
    insert_sessions(ch, make_sessions(4))
    first = await page(api, {"limit": 3})
    ch.command("TRUNCATE TABLE sessions")
    assert await page(api, {"limit": 3, "cursor": first["next_cursor"]}) == {
        "sessions": [], "next_cursor": None, "prev_cursor": None}
    assert await page(api, {"limit": 3, "before": first["next_cursor"]}) == {
        "sessions": [], "next_cursor": None, "prev_cursor": None}


ONE_CURSOR = Cursor("start", "desc", BASE_MS, uuid.UUID(int=5, version=4)).encode()
BAD_BEFORE = [
    # (id, query, the parameter the error names, words the error says)
    ("both", {"cursor": ONE_CURSOR, "before": ONE_CURSOR}, "before", "not both"),
    ("both-cursor-garbage", {"cursor": "!!!", "before": ONE_CURSOR}, "before", "not both"),
    ("garbage", {"before": "!!!"}, "before", "not a cursor"),
    ("base64-junk", {"before": "eyJhIjoxfQ"}, "before", "not a cursor"),
    ("other-sort", {"before": Cursor("duration", "desc", 5, uuid.uuid4()).encode()}, "before", "sort=duration"),
    ("other-order", {"before": Cursor("start", "asc", BASE_MS, uuid.uuid4()).encode()}, "before", "order=asc"),
    ("wrong-key-type", {"before": Cursor("start", "desc", "text", uuid.uuid4()).encode()}, "before", "not a cursor"),
    ("negative-key", {"before": Cursor("start", "desc", -1, uuid.uuid4()).encode()}, "before", "not a cursor"),
    ("app-key-not-text", {"sort": "app", "before": Cursor("app", "desc", 3, uuid.uuid4()).encode()}, "before",
     "not a cursor"),
    ("limit-with-before", {"before": ONE_CURSOR, "limit": "0"}, "limit", "limit"),
]


@pytest.mark.parametrize(("query", "parameter", "words"), [row[1:] for row in BAD_BEFORE],
                         ids=[row[0] for row in BAD_BEFORE])
async def test_bad_before_is_refused_by_name(api: httpx.AsyncClient, ch: Client, query: dict[str, Any],
                                             parameter: str, words: str) -> None:
    insert_sessions(ch, make_sessions(3))
    before = await clickhouse_snapshot(ch)
    response = await api.get("/v1/sessions", params=query)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == parameter
    assert body["message"].startswith(f"{parameter}: ") and words in body["message"]
    assert await clickhouse_snapshot(ch) == before
