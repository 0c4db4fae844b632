"""Session metadata (issue 12 §2): the client from the User-Agent, the viewport, entry and exit pages, pages seen
and clicks, from bardrr-shaped batches through ``/record`` to PostgreSQL ``active_sessions`` and through the
session ender to ClickHouse ``sessions``; late batches; and the migrations on databases that already hold
sessions. Real PostgreSQL, RabbitMQ and chDB where a test says so; the rules alone without services."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from clickhouse_connect.driver.client import Client
from starlette.types import Receive, Scope, Send

from agent_api.app import create_app
from agent_api.batches import parse_batch
from agent_api.pages import MAX_PATH_CHARS, MAX_URL_CHARS, NO_PAGES, PagesSeen, combine, url_path
from agent_api.sessions import UPSERT_ACTIVE_SESSIONS, SessionActivity, session_parameters
from agent_api.user_agents import UNKNOWN_CLIENT, ClientDevice
from bard import postgres
from bard.broker import declare_topology
from bard.settings import Settings
from clickhouse import migrations as clickhouse_migrations
from clickhouse.client import create_client
from clickhouse.schema import MIGRATIONS as CLICKHOUSE_MIGRATIONS
from replayer_api import sessions as replayer_sessions
from session_ender.ender import MoveStep, SessionEnder
from session_ender.merge import COLUMNS, ActiveSegment, EndedSession, merge_segment
from tests import bardrr_events as bardrr
from tests.conftest import PG_SERVER
from tests.replayer_support import open_api

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/18.1 Mobile/15E148 Safari/604.1")
CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")
T0 = 1_700_000_000_000
SHOP = "https://shop.example.com"

METADATA = ("browser", "browser_major", "os", "device_type", "viewport_width", "viewport_height", "entry_url",
            "entry_path", "exit_path", "page_count", "click_count", "error_count", "event_count",
            "rage_click_count", "dead_click_count", "error_click_count", "country")


def services(test: Callable[..., Any]) -> Callable[..., Any]:
    return pytest.mark.postgres(pytest.mark.rabbitmq(pytest.mark.clickhouse(test)))


def meta(ts: int, href: str, width: int = 1440, height: int = 900) -> dict[str, Any]:
    return {"type": 4, "data": {"href": href, "width": width, "height": height}, "timestamp": ts}


def parsed(events: list[dict[str, Any]], client: ClientDevice = UNKNOWN_CLIENT) -> Any:
    body = msgspec.json.encode(bardrr.record_body(events))
    return parse_batch(body, "shop", max_idle_default_ms=60_000, max_idle_max_ms=3_600_000, client=client)


# --- Pages, without services ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "path"),
    [
        pytest.param(f"{SHOP}/products/42", "/products/42", id="plain"),
        pytest.param(f"{SHOP}/cart?coupon=SAVE10&utm_source=mail#summary", "/cart", id="query-and-fragment"),
        pytest.param(SHOP, "/", id="no-path"),
        pytest.param(f"{SHOP}?q=mugs", "/", id="only-a-query"),
        pytest.param(f"{SHOP}/a%20b/", "/a%20b/", id="kept-encoded"),
        pytest.param("http://[::1]:3000/admin", "/admin", id="ipv6-host"),
        pytest.param("file:///home/me/index.html", "/home/me/index.html", id="file"),
        pytest.param("http://[::1/broken", "", id="unclosed-ipv6-bracket"),
        pytest.param("about:blank", "", id="about-blank"),
        pytest.param("/relative/only", "", id="no-scheme"),
        pytest.param("not a url at all", "", id="garbage"),
        pytest.param("", "", id="empty"),
        pytest.param(42, "", id="a-number"),
        pytest.param(None, "", id="null"),
        pytest.param(f"{SHOP}/a\x00b", "/ab", id="nul-dropped"),
        pytest.param(f"{SHOP}/" + "p" * 5_000, "/" + "p" * (MAX_PATH_CHARS - 1), id="capped"),
    ],
)
def test_the_path_of_an_href(href: Any, path: str) -> None:
    assert url_path(href) == path


def test_a_batch_counts_its_pages_and_clicks_and_keeps_its_entry_and_exit() -> None:
    events = bardrr.first_batch(T0) + [meta(T0 + 5_000, f"{SHOP}/cart?step=1", 390, 844),
                                       bardrr.full_snapshot(T0 + 5_001, products=2), bardrr.button_click(T0 + 5_500)]
    batch = parsed(events)

    # first_batch: a marked button click and a link click named from its own snapshot; then one more button.
    assert batch.click_count == 3
    assert batch.error_count == 1
    assert batch.pages == PagesSeen(page_count=2, entry_at=T0, entry_url=f"{SHOP}/products/42",
                                    entry_path="/products/42", viewport_width=1440, viewport_height=900,
                                    exit_at=T0 + 5_000, exit_path="/cart")


def test_entry_and_exit_go_by_client_time_not_by_place_in_the_batch() -> None:
    batch = parsed([meta(T0 + 900, f"{SHOP}/second"), meta(T0, f"{SHOP}/first", 800, 600),
                    meta(T0 + 900, f"{SHOP}/third")])
    assert (batch.pages.entry_path, batch.pages.viewport_width, batch.pages.exit_path) == ("/first", 800, "/third")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="no-fields"),
        pytest.param({"href": 42, "width": "wide", "height": -1}, id="wrong-types"),
        pytest.param({"href": None, "width": 1.5, "height": True}, id="null-float-bool"),
        pytest.param({"href": "about:blank", "width": 10**9, "height": 0}, id="out-of-range"),
    ],
)
def test_an_odd_meta_event_is_accepted_and_reads_as_unknown(data: dict[str, Any]) -> None:
    batch = parsed([{"type": 4, "data": data, "timestamp": T0}])
    assert batch.pages.page_count == 1
    assert (batch.pages.viewport_width, batch.pages.viewport_height, batch.pages.exit_path) == (0, 0, "")
    assert batch.pages.entry_url in ("", "about:blank")


def test_a_long_href_is_capped() -> None:
    batch = parsed([meta(T0, f"{SHOP}/?q=" + "x" * 10_000)])
    assert len(batch.pages.entry_url) == MAX_URL_CHARS and batch.pages.entry_path == "/"


def test_batches_combine_earliest_entry_latest_exit_and_add_pages() -> None:
    early = parsed([meta(T0, f"{SHOP}/a", 800, 600)]).pages
    late = parsed([meta(T0 + 10, f"{SHOP}/b", 1024, 768)]).pages
    for first, second in ((early, late), (late, early)):
        both = combine(first, second)
        assert (both.page_count, both.entry_path, both.viewport_width, both.exit_path) == (2, "/a", 800, "/b")
    assert combine(NO_PAGES, late) == late and combine(late, NO_PAGES) == late


# --- The merge of segments, without services ----------------------------------------------------------------

SID, SEG_A, SEG_B, SEG_C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
PHONE = dict(browser="Mobile Safari", browser_major=18, os="iOS", device_type="mobile", country="JP")
DESKTOP = dict(browser="Chrome", browser_major=131, os="Windows", device_type="desktop", country="US")


def segment(seg: uuid.UUID, *, client: dict[str, Any] | None = None, pages: int = 0, entry: str = "",
            exit_: str = "", clicks: int = 0, events: int = 10, viewport: tuple[int, int] = (0, 0),
            first: int = T0) -> ActiveSegment:
    return ActiveSegment(
        session_id=SID, segment_id=seg, app_name="shop", first_event_at=first, last_event_at=first + 1_000,
        event_count=events, error_count=1, **(client or {}), viewport_width=viewport[0], viewport_height=viewport[1],
        entry_url=SHOP + entry if entry else "", entry_path=entry, exit_path=exit_, page_count=pages,
        click_count=clicks, rage_click_count=1, dead_click_count=2, error_click_count=3,
    )


def merged(*segments: ActiveSegment, start: EndedSession | None = None) -> EndedSession:
    session = start
    for seg in segments:
        session = merge_segment(session, seg, min_version=0)
    assert session is not None
    return session


FIRST = segment(SEG_A, client=PHONE, pages=2, entry="/products/42", exit_="/cart", clicks=4, viewport=(390, 844))
LATE = segment(SEG_B, client=DESKTOP, pages=1, entry="/checkout", exit_="/done", clicks=1, viewport=(1440, 900),
               first=T0 + 60_000)
LATE_WITHOUT_PAGES = segment(SEG_C, clicks=2, events=3, first=T0 + 120_000)


def summary(session: EndedSession) -> tuple[object, ...]:
    return (session.browser, session.device_type, session.viewport_width, session.entry_path, session.exit_path,
            session.page_count, session.click_count, session.event_count, session.rage_click_count,
            session.error_click_count, session.segment_page_counts, session.segment_click_counts, session.country)


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        pytest.param([FIRST], ("Mobile Safari", "mobile", 390, "/products/42", "/cart", 2, 4, 10, 1, 3, (2,), (4,),
                               "JP"), id="first-move"),
        pytest.param([FIRST, FIRST], ("Mobile Safari", "mobile", 390, "/products/42", "/cart", 2, 4, 10, 1, 3,
                                      (2,), (4,), "JP"), id="same-snapshot-twice"),
        pytest.param([FIRST, LATE], ("Mobile Safari", "mobile", 390, "/products/42", "/done", 3, 5, 20, 2, 6,
                                     (2, 1), (4, 1), "JP"), id="late-segment-keeps-first-seen-and-moves-the-exit"),
        pytest.param([FIRST, LATE, LATE], ("Mobile Safari", "mobile", 390, "/products/42", "/done", 3, 5, 20, 2, 6,
                                           (2, 1), (4, 1), "JP"), id="late-segment-merged-twice"),
        pytest.param([FIRST, LATE, FIRST], ("Mobile Safari", "mobile", 390, "/products/42", "/done", 3, 5, 20, 2, 6,
                                            (2, 1), (4, 1), "JP"), id="first-merged-again-after-late"),
        pytest.param([FIRST, LATE, LATE_WITHOUT_PAGES], ("Mobile Safari", "mobile", 390, "/products/42", "/done",
                                                         3, 7, 23, 3, 9, (2, 1, 0), (4, 1, 2), "JP"),
                     id="segment-without-pages-keeps-the-exit"),
        pytest.param([segment(SEG_A, events=4), LATE], ("Chrome", "desktop", 1440, "/checkout", "/done", 1, 1, 14,
                                                        2, 6, (0, 1), (0, 1), "US"),
                     id="first-segment-knew-nothing-the-late-one-fills-in"),
        pytest.param([segment(SEG_A, client={**PHONE, "country": ""}), LATE],
                     ("Mobile Safari", "mobile", 1440, "/checkout", "/done", 1, 1, 20, 2, 6, (0, 1), (0, 1), "US"),
                     id="first-segment-from-a-private-address-the-late-one-fills-the-country-only"),
        pytest.param([segment(SEG_A, client={**PHONE, "country": ""}), LATE, FIRST],
                     ("Mobile Safari", "mobile", 390, "/products/42", "/done", 3, 5, 20, 2, 6, (2, 1), (4, 1), "JP"),
                     id="a-newer-snapshot-of-the-first-segment-knows-the-country-and-wins"),
    ],
)
def test_metadata_merges_exactly_when_repeated(segments: list[ActiveSegment], expected: tuple[object, ...]) -> None:
    assert summary(merged(*segments)) == expected


def test_a_newer_snapshot_of_the_first_segment_replaces_its_first_seen_values() -> None:
    grown = segment(SEG_A, client=PHONE, pages=3, entry="/landing", exit_="/cart", clicks=6, viewport=(375, 812))
    session = merged(FIRST, LATE, grown)
    assert (session.entry_path, session.viewport_width, session.exit_path, session.page_count) == (
        "/landing", 375, "/done", 4)


def test_a_session_moved_before_the_metadata_gets_the_late_segments() -> None:
    old = EndedSession(session_id=SID, app_name="shop", started_at=T0, ended_at=T0 + 5_000, event_count=40,
                       error_count=2, segments=(SEG_A,), segment_event_counts=(40,), segment_error_counts=(2,),
                       version=7)
    once = merged(LATE, start=old)
    assert summary(once) == ("Chrome", "desktop", 1440, "/checkout", "/done", 1, 1, 50, 1, 3, (0, 1), (0, 1), "US")
    assert summary(merged(LATE, start=once)) == summary(once)


# --- Through /record, PostgreSQL and the session ender ------------------------------------------------------------


@contextlib.asynccontextmanager
async def agent_api(settings: Settings, peer: str = "198.51.100.4") -> AsyncIterator[httpx.AsyncClient]:
    """The agent API in process, its requests arriving from ``peer`` (a documentation address by default)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://agent-api") as client:
            yield client


@pytest.fixture
async def agent(settings: Settings, pg_pool: asyncpg.Pool, amqp: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with agent_api(settings) as client:
        yield client


async def record(client: httpx.AsyncClient, session_id: uuid.UUID, events: list[dict[str, Any]],
                 user_agent: str | bytes | None, forwarded_for: tuple[str, ...] = ()) -> None:
    token = (await client.get("/authenticate")).json()["accessToken"]
    raw = [(name.encode(), value.encode()) for name, value in bardrr.record_headers(token).items()]
    raw += [(b"X-Forwarded-For", value.encode()) for value in forwarded_for]
    if user_agent is not None:  # bytes: sent as they are, as a client may send any octets
        raw.append((b"User-Agent", user_agent if isinstance(user_agent, bytes) else user_agent.encode()))
    headers = httpx.Headers(raw)
    response = await client.post("/record", content=msgspec.json.encode(bardrr.record_body(events, str(session_id))),
                                 headers=headers)
    assert response.status_code == 200, response.text


async def active_row(pool: asyncpg.Pool, session_id: uuid.UUID) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT * FROM active_sessions WHERE session_id = $1", session_id)
    assert row is not None
    return dict(row)


async def end_everything(settings: Settings, pool: asyncpg.Pool, ch: Client,
                         on_step: Any = None) -> int:
    """Run the ender with a clock past every active session's expiry and grace."""
    latest: datetime = await pool.fetchval("SELECT max(expires_at) FROM active_sessions")
    moment = latest + timedelta(seconds=settings.ender_grace_seconds, microseconds=1)
    ender = SessionEnder(pool, ch, grace_seconds=settings.ender_grace_seconds, batch_size=100,
                         clock=lambda: moment, on_step=on_step)
    return (await ender.expire_sessions()).ended


def ended_row(ch: Client, session_id: uuid.UUID) -> dict[str, Any]:
    rows = ch.query(
        "SELECT browser, browser_major, os, device_type, viewport_width, viewport_height, entry_url, entry_path,"
        " exit_path, page_count, click_count, error_count, event_count, rage_click_count, dead_click_count,"
        " error_click_count, country, length(segments), segment_page_counts, segment_click_counts"
        " FROM sessions FINAL WHERE session_id = {s:UUID}",
        parameters={"s": session_id},
    ).result_rows
    assert len(rows) == 1, rows
    return dict(zip((*METADATA, "segments", "segment_page_counts", "segment_click_counts"), rows[0], strict=True))


def a_page_visit(at: int, href: str, width: int, height: int) -> list[dict[str, Any]]:
    """A navigation as the agent records it: Meta, the new page's snapshot, a click on its button."""
    return [meta(at, href, width, height), bardrr.full_snapshot(at + 1, products=3), bardrr.button_click(at + 400)]


@services
async def test_metadata_from_record_to_postgres_to_clickhouse_and_through_late_batches(
    agent: httpx.AsyncClient, pg_pool: asyncpg.Pool, ch: Client, settings: Settings
) -> None:
    sid = uuid.uuid4()
    start = bardrr.now_ms()
    first = bardrr.first_batch(start)  # Meta /products/42 1440x900, a marked button click, a link click, an error
    # A later batch without a snapshot: its link click is named from the stored page (PostgreSQL), its click on
    # the product list (a plain node) is no click on a link or button.
    later = [bardrr.scroll(start + 2_500), bardrr.link_click(start + 2_600), bardrr.link_click(start + 2_700, 7)]
    navigation = a_page_visit(start + 5_000, f"{SHOP}/cart?coupon=SAVE10#summary", 1280, 720)
    for events in (first, later, navigation):
        await record(agent, sid, events, IPHONE)

    row = await active_row(pg_pool, sid)
    expected = {
        "browser": "Mobile Safari", "browser_major": 18, "os": "iOS", "device_type": "mobile",
        "viewport_width": 1440, "viewport_height": 900, "entry_url": f"{SHOP}/products/42",
        "entry_path": "/products/42", "exit_path": "/cart", "page_count": 2, "click_count": 4, "error_count": 1,
        "event_count": 16, "rage_click_count": 0, "dead_click_count": 0, "error_click_count": 0,
        "country": "",  # the test client's 198.51.100.4 is a documentation address: no country
    }
    assert {name: row[name] for name in METADATA} == expected
    assert (row["entry_at"], row["exit_at"]) == (start, start + 5_000)

    assert await end_everything(settings, pg_pool, ch) == 1
    assert ended_row(ch, sid) == {**expected, "segments": 1, "segment_page_counts": [2], "segment_click_counts": [4]}

    # A late batch: the session ended and moved, then the tab sent more (here with another User-Agent and
    # viewport, to tell first-seen values from late ones). It opens a new segment in PostgreSQL...
    await record(agent, sid, a_page_visit(start + 90_000, f"{SHOP}/checkout/done", 800, 600), CHROME_WINDOWS)
    late = await active_row(pg_pool, sid)
    assert (late["browser"], late["entry_path"], late["page_count"], late["click_count"]) == (
        "Chrome", "/checkout/done", 1, 1)
    # ...whose move keeps the first-seen values, takes the exit path, and adds the counts once.
    assert await end_everything(settings, pg_pool, ch) == 1
    after_late = {**expected, "exit_path": "/checkout/done", "page_count": 3, "click_count": 5, "event_count": 19,
                  "segments": 2, "segment_page_counts": [2, 1], "segment_click_counts": [4, 1]}
    assert ended_row(ch, sid) == after_late

    # Another late batch without a Meta event, whose move crashes after its ClickHouse write and is run again:
    # counted exactly once, and the exit path stays the last page's.
    await record(agent, sid, bardrr.later_batch(start + 200_000, 4) + [bardrr.button_click(start + 200_500)],
                 IPHONE)

    async def crash(step: MoveStep, segments: Any) -> None:
        if step is MoveStep.WRITTEN:
            raise RuntimeError("crash injected after the write")

    with pytest.raises(RuntimeError, match="crash injected"):
        await end_everything(settings, pg_pool, ch, on_step=crash)
    assert await end_everything(settings, pg_pool, ch) == 1
    assert ended_row(ch, sid) == {**after_late, "click_count": 6, "event_count": 24, "segments": 3,
                                  "segment_page_counts": [2, 1, 0], "segment_click_counts": [4, 1, 1]}


@services
async def test_the_entry_is_the_earliest_meta_and_the_exit_the_latest_whatever_the_arrival_order(
    agent: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    sid = uuid.uuid4()
    start = bardrr.now_ms()
    await record(agent, sid, bardrr.later_batch(start + 3_000, 3), IPHONE)  # raced ahead of the first batch
    assert (await active_row(pg_pool, sid))["entry_at"] is None
    await record(agent, sid, a_page_visit(start + 2_000, f"{SHOP}/second", 1000, 700), IPHONE)
    await record(agent, sid, bardrr.first_batch(start), IPHONE)  # the session's first page, arriving last
    await record(agent, sid, bardrr.later_batch(start + 4_000, 3), IPHONE)

    row = await active_row(pg_pool, sid)
    assert (row["entry_url"], row["entry_path"], row["viewport_width"], row["viewport_height"], row["exit_path"]) == (
        f"{SHOP}/products/42", "/products/42", 1440, 900, "/second")
    assert (row["page_count"], row["entry_at"], row["exit_at"]) == (2, start, start + 2_000)


@pytest.mark.parametrize(
    "user_agent",
    [pytest.param(None, id="no-header"), pytest.param("", id="empty"),
     pytest.param(b"\x01garbage (((( \xff\xfe", id="garbage-bytes"), pytest.param("x" * 8_000, id="long")],
)
@services
async def test_a_missing_or_garbage_user_agent_is_stored_empty(
    agent: httpx.AsyncClient, pg_pool: asyncpg.Pool, user_agent: str | bytes | None
) -> None:
    if user_agent is None:
        del agent.headers["User-Agent"]
    sid = uuid.uuid4()
    await record(agent, sid, bardrr.first_batch(), user_agent)
    row = await active_row(pg_pool, sid)
    assert (row["browser"], row["browser_major"], row["os"], row["device_type"]) == ("", 0, "", "")
    assert row["page_count"] == 1, "the rest of the metadata is read all the same"


@services
async def test_a_meta_event_with_nul_and_odd_fields_is_stored_without_them(
    agent: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    sid = uuid.uuid4()
    await record(agent, sid, [{"type": 4, "data": {"href": f"{SHOP}/a\u0000b?x", "width": "1440"},
                               "timestamp": bardrr.now_ms()}], b"Bad\x00Bot/1.0")
    row = await active_row(pg_pool, sid)
    assert (row["entry_url"], row["entry_path"], row["viewport_width"]) == (f"{SHOP}/ab?x", "/ab", 0)


# --- The country, from the client address to both stores; the address itself nowhere ------------------------------

RIPE_NCC = "193.0.6.139"  # the RIPE NCC's own web server: NL in its registry's file
APNIC_JP = "1.0.16.1"  # JP (APNIC)
AFRINIC_ZA = "41.0.0.1"  # ZA (AFRINIC)
ARIN_V6 = "2001:4860:4860::8888"  # US (ARIN), IPv6


def everything_stored(row: dict[str, Any]) -> str:
    return " ".join(str(value) for value in row.values())


@services
async def test_the_country_from_record_to_postgres_to_clickhouse_to_v1_and_the_address_is_kept_nowhere(
    settings: Settings, pg_pool: asyncpg.Pool, ch: Client, amqp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    sid, other = uuid.uuid4(), uuid.uuid4()
    start = bardrr.now_ms()
    async with agent_api(settings, RIPE_NCC) as agent:
        await record(agent, sid, bardrr.first_batch(start), IPHONE)
        await record(agent, other, bardrr.first_batch(start), CHROME_WINDOWS)
    row = await active_row(pg_pool, sid)
    assert row["country"] == "NL"
    # The same session's next batch from elsewhere (a phone that changed networks) keeps the first country.
    async with agent_api(settings, APNIC_JP) as agent:
        await record(agent, sid, bardrr.later_batch(start + 2_000, 3), IPHONE)
    assert (await active_row(pg_pool, sid))["country"] == "NL"

    assert await end_everything(settings, pg_pool, ch) == 2
    assert ended_row(ch, sid)["country"] == "NL"

    # A late batch, from another country: a new segment in PostgreSQL with its own country, and the ended session
    # keeps the first one.
    async with agent_api(settings, ARIN_V6) as agent:
        await record(agent, sid, a_page_visit(start + 90_000, f"{SHOP}/late", 800, 600), IPHONE)
    assert (await active_row(pg_pool, sid))["country"] == "US"
    assert await end_everything(settings, pg_pool, ch) == 1
    assert (ended_row(ch, sid)["country"], ended_row(ch, sid)["segments"]) == ("NL", 2)

    async with open_api(settings) as api:
        listed = (await api.get("/v1/sessions", params={"country": "NL"})).json()["sessions"]
        assert sorted(s["session_id"] for s in listed) == sorted([str(sid), str(other)])
        assert (await api.get(f"/v1/sessions/{sid}")).json()["country"] == "NL"
        assert (await api.get("/v1/sessions", params={"country": "US"})).json()["sessions"] == []
        options = (await api.get("/v1/options/country")).json()  # counted over every stored version of a row
        assert (options["property"], [v["value"] for v in options["values"]]) == ("country", ["NL"])

    # Nowhere: not in the rows of either store, not on the queue, not in a log line.
    addresses = (RIPE_NCC, APNIC_JP, ARIN_V6)
    stored = [everything_stored(dict(r)) for r in await pg_pool.fetch("SELECT * FROM active_sessions")]
    stored += [everything_stored(dict(r)) for r in await pg_pool.fetch("SELECT * FROM active_session_click_targets")]
    for every_row in ("SELECT * FROM sessions", "SELECT * FROM events", "SELECT * FROM conversion_events"):
        result = ch.query(every_row)
        stored += [everything_stored(dict(zip(result.column_names, r, strict=True))) for r in result.result_rows]
    async with amqp.channel() as channel:
        _, queue = await declare_topology(channel, settings)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            stored.append(message.body.decode())
    assert len(stored) >= 4
    for address in addresses:
        assert not [text for text in stored if address in text], address
        assert address not in caplog.text


# (id, BARD_TRUSTED_PROXIES, the peer, X-Forwarded-For headers, the country stored)
FORWARDED = [
    ("no-trust-the-peer-counts", "", RIPE_NCC, (), "NL"),
    ("forged-header-ignored-by-default", "", RIPE_NCC, (AFRINIC_ZA,), "NL"),
    ("forged-header-ignored-from-an-untrusted-peer", "127.0.0.0/8", RIPE_NCC, (AFRINIC_ZA,), "NL"),
    ("trusted-proxy-the-right-most-untrusted-entry", "127.0.0.0/8", "127.0.0.1", (f"{APNIC_JP}, {AFRINIC_ZA}",),
     "ZA"),
    ("trusted-chain-of-proxies", "127.0.0.0/8, 10.0.0.0/8", "127.0.0.1", (f"{AFRINIC_ZA}, 10.1.2.3",), "ZA"),
    ("two-headers-read-as-one-list", "127.0.0.0/8", "127.0.0.1", (APNIC_JP, f"[{ARIN_V6}]:443"), "US"),
    ("trusted-proxy-without-the-header", "127.0.0.0/8", "127.0.0.1", (), ""),
    ("trusted-proxy-garbage-entry", "127.0.0.0/8", "127.0.0.1", ("unknown",), ""),
    ("loopback-peer", "", "127.0.0.1", (AFRINIC_ZA,), ""),
    ("private-peer", "", "10.20.30.40", (), ""),
]


@pytest.mark.parametrize(("trusted", "peer", "forwarded_for", "country"), [row[1:] for row in FORWARDED],
                         ids=[row[0] for row in FORWARDED])
@services
async def test_the_country_comes_from_the_peer_unless_a_trusted_proxy_forwarded_the_request(
    settings: Settings, pg_pool: asyncpg.Pool, amqp: Any, trusted: str, peer: str, forwarded_for: tuple[str, ...],
    country: str,
) -> None:
    sid = uuid.uuid4()
    async with agent_api(settings.replace(trusted_proxies=trusted), peer) as agent:
        await record(agent, sid, bardrr.first_batch(), IPHONE, forwarded_for)
    row = await active_row(pg_pool, sid)
    assert row["country"] == country
    assert not [address for address in (peer, RIPE_NCC, APNIC_JP, AFRINIC_ZA, ARIN_V6)
                if address in everything_stored(row)]


# --- The migrations on databases that already hold sessions -------------------------------------------------------

# What the agent API ran before migration 4: the upsert of that time, kept here as the old data's writer.
OLD_UPSERT = """
INSERT INTO active_sessions AS s (
    session_id, app_name, first_event_at, last_event_at, max_idle_ms, event_count, error_count,
    last_seen_at, expires_at
)
SELECT u.session_id, u.app_name, u.first_event_at, u.last_event_at, u.max_idle_ms, u.event_count, u.error_count,
       now(), now() + u.max_idle_ms * interval '1 millisecond'
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::integer[], $6::bigint[], $7::bigint[])
     AS u(session_id, app_name, first_event_at, last_event_at, max_idle_ms, event_count, error_count)
"""
OLD_ENDED_COLUMNS = ["session_id", "app_name", "started_at", "ended_at", "event_count", "error_count", "segments",
                     "segment_event_counts", "segment_error_counts", "version"]


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_the_postgresql_migration_keeps_active_sessions_and_new_batches_fill_them(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, ch: Client
) -> None:
    url = f"{PG_SERVER}/bard_test_migration_{uuid.uuid4().hex[:10]}"
    await postgres.ensure_database(url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            with monkeypatch.context() as before:
                before.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:3])
                assert await postgres.migrate(conn) == [1, 2, 3]
            old, untouched = uuid.uuid4(), uuid.uuid4()
            await conn.execute(OLD_UPSERT, [old, untouched], ["shop", "blog"], [T0, T0], [T0 + 10, T0 + 20],
                               [60_000, 60_000], [10, 3], [1, 0])
            file_before = await conn.fetchval("SELECT relfilenode FROM pg_class WHERE relname = 'active_sessions'")

            assert await postgres.migrate(conn) == [4, 5, 6]

            assert await conn.fetchval(
                "SELECT relfilenode FROM pg_class WHERE relname = 'active_sessions'") == file_before, "no rewrite"
            row = dict(await conn.fetchrow("SELECT * FROM active_sessions WHERE session_id = $1", untouched))
            assert {name: row[name] for name in METADATA} == {
                "browser": "", "browser_major": 0, "os": "", "device_type": "", "viewport_width": 0,
                "viewport_height": 0, "entry_url": "", "entry_path": "", "exit_path": "", "page_count": 0,
                "click_count": 0, "error_count": 0, "event_count": 3, "rage_click_count": 0,
                "dead_click_count": 0, "error_click_count": 0, "country": "",
            }
            assert (row["entry_at"], row["exit_at"]) == (None, None)

            # A batch after the upgrade, for a session that was already active: its metadata fills the old row.
            batch = parsed(a_page_visit(T0 + 50, f"{SHOP}/after", 1024, 768),
                           ClientDevice("Chrome", 131, "Windows", "desktop"))
            activity = SessionActivity("shop", T0 + 50, T0 + 450, 60_000, 3, 0, batch.client, batch.pages, 1)
            await conn.execute(UPSERT_ACTIVE_SESSIONS, *session_parameters({old: activity}))
        assert await end_everything(settings, pool, ch) == 2
    finally:
        await pool.close()
        await postgres.drop_database(url)

    filled = ended_row(ch, old)
    assert (filled["browser"], filled["device_type"], filled["entry_path"], filled["viewport_width"]) == (
        "Chrome", "desktop", "/after", 1024)
    assert (filled["event_count"], filled["error_count"], filled["page_count"], filled["click_count"]) == (13, 1, 1, 1)
    assert (ended_row(ch, untouched)["browser"], ended_row(ch, untouched)["event_count"]) == ("", 3)


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_the_clickhouse_migration_keeps_ended_sessions_and_late_batches_merge_into_them(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    database = f"t_old_{uuid.uuid4().hex[:10]}"
    old_ch = create_client(settings.resolved_clickhouse_url, database=database)
    try:
        with monkeypatch.context() as before:
            older = tuple(m for m in CLICKHOUSE_MIGRATIONS if m.version < 4)
            before.setattr(clickhouse_migrations, "MIGRATIONS", older)
            assert clickhouse_migrations.migrate(old_ch, settings, database) == [1, 2]  # 3 is server mode only
        sid, other, seg = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        old_ch.insert("sessions", [[sid, "shop", T0, T0 + 5_000, 40, 2, [seg], [40], [2], 5],
                                   [other, "blog", T0, T0 + 9_000, 7, 0, [uuid.uuid4()], [7], [0], 5]],
                      column_names=OLD_ENDED_COLUMNS)

        def parts() -> list[tuple[Any, ...]]:
            return [tuple(r) for r in old_ch.query(
                "SELECT name, rows, modification_time FROM system.parts"
                " WHERE database = {db:String} AND table = 'sessions' AND active ORDER BY name",
                parameters={"db": database}).result_rows]

        parts_before = parts()

        applied = clickhouse_migrations.migrate(old_ch, settings, database)

        assert 4 in applied and [m.version for m in CLICKHOUSE_MIGRATIONS if m.name == "session_metadata"] == [4]
        assert 7 in applied and [m.version for m in CLICKHOUSE_MIGRATIONS if m.name == "session_country"] == [7]
        assert parts() == parts_before, "adding the columns rewrote no part"
        assert {name: value for name, value in ended_row(old_ch, other).items()} == {
            "browser": "", "browser_major": 0, "os": "", "device_type": "", "viewport_width": 0,
            "viewport_height": 0, "entry_url": "", "entry_path": "", "exit_path": "", "page_count": 0,
            "click_count": 0, "error_count": 0, "event_count": 7, "rage_click_count": 0, "dead_click_count": 0,
            "error_click_count": 0, "country": "", "segments": 1, "segment_page_counts": [],
            "segment_click_counts": [],
        }

        # A late batch for the session that ended before the upgrade: it merges into the old row.
        batch = parsed(a_page_visit(T0 + 60_000, f"{SHOP}/late", 390, 844),
                       ClientDevice("Mobile Safari", 18, "iOS", "mobile"))
        activity = SessionActivity("shop", T0 + 60_000, T0 + 60_400, 60_000, 3, 0, batch.client, batch.pages,
                                   batch.click_count)
        await pg_pool.execute(UPSERT_ACTIVE_SESSIONS, *session_parameters({sid: activity}))
        assert await end_everything(settings, pg_pool, old_ch) == 1
        late = ended_row(old_ch, sid)
        assert (late["event_count"], late["error_count"], late["page_count"], late["click_count"]) == (43, 2, 1, 1)
        assert (late["device_type"], late["entry_path"], late["exit_path"], late["viewport_width"]) == (
            "mobile", "/late", "/late", 390)
        assert (late["segments"], late["segment_page_counts"]) == (2, [0, 1])
    finally:
        old_ch.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        old_ch.close()


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_migration_7_adds_an_empty_country_to_sessions_with_metadata_and_a_late_batch_fills_it(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    """A database at migration 6 (sessions with every other metadata column): 7 rewrites no part, old rows read
    country '', and a late batch from an address of a known country fills it (no earlier segment knew one)."""
    database = f"t_six_{uuid.uuid4().hex[:10]}"
    old_ch = create_client(settings.resolved_clickhouse_url, database=database)
    try:
        with monkeypatch.context() as before:
            older = tuple(m for m in CLICKHOUSE_MIGRATIONS if m.version < 7)
            before.setattr(clickhouse_migrations, "MIGRATIONS", older)
            assert clickhouse_migrations.migrate(old_ch, settings, database)[-1] == 6
        sid, seg = uuid.uuid4(), uuid.uuid4()
        old_ch.insert("sessions", [[sid, "shop", T0, T0 + 5_000, 40, 2, [seg], [40], [2], 5, "Chrome", 131, "Windows",
                                    "desktop", "/cart", 1, [1]]],
                      column_names=[*OLD_ENDED_COLUMNS, "browser", "browser_major", "os", "device_type", "entry_path",
                                    "page_count", "segment_page_counts"])

        def parts() -> list[tuple[Any, ...]]:
            return [tuple(r) for r in old_ch.query(
                "SELECT name, rows, modification_time FROM system.parts"
                " WHERE database = {db:String} AND table = 'sessions' AND active ORDER BY name",
                parameters={"db": database}).result_rows]

        parts_before = parts()
        assert [v for v in clickhouse_migrations.migrate(old_ch, settings, database) if v <= 7] == [7]
        assert parts() == parts_before, "adding the country rewrote no part"
        row = ended_row(old_ch, sid)
        assert (row["country"], row["browser"], row["entry_path"], row["event_count"]) == ("", "Chrome", "/cart", 40)

        batch = parsed([bardrr.button_click(T0 + 60_000)], ClientDevice("Mobile Safari", 18, "iOS", "mobile"))
        activity = SessionActivity("shop", T0 + 60_000, T0 + 60_000, 60_000, 1, 0, batch.client, batch.pages,
                                   batch.click_count, "JP")
        await pg_pool.execute(UPSERT_ACTIVE_SESSIONS, *session_parameters({sid: activity}))
        assert await end_everything(settings, pg_pool, old_ch) == 1
        late = ended_row(old_ch, sid)
        assert (late["country"], late["browser"], late["entry_path"], late["event_count"]) == ("JP", "Chrome", "/cart",
                                                                                              41)
    finally:
        old_ch.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        old_ch.close()


# --- one list of details, every layer -------------------------------------------------------------------------

SPAN = {"session_id", "app_name", "started_at", "ended_at", "event_count", "error_count", "segments",
        "segment_event_counts", "segment_error_counts", "version"}


@pytest.mark.clickhouse
@pytest.mark.postgres
async def test_every_layer_names_the_same_session_details(ch: Client, pg_pool: asyncpg.Pool) -> None:
    """The session's details are written out in each layer they cross (PostgreSQL's active row, the ender's two
    structs and its column list, ClickHouse's table, the replayer's row): a detail added to one and forgotten in
    another fails here, not in a user's empty column."""
    table = {name for name, *_ in ch.query("DESCRIBE TABLE sessions").result_rows} - {"duration_ms", "date"}
    details = table - SPAN
    per_segment = {name for name in details if name.startswith("segment_")}
    assert details and per_segment  # the table has both kinds
    assert set(EndedSession.__struct_fields__) == table
    assert set(COLUMNS) == table
    read = set(replayer_sessions.METADATA)
    assert read == details - per_segment
    assert read <= {f.name for f in dataclass_fields(replayer_sessions.Session)}
    assert read <= set(ActiveSegment.__struct_fields__)
    active = {r["column_name"] for r in await pg_pool.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'active_sessions'")}
    assert read <= active, read - active
