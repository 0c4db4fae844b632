"""Sessions worth searching, as the dashboard and ``/v1`` read them: the metadata columns in the listing and the
session, their filters and sorts (tables over a seeded data set, each checked against a plain-Python reference),
the autocomplete options, old sessions without metadata, and bad filter values; against real chDB and PostgreSQL.

How the metadata is captured and merged is tested in test_session_metadata.py; the signals in test_signals.py."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from tests.replayer_support import BASE_MS, EndedSession, at, insert_sessions

pytestmark = [pytest.mark.postgres, pytest.mark.clickhouse]

BROWSERS = (("Chrome", 120), ("Firefox", 121), ("Safari", 17), ("Edge", 119))
OSES = ("Windows", "Mac OS X", "iOS", "Android", "Linux")
DEVICES = ("desktop", "mobile", "tablet", "bot")
PATHS = ("/", "/checkout", "/checkout/pay", "/blog/post-1", "/admin")
COUNTRIES = ("DE", "US", "JP", "BR", "")  # "": an address of no known country (private, loopback...)


@dataclass(frozen=True)
class Described:
    """An ended session with every metadata column, as the session ender leaves it."""

    session_id: uuid.UUID
    app_name: str
    started_ms: int
    duration_ms: int
    browser: str
    browser_major: int
    os: str
    device_type: str
    entry_path: str
    exit_path: str
    pages: int
    clicks: int
    rage: int
    dead: int
    error_clicks: int
    errors: int = 0
    width: int = 1280
    height: int = 800
    country: str = ""


def described_sessions(count: int = 40, seed: int = 12) -> list[Described]:
    rng = random.Random(seed)
    countries = random.Random(seed + 1)  # apart, so the other columns stay as they were seeded before countries
    found = []
    for i in range(count):
        browser, major = rng.choice(BROWSERS)
        found.append(Described(
            session_id=uuid.UUID(int=rng.getrandbits(128), version=4), app_name=("shop", "blog")[i % 2],
            started_ms=BASE_MS + i * 60_000, duration_ms=rng.choice((1_000, 5_000, 60_000)), browser=browser,
            browser_major=major, os=rng.choice(OSES), device_type=rng.choice(DEVICES),
            entry_path=rng.choice(PATHS), exit_path=rng.choice(PATHS), pages=rng.choice((1, 1, 2, 3, 7)),
            clicks=rng.choice((0, 2, 2, 9)), rage=rng.choice((0, 0, 0, 1, 2)), dead=rng.choice((0, 0, 1)),
            error_clicks=rng.choice((0, 0, 0, 1)), errors=rng.choice((0, 1)),
            width=rng.choice((390, 1280, 1920)), height=rng.choice((844, 800, 1080)),
            country=countries.choice(COUNTRIES)))
    return found


def insert_described(ch: Client, rows: list[Described]) -> None:
    ch.insert(
        "sessions",
        [[s.session_id, s.app_name, at(s.started_ms), at(s.started_ms + s.duration_ms), 10, s.errors,
          [uuid.uuid4()], [10], [s.errors], 1, s.browser, s.browser_major, s.os, s.device_type, s.width, s.height,
          f"https://shop.example.com{s.entry_path}?q=1", s.entry_path, s.exit_path, s.pages, s.clicks, s.rage,
          s.dead, s.error_clicks, [s.pages], [s.clicks], [s.rage], [s.dead], [s.error_clicks], s.country]
         for s in rows],
        column_names=["session_id", "app_name", "started_at", "ended_at", "event_count", "error_count",
                      "segments", "segment_event_counts", "segment_error_counts", "version", "browser",
                      "browser_major", "os", "device_type", "viewport_width", "viewport_height", "entry_url",
                      "entry_path", "exit_path", "page_count", "click_count", "rage_click_count",
                      "dead_click_count", "error_click_count", "segment_page_counts", "segment_click_counts",
                      "segment_rage_click_counts", "segment_dead_click_counts", "segment_error_click_counts",
                      "country"],
    )


async def listed_ids(api: httpx.AsyncClient, params: dict[str, Any]) -> list[str]:
    """Every session the list gives for ``params``, following cursors (pages of 7)."""
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": 7, **({"cursor": cursor} if cursor else {})}
        response = await api.get("/v1/sessions", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [s["session_id"] for s in body["sessions"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


# (id, query parameters, the reference: which sessions match)
FILTERS: list[tuple[str, dict[str, Any], Callable[[Described], bool]]] = [
    ("browser", {"browser": "Chrome"}, lambda s: s.browser == "Chrome"),
    ("browsers", {"browser": ["Chrome", "Safari"]}, lambda s: s.browser in ("Chrome", "Safari")),
    ("os", {"os": "iOS"}, lambda s: s.os == "iOS"),
    ("os-with-space", {"os": "Mac OS X"}, lambda s: s.os == "Mac OS X"),
    ("device", {"device_type": "mobile"}, lambda s: s.device_type == "mobile"),
    ("devices", {"device_type": ["tablet", "bot"]}, lambda s: s.device_type in ("tablet", "bot")),
    ("country", {"country": "DE"}, lambda s: s.country == "DE"),
    ("countries", {"country": ["JP", "BR"]}, lambda s: s.country in ("JP", "BR")),
    ("country-and-device", {"country": "US", "device_type": "desktop"},
     lambda s: s.country == "US" and s.device_type == "desktop"),
    ("entry-prefix", {"entry_path": "/checkout"}, lambda s: s.entry_path.startswith("/checkout")),
    ("entry-exact-root", {"entry_path": "/"}, lambda s: s.entry_path.startswith("/")),
    ("min-pages", {"min_pages": "3"}, lambda s: s.pages >= 3),
    ("pages-range", {"min_pages": "2", "max_pages": "3"}, lambda s: 2 <= s.pages <= 3),
    ("rage", {"has_rage_clicks": "true"}, lambda s: s.rage > 0),
    ("no-rage", {"has_rage_clicks": "false"}, lambda s: s.rage == 0),
    ("dead", {"has_dead_clicks": "true"}, lambda s: s.dead > 0),
    ("error-clicks", {"has_error_clicks": "true"}, lambda s: s.error_clicks > 0),
    ("combined", {"browser": "Chrome", "device_type": "desktop", "has_rage_clicks": "false", "min_pages": "1",
                  "app": "shop"},
     lambda s: s.browser == "Chrome" and s.device_type == "desktop" and s.rage == 0 and s.app_name == "shop"),
]

# (sort name, the reference key)
SORTS: dict[str, Callable[[Described], Any]] = {"pages": lambda s: s.pages, "clicks": lambda s: s.clicks}


@pytest.mark.parametrize(("query", "keep"), [row[1:] for row in FILTERS], ids=[row[0] for row in FILTERS])
async def test_filters_match_the_reference(strategy: str, api: httpx.AsyncClient, ch: Client,
                                           query: dict[str, Any], keep: Callable[[Described], bool]) -> None:
    rows = described_sessions()
    insert_described(ch, rows)
    expected = sorted((s for s in rows if keep(s)), key=lambda s: (s.started_ms, str(s.session_id)), reverse=True)
    assert expected, "the seeded data must give this filter something to find"
    assert len(expected) < len(rows) or query == {"entry_path": "/"}
    assert await listed_ids(api, query) == [str(s.session_id) for s in expected]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", list(SORTS))
async def test_new_sorts_page_in_order(api: httpx.AsyncClient, ch: Client, sort: str, order: str) -> None:
    rows = described_sessions()
    insert_described(ch, rows)
    key = SORTS[sort]
    expected = sorted(rows, key=lambda s: (key(s), s.session_id.int & (2**64 - 1), s.session_id.int >> 64),
                      reverse=order == "desc")
    assert await listed_ids(api, {"sort": sort, "order": order}) == [str(s.session_id) for s in expected]


async def test_the_listing_and_the_session_carry_the_metadata(api: httpx.AsyncClient, ch: Client) -> None:
    [one] = described_sessions(1)
    insert_described(ch, [one])
    listed = (await api.get("/v1/sessions")).json()["sessions"]
    alone = (await api.get(f"/v1/sessions/{one.session_id}")).json()
    expected = {
        "browser": one.browser, "browser_major": one.browser_major, "os": one.os, "device_type": one.device_type,
        "viewport": {"width": one.width, "height": one.height},
        "entry_url": f"https://shop.example.com{one.entry_path}?q=1", "entry_path": one.entry_path,
        "exit_path": one.exit_path, "page_count": one.pages, "click_count": one.clicks,
        "rage_click_count": one.rage, "dead_click_count": one.dead, "error_click_count": one.error_clicks,
        "country": one.country,
    }
    assert one.country, "the first seeded session has a country"
    assert {k: listed[0][k] for k in expected} == expected
    assert {k: alone[k] for k in expected} == expected and alone["status"] == "ended"


async def test_sessions_from_before_the_metadata_read_empty_and_match_no_value(api: httpx.AsyncClient,
                                                                               ch: Client) -> None:
    old = EndedSession(uuid.uuid4(), "shop", BASE_MS, 1_000, 0)
    insert_sessions(ch, [old])  # the columns of the sessions table before migration 4 only
    [listed] = (await api.get("/v1/sessions")).json()["sessions"]
    assert (listed["browser"], listed["os"], listed["device_type"], listed["entry_path"], listed["page_count"],
            listed["rage_click_count"], listed["country"]) == ("", "", "", "", 0, 0, "")
    assert await listed_ids(api, {"browser": "Chrome"}) == []
    assert await listed_ids(api, {"country": "US"}) == []
    assert await listed_ids(api, {"has_rage_clicks": "false"}) == [str(old.session_id)]
    assert await listed_ids(api, {"min_pages": "0"}) == [str(old.session_id)]


async def test_options_list_the_values_most_common_first(api: httpx.AsyncClient, ch: Client) -> None:
    rows = described_sessions()
    insert_described(ch, rows)
    insert_sessions(ch, [EndedSession(uuid.uuid4(), "shop", BASE_MS, 1_000, 0)])  # empty values are not offered
    for prop, value_of in (("browser", lambda s: s.browser), ("os", lambda s: s.os),
                           ("device_type", lambda s: s.device_type), ("entry_path", lambda s: s.entry_path),
                           ("country", lambda s: s.country)):
        counts: dict[str, int] = {}
        for s in rows:
            if value_of(s):  # '' (no country known) is no value to offer
                counts[value_of(s)] = counts.get(value_of(s), 0) + 1
        expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        body = (await api.get(f"/v1/options/{prop}")).json()
        assert body == {"property": prop, "values": [{"value": v, "sessions": n} for v, n in expected]}
    checkout = (await api.get("/v1/options/entry_path", params={"prefix": "/checkout"})).json()["values"]
    counts = {p: sum(s.entry_path == p for s in rows) for p in ("/checkout", "/checkout/pay")}
    assert checkout == [{"value": v, "sessions": n} for v, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]
    first = (await api.get("/v1/options/entry_path", params={"prefix": "/checkout", "limit": 1})).json()["values"]
    assert first == checkout[:1]
    apps = (await api.get("/v1/options/app")).json()["values"]
    assert {a["value"] for a in apps} == {"shop", "blog"}


async def test_a_stored_funnel_filters_on_metadata_like_the_list(api: httpx.AsyncClient, ch: Client) -> None:
    rows = described_sessions()
    insert_described(ch, rows)
    one = rows[0]
    funnel = {"name": "like the first", "steps": [{"kind": "click", "label": "Buy"}],
              "filters": [{"type": "browser", "names": [one.browser]},
                          {"type": "device_type", "types": [one.device_type]},
                          {"type": "country", "codes": [one.country]},
                          {"type": "signal", "signal": "rage_click", "present": one.rage > 0}]}
    created = await api.post("/v1/funnels", json=funnel)
    assert created.status_code == 201, created.text
    results = (await api.get(f"/v1/funnels/{created.json()['id']}/results")).json()
    listed = await listed_ids(api, {"browser": one.browser, "device_type": one.device_type, "country": one.country,
                                    "has_rage_clicks": str(one.rage > 0).lower()})
    like = (one.browser, one.device_type, one.country, one.rage > 0)
    expected = [s for s in rows if (s.browser, s.device_type, s.country, s.rage > 0) == like]
    assert (await api.get(f"/v1/funnels/{created.json()['id']}")).json()["filters"][2] == {
        "type": "country", "codes": [one.country]}
    assert results["entered"] == len(listed) == len(expected) > 0


# (id, query, the parameter the 400 names)
BAD_FILTERS = [
    ("device-unknown", {"device_type": "phone"}, "device_type"),
    ("browser-empty", {"browser": ""}, "browser"),
    ("os-too-long", {"os": "x" * 16_385}, "os"),
    ("entry-path-too-long", {"entry_path": "/" * 2_049}, "entry_path"),
    ("min-pages-negative", {"min_pages": "-1"}, "min_pages"),
    ("min-pages-text", {"min_pages": "many"}, "min_pages"),
    ("pages-inverted", {"min_pages": "5", "max_pages": "2"}, "min_pages"),
    ("rage-maybe", {"has_rage_clicks": "maybe"}, "has_rage_clicks"),
    ("dead-maybe", {"has_dead_clicks": "2"}, "has_dead_clicks"),
    ("sort-unknown", {"sort": "browser"}, "sort"),
    ("country-lowercase", {"country": "de"}, "country"),
    ("country-alpha-3", {"country": "DEU"}, "country"),
    ("country-empty", {"country": ""}, "country"),
    ("country-digit", {"country": "D1"}, "country"),
    ("country-name", {"country": "Germany"}, "country"),
    ("country-second-bad", {"country": ["DE", "xx"]}, "country"),
    ("country-non-ascii", {"country": "ÄÖ"}, "country"),
]


@pytest.mark.parametrize(("query", "parameter"), [row[1:] for row in BAD_FILTERS], ids=[r[0] for r in BAD_FILTERS])
async def test_bad_filter_values_are_400_naming_the_parameter(api: httpx.AsyncClient, ch: Client,
                                                             query: dict[str, str], parameter: str) -> None:
    response = await api.get("/v1/sessions", params=query)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request" and body["field"] == parameter
    assert body["message"].startswith(f"{parameter}: ")


BAD_OPTIONS = [
    ("unknown-property", "/v1/options/city", {}, "property"),
    ("limit-zero", "/v1/options/browser", {"limit": "0"}, "limit"),
    ("limit-huge", "/v1/options/browser", {"limit": "100000"}, "limit"),
    ("unknown-parameter", "/v1/options/browser", {"q": "x"}, "q"),
]


@pytest.mark.parametrize(("path", "query", "parameter"), [row[1:] for row in BAD_OPTIONS],
                         ids=[r[0] for r in BAD_OPTIONS])
async def test_bad_options_requests(api: httpx.AsyncClient, ch: Client, path: str, query: dict[str, str],
                                    parameter: str) -> None:
    response = await api.get(path, params=query)
    assert response.status_code == 400 and response.json()["field"] == parameter, response.text


# (id, a stored funnel's filters, the field the 400 names)
BAD_FUNNEL_FILTERS = [
    ("lowercase", [{"type": "country", "codes": ["de"]}], "filters[0].codes[0]"),
    ("none", [{"type": "country", "codes": []}], "filters[0].codes"),
    ("not-a-list", [{"type": "country", "codes": "DE"}], "filters[0].codes"),
    ("unknown-field", [{"type": "country", "names": ["DE"]}], "filters[0]"),
]


@pytest.mark.parametrize(("filters", "field"), [row[1:] for row in BAD_FUNNEL_FILTERS],
                         ids=[r[0] for r in BAD_FUNNEL_FILTERS])
async def test_a_stored_funnel_with_a_bad_country_filter_is_400_naming_the_field(
        api: httpx.AsyncClient, ch: Client, filters: list[dict[str, Any]], field: str) -> None:
    funnel = {"name": "bad", "steps": [{"kind": "click", "label": "Buy"}], "filters": filters}
    response = await api.post("/v1/funnels", json=funnel)
    assert response.status_code == 400, response.text
    assert response.json()["field"].startswith(field), response.json()


def insert_conversion_labels(ch: Client, rows: list[tuple[str, str]]) -> None:
    session = uuid.uuid4()
    ch.insert("conversion_events",
              [[session, "shop", at(BASE_MS + i), uuid.uuid4(), 0, kind, label]
               for i, (kind, label) in enumerate(rows)],
              column_names=["session_id", "app_name", "ts", "batch_id", "seq", "kind", "label"])


async def test_conversion_label_options_never_offer_an_empty_label(api: httpx.AsyncClient, ch: Client) -> None:
    # A signal on an element Bard does not name is labelled '': no funnel step can name it, so it is not offered.
    insert_conversion_labels(ch, [("rage_click", ""), ("rage_click", "Pay"), ("dead_click", ""),
                                  ("error_click", ""), ("error_click", "Retry"), ("click", "Pay"), ("custom", "")])
    for kind, labels in (("rage_click", ["Pay"]), ("dead_click", []), ("error_click", ["Retry"]), ("click", ["Pay"]),
                         ("custom", [])):
        v1 = (await api.get("/v1/conversion-labels", params={"kind": kind})).json()
        assert v1 == {"kind": kind, "labels": labels}
    # /api/options/funnel takes the original dashboard's two kinds.
    assert (await api.get("/api/options/funnel", params={"eventType": "custom"})).json() == []
    assert (await api.get("/api/options/funnel", params={"eventType": "click"})).json() == ["Pay"]
