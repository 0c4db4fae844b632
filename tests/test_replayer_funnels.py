"""Funnels through both APIs: the lifecycle (create, list, read, update, soft delete -> 404) and results on known
data, agreeing with the funnel engine's plain-Python reference evaluator."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from clickhouse_connect.driver.client import Client

from bard.settings import Settings
from funnels import from_clean, from_dashboard
from funnels.definition import dashboard_filters, filters_from_clean
from funnels.reference import EventRow, SessionRow, evaluate_reference, insert_rows, reference_step_sessions
from funnels.results import top_values
from replayer_api.parameters import iso_ms
from tests.replayer_support import BASE_MS, clickhouse_snapshot, postgres_snapshot

pytestmark = [pytest.mark.postgres, pytest.mark.clickhouse]

DAY = 86_400_000

DASHBOARD_FUNNEL: dict[str, Any] = {
    "funnelName": "Checkout",
    "sessionFilters": [{"filterType": "appName", "textContent": "shop"}],
    "eventSequence": [{"eventType": "click", "textContent": "Add to cart"},
                      {"eventType": "custom", "customEventType": "paid"}],
}
CLEAN_FUNNEL: dict[str, Any] = {
    "name": "Signup",
    "filters": [{"type": "errors", "has_errors": False}],
    "steps": [{"kind": "custom", "label": "signup"}, {"kind": "click", "label": "Continue"}],
    "window_seconds": None,
}


async def test_dashboard_funnel_lifecycle(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/funnels", json=DASHBOARD_FUNNEL)
    assert created.status_code == 201, created.text
    funnel = created.json()
    funnel_id = funnel["id"]
    assert funnel["funnel"] == {**DASHBOARD_FUNNEL}
    assert {k: funnel[k] for k in DASHBOARD_FUNNEL} == DASHBOARD_FUNNEL

    listed = (await api.get("/api/funnels")).json()
    today = dt.datetime.now(dt.UTC).date()
    short_today = f"{today.year}-{today.month}-{today.day}"  # the original's unpadded UTC date
    assert listed == {"funnels": [{"id": funnel_id, "name": "Checkout", "created": short_today,
                                   "lastModified": short_today}], "count": 1}
    assert (await api.get(f"/api/funnel/{funnel_id}")).json()["funnel"] == DASHBOARD_FUNNEL

    changed = {**DASHBOARD_FUNNEL, "funnelName": "Checkout v2", "sessionFilters": [{}]}
    updated = await api.put(f"/api/funnels/{funnel_id}", json=changed)
    assert updated.status_code == 204
    read = (await api.get(f"/api/funnel/{funnel_id}")).json()
    assert read["funnelName"] == "Checkout v2"
    assert read["sessionFilters"] == [{}]  # the original's way of writing "no filter"

    assert (await api.delete(f"/api/funnels/{funnel_id}")).status_code == 200  # as the original answered
    for method, path in (("GET", f"/api/funnel/{funnel_id}"), ("GET", f"/api/funnels/{funnel_id}"),
                         ("PUT", f"/api/funnels/{funnel_id}"), ("DELETE", f"/api/funnels/{funnel_id}")):
        response = await api.request(method, path, json=changed if method == "PUT" else None)
        assert response.status_code == 404, (method, path)
        assert "no funnel" in response.json()["message"]
    assert (await api.get("/api/funnels")).json() == {"funnels": [], "count": 0}


async def test_dashboard_funnel_list_pages_and_sorts(api: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    names = ["Bravo", "alpha", "Charlie", "delta", "Echo", "foxtrot", "Golf"]
    ids = {}
    for name in names:
        ids[name] = (await api.post("/api/funnels", json={**DASHBOARD_FUNNEL, "funnelName": name})).json()["id"]
    # Distinct modification times, in an order unlike both the names and the ids.
    for minutes, name in enumerate(["delta", "Bravo", "Golf", "alpha", "Echo", "Charlie", "foxtrot"]):
        await pg_pool.execute("UPDATE funnels SET updated_at = now() + make_interval(mins => $1) WHERE id = $2",
                              minutes, ids[name])
    await api.delete(f"/api/funnels/{ids['Echo']}")
    live = [n for n in names if n != "Echo"]

    async def listed(**params: str) -> list[str]:
        body = (await api.get("/api/funnels", params=params)).json()
        assert body["count"] == len(live)  # every page tells the whole count; deleted funnels are not in it
        return [f["name"] for f in body["funnels"]]

    # PostgreSQL's collation decides how case sorts; compare with its own order of the live names.
    db_order = [r["name"] for r in await pg_pool.fetch(
        "SELECT name FROM funnels WHERE deleted_at IS NULL ORDER BY name DESC, id DESC")]
    assert sorted(db_order) == sorted(live)
    assert await listed() == db_order[:5]  # defaults: by name, descending, 5 a page
    assert await listed(pageNum="1") == db_order[5:]
    assert await listed(pageNum="2") == []
    assert await listed(sortOrder="ascending", perPage="10") == db_order[::-1]
    assert await listed(sortBy="created", sortOrder="ascending", perPage="3") == live[:3]
    assert await listed(sortBy="created", perPage="3", pageNum="1") == live[::-1][3:6]
    assert await listed(sortBy="lastModified", sortOrder="ascending", perPage="10") == [
        "delta", "Bravo", "Golf", "alpha", "Charlie", "foxtrot"]


async def test_clean_funnel_lifecycle(api: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    created = await api.post("/v1/funnels", json=CLEAN_FUNNEL)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in CLEAN_FUNNEL} == CLEAN_FUNNEL
    assert created.headers["location"] == f"/v1/funnels/{body['id']}"
    assert (await api.get("/v1/funnels")).json()["funnels"] == [body]
    assert (await api.get(f"/v1/funnels/{body['id']}")).json() == body

    changed = {**CLEAN_FUNNEL, "name": "Signup v2", "window_seconds": 600}
    updated = await api.put(f"/v1/funnels/{body['id']}", json=changed)
    assert updated.status_code == 200
    assert updated.json()["name"] == "Signup v2" and updated.json()["window_seconds"] == 600
    assert updated.json()["updated_at"] >= body["updated_at"]
    # Both APIs see the same funnels, each in its own form.
    legacy = (await api.get(f"/api/funnel/{body['id']}")).json()
    assert legacy["funnelName"] == "Signup v2"
    assert legacy["eventSequence"] == [{"eventType": "custom", "customEventType": "signup"},
                                       {"eventType": "click", "textContent": "Continue"}]

    assert (await api.delete(f"/v1/funnels/{body['id']}")).status_code == 204
    assert (await api.get(f"/v1/funnels/{body['id']}")).status_code == 404
    assert (await api.get(f"/v1/funnels/{body['id']}/results")).status_code == 404
    assert (await api.put(f"/v1/funnels/{body['id']}", json=changed)).status_code == 404
    assert (await api.delete(f"/v1/funnels/{body['id']}")).status_code == 404
    assert (await api.get("/v1/funnels")).json() == {"funnels": []}
    # Soft: the row stays, marked.
    assert await pg_pool.fetchval("SELECT deleted_at IS NOT NULL FROM funnels WHERE id = $1", body["id"])


async def test_legacy_results_on_a_hand_checked_data_set(api: httpx.AsyncClient, ch: Client,
                                                          settings: Settings) -> None:
    a, b, c, d, blog = (uuid.UUID(int=i, version=4) for i in (1, 2, 3, 4, 5))
    sessions = [SessionRow(sid, "shop", BASE_MS, BASE_MS + 60_000) for sid in (a, b, c)]
    sessions += [SessionRow(d, "shop", BASE_MS + 3 * DAY, BASE_MS + 3 * DAY + 1),
                 SessionRow(blog, "blog", BASE_MS, BASE_MS + 1)]
    events = [
        EventRow(a, BASE_MS + 10, "click", "Add to cart"), EventRow(a, BASE_MS + 20, "custom", "paid"),
        EventRow(b, BASE_MS + 10, "custom", "paid"), EventRow(b, BASE_MS + 20, "click", "Add to cart"),
        EventRow(d, BASE_MS + 3 * DAY + 1, "click", "Add to cart"),
        EventRow(blog, BASE_MS + 1, "click", "Add to cart"),
    ]
    insert_rows(ch, settings.resolved_clickhouse_database, sessions, events)
    funnel_id = (await api.post("/api/funnels", json=DASHBOARD_FUNNEL)).json()["id"]

    response = await api.get(f"/api/funnels/{funnel_id}", params={"startDate": "2026-01-01",
                                                                 "endDate": "2026-01-02"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["funnel"]["funnelName"] == "Checkout"
    assert body["results"] == {
        "totalFilteredSessions": 3,  # d started outside the range; blog is another app
        "eventSequenceResults": [
            {"numberCompleted": 2, "sessionsCompleted": [str(a), str(b)],
             "numberNotCompleted": 1, "sessionsNotCompleted": [str(c)]},
            {"numberCompleted": 1, "sessionsCompleted": [str(a)],  # b paid before adding to cart
             "numberNotCompleted": 1, "sessionsNotCompleted": [str(b)]},
        ],
    }
    everything = (await api.get(f"/api/funnels/{funnel_id}")).json()["results"]  # default: all until today
    assert everything["totalFilteredSessions"] == 4
    nothing = (await api.get(f"/api/funnels/{funnel_id}", params={"startDate": "2025-01-01",
                                                                  "endDate": "2025-01-02"})).json()["results"]
    assert nothing == {"totalFilteredSessions": 0, "eventSequenceResults": [
        {"numberCompleted": 0, "sessionsCompleted": [], "numberNotCompleted": 0, "sessionsNotCompleted": []}] * 2}


def random_data(seed: int) -> tuple[list[SessionRow], list[EventRow]]:
    rng = random.Random(seed)
    sessions = []
    events = []
    for _ in range(60):
        sid = uuid.UUID(int=rng.getrandbits(128), version=4)
        start = BASE_MS + rng.randrange(0, 5) * DAY + rng.randrange(0, DAY)
        sessions.append(SessionRow(sid, rng.choice(("shop", "blog")), start, start + rng.randrange(0, 600_000),
                                   rng.choice((0, 0, 2))))
        for _ in range(rng.randrange(0, 8)):
            kind, label = rng.choice((("click", "Add to cart"), ("custom", "paid"), ("click", "Back"),
                                      ("custom", "signup")))
            events.append(EventRow(sid, start + rng.randrange(0, 600_000), kind, label))
    return sessions, events


@pytest.mark.parametrize("seed", [1, 2])
async def test_results_agree_with_the_reference_evaluator(api: httpx.AsyncClient, ch: Client, settings: Settings,
                                                          seed: int) -> None:
    sessions, events = random_data(seed)
    insert_rows(ch, settings.resolved_clickhouse_database, sessions, events)
    dashboard = {"funnelName": "Mixed", "sessionFilters": [{"filterType": "length", "minLength": 1_000}],
                 "eventSequence": [{"eventType": "click", "textContent": "Add to cart"},
                                   {"eventType": "custom", "customEventType": "paid"},
                                   {"eventType": "click", "textContent": "Back"}]}
    funnel_id = (await api.post("/api/funnels", json=dashboard)).json()["id"]
    date_range = {"filterType": "date", "startDate": "2026-01-02", "endDate": "2026-01-04"}
    expected = evaluate_reference(from_dashboard(dashboard), sessions, events, dashboard_filters([date_range]))
    assert expected.entered > 0 and expected.steps[1].completed > 0  # the data set exercises every step

    legacy = (await api.get(f"/api/funnels/{funnel_id}", params={"startDate": "2026-01-02",
                                                                 "endDate": "2026-01-04"})).json()["results"]
    assert legacy["totalFilteredSessions"] == expected.entered
    for got, want in zip(legacy["eventSequenceResults"], expected.steps, strict=True):
        assert got == {"numberCompleted": want.completed, "sessionsCompleted": [str(i) for i in want.completed_ids],
                       "numberNotCompleted": want.dropped, "sessionsNotCompleted": [str(i) for i in want.dropped_ids]}

    clean = (await api.get(f"/v1/funnels/{funnel_id}/results", params={"start": "2026-01-02", "end": "2026-01-04",
                                                                       "ids_limit": 3})).json()
    assert clean["entered"] == expected.entered
    for number, (got, want) in enumerate(zip(clean["steps"], expected.steps, strict=True), start=1):
        assert (got["number"], got["completed"], got["dropped"]) == (number, want.completed, want.dropped)
        assert got["median_ms_from_previous"] == want.median_ms_from_previous
        assert got["conversion_from_start"] == pytest.approx(want.conversion_from_start)
        assert got["completed_ids"] == [str(i) for i in want.completed_ids[:3]]
        assert got["dropped_ids"] == [str(i) for i in want.dropped_ids[:3]]
        for outcome, want_ids in (("completed", want.completed_ids), ("dropped", want.dropped_ids)):
            seen: list[str] = []
            reached: list[dict[str, Any]] = []
            after = None
            while True:
                params: dict[str, object] = {"start": "2026-01-02", "end": "2026-01-04", "limit": 4,
                                             **({"after": after} if after else {})}
                page = (await api.get(f"/v1/funnels/{funnel_id}/steps/{number}/{outcome}", params=params)).json()
                seen += page["session_ids"]
                assert [s["session_id"] for s in page["sessions"]] == page["session_ids"]
                reached += page["sessions"]
                after = page["next_after"]
                if after is None:
                    break
            assert seen == [str(i) for i in want_ids], (number, outcome)
            moments = reference_step_sessions(from_dashboard(dashboard), sessions, events, number, outcome,
                                              dashboard_filters([date_range]))
            assert reached == [{"session_id": str(m.session_id), "level": m.level,
                                "reached_at": [iso_ms(t) for t in m.reached_at_ms],
                                "reached_at_ms": m.reached_at_ms} for m in moments], (number, outcome)


async def test_clean_results_with_a_window(api: httpx.AsyncClient, ch: Client, settings: Settings) -> None:
    sessions, events = random_data(3)
    insert_rows(ch, settings.resolved_clickhouse_database, sessions, events)
    document = {"name": "Fast signup", "filters": [{"type": "app_name", "names": ["shop", "blog"]}],
                "steps": [{"kind": "custom", "label": "signup"}, {"kind": "click", "label": "Add to cart"}],
                "window_seconds": 120}
    funnel_id = (await api.post("/v1/funnels", json=document)).json()["id"]
    expected = evaluate_reference(from_clean(document), sessions, events,
                                  filters_from_clean([{"type": "started", "start": None, "end": "2026-01-03"}]))
    body = (await api.get(f"/v1/funnels/{funnel_id}/results", params={"end": "2026-01-03"})).json()
    assert body["entered"] == expected.entered
    assert [(s["completed"], s["dropped"]) for s in body["steps"]] == [(s.completed, s.dropped)
                                                                        for s in expected.steps]
    # A funnel with two apps in one filter, read by the old dashboard: first app shown, all listed aside.
    legacy = (await api.get(f"/api/funnel/{funnel_id}")).json()
    assert legacy["sessionFilters"] == [{"filterType": "appName", "textContent": "shop"}]
    assert legacy["appNamesAnyOf"] == [["shop", "blog"]]


async def test_step_listings_say_when_each_step_was_reached(api: httpx.AsyncClient, ch: Client,
                                                            settings: Settings) -> None:
    """Three steps; a reached all three, b two, c one, d none (no event at all): every listing gives each
    session's level and the moments it reached steps 1..level, so a dropped session opens at its last step."""
    a, b, c, d = (uuid.UUID(int=i, version=4) for i in (1, 2, 3, 4))
    sessions = [SessionRow(sid, "shop", BASE_MS, BASE_MS + 60_000) for sid in (a, b, c, d)]
    events = [
        EventRow(a, BASE_MS + 1_000, "click", "Add to cart"), EventRow(a, BASE_MS + 2_500, "custom", "paid"),
        EventRow(a, BASE_MS + 2_000, "custom", "paid"), EventRow(a, BASE_MS + 9_999, "click", "Back"),
        EventRow(b, BASE_MS + 5, "click", "Add to cart"), EventRow(b, BASE_MS + 6, "custom", "paid"),
        EventRow(b, BASE_MS + 1, "click", "Back"),  # before step 2: does not count
        EventRow(c, BASE_MS + 70, "click", "Add to cart"), EventRow(c, BASE_MS + 70, "custom", "paid"),  # same ms
    ]
    insert_rows(ch, settings.resolved_clickhouse_database, sessions, events)
    document = {"name": "Checkout", "steps": [{"kind": "click", "label": "Add to cart"},
                                              {"kind": "custom", "label": "paid"},
                                              {"kind": "click", "label": "Back"}]}
    funnel_id = (await api.post("/v1/funnels", json=document)).json()["id"]

    def entry(sid: uuid.UUID, *offsets: int) -> dict[str, Any]:
        return {"session_id": str(sid), "level": len(offsets),
                "reached_at": [iso_ms(BASE_MS + o) for o in offsets],
                "reached_at_ms": [BASE_MS + o for o in offsets]}

    listings = {
        (1, "completed"): [entry(a, 1_000, 2_000, 9_999), entry(b, 5, 6), entry(c, 70)],
        (1, "dropped"): [entry(d)],
        (2, "completed"): [entry(a, 1_000, 2_000, 9_999), entry(b, 5, 6)],
        (2, "dropped"): [entry(c, 70)],
        (3, "completed"): [entry(a, 1_000, 2_000, 9_999)],
        (3, "dropped"): [entry(b, 5, 6)],
    }
    for (step, outcome), expected in listings.items():
        body = (await api.get(f"/v1/funnels/{funnel_id}/steps/{step}/{outcome}")).json()
        assert body == {"session_ids": [e["session_id"] for e in expected], "next_after": None,
                        "sessions": expected}, (step, outcome)
    assert entry(a, 1_000)["reached_at"] == ["2026-01-01T00:00:01.000Z"]
    # A full page says where the next starts; the next page carries on with the moments.
    first = (await api.get(f"/v1/funnels/{funnel_id}/steps/1/completed", params={"limit": 2})).json()
    assert first["next_after"] == str(b) and first["sessions"] == listings[(1, "completed")][:2]
    rest = (await api.get(f"/v1/funnels/{funnel_id}/steps/1/completed",
                          params={"limit": 2, "after": first["next_after"]})).json()
    assert rest == {"session_ids": [str(c)], "next_after": None, "sessions": [entry(c, 70)]}


BAD_STEP_REQUESTS = [
    # (id, path ({funnel}: the funnel's id), query, status, the parameter the error names)
    ("step-zero", "{funnel}/steps/0/completed", None, 400, "step"),
    ("step-past-the-end", "{funnel}/steps/4/dropped", None, 400, "step"),
    ("step-text", "{funnel}/steps/two/completed", None, 400, "step"),
    ("step-negative", "{funnel}/steps/-1/completed", None, 400, "step"),
    ("step-overflow", "{funnel}/steps/99999999999999999999/completed", None, 400, "step"),
    ("outcome", "{funnel}/steps/1/lost", None, 400, "outcome"),
    ("after-not-a-uuid", "{funnel}/steps/1/dropped", {"after": "x"}, 400, "after"),
    ("limit-zero", "{funnel}/steps/1/completed", {"limit": "0"}, 400, "limit"),
    ("limit-huge", "{funnel}/steps/1/completed", {"limit": "501"}, 400, "limit"),
    ("limit-text", "{funnel}/steps/1/completed", {"limit": "ten"}, 400, "limit"),
    ("start", "{funnel}/steps/1/completed", {"start": "2026-02-30"}, 400, "start"),
    ("end", "{funnel}/steps/1/completed", {"end": "tomorrow"}, 400, "end"),
    ("start-after-end", "{funnel}/steps/1/completed", {"start": "2026-02-03", "end": "2026-02-01"}, 400, "start"),
    ("unknown-parameter", "{funnel}/steps/1/completed", {"offset": "3"}, 400, "offset"),
    ("breakdown-on-a-funnel-without", "{funnel}/steps/1/completed", {"breakdown_value": "Chrome"}, 400,
     "breakdown_value"),
    ("breakdown-other-without", "{funnel}/steps/1/completed", {"breakdown_other": "true"}, 400, "breakdown_other"),
    ("funnel-id-text", "abc/steps/1/completed", None, 400, "funnel_id"),
    ("unknown-funnel", "999/steps/1/completed", None, 404, ""),
]


@pytest.mark.parametrize(("path", "query", "status", "parameter"), [row[1:] for row in BAD_STEP_REQUESTS],
                         ids=[row[0] for row in BAD_STEP_REQUESTS])
async def test_bad_step_listing_requests_are_refused_by_name(api: httpx.AsyncClient, ch: Client,
                                                             pg_pool: asyncpg.Pool, path: str,
                                                             query: dict[str, str] | None, status: int,
                                                             parameter: str) -> None:
    document = {"name": "Three", "steps": [{"kind": "click", "label": "a"}, {"kind": "click", "label": "b"},
                                           {"kind": "custom", "label": "c"}]}
    funnel_id = (await api.post("/v1/funnels", json=document)).json()["id"]
    before = (await postgres_snapshot(pg_pool), await clickhouse_snapshot(ch))
    response = await api.get("/v1/funnels/" + path.format(funnel=funnel_id), params=query)
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    if parameter:
        assert body["field"] == parameter and body["message"].startswith(f"{parameter}: ")
    assert (await postgres_snapshot(pg_pool), await clickhouse_snapshot(ch)) == before


async def test_modes_exclusions_and_breakdowns_through_v1(api: httpx.AsyncClient, ch: Client,
                                                          settings: Settings) -> None:
    """A funnel with an order, an exclusion and a breakdown is stored and read back as sent, its results are the
    reference's (counts, times, histograms, trend, breakdown rows), and each breakdown row lists its sessions."""
    rng = random.Random(8)
    browsers = ["Chrome", "Chrome", "Firefox", "Safari", ""]
    sessions = [SessionRow(uuid.UUID(int=rng.getrandbits(128), version=4), "shop", BASE_MS + (i % 3) * DAY,
                           BASE_MS + (i % 3) * DAY + 60_000, browser=browsers[i % 5]) for i in range(40)]
    kinds = [("click", "Add to cart"), ("custom", "paid"), ("custom", "cancel"), ("click", "Back")]
    events = [EventRow(s.session_id, s.started_at_ms + rng.randrange(20) * 500, *rng.choice(kinds))
              for s in sessions for _ in range(6)]
    insert_rows(ch, settings.resolved_clickhouse_database, sessions, events)
    document = {"name": "Why",
                "steps": [{"kind": "click", "label": "Add to cart"}, {"kind": "custom", "label": "paid"}],
                "order": "strict", "window_seconds": 5,
                "exclusions": [{"kind": "custom", "label": "cancel", "from_step": 1, "to_step": 2}],
                "breakdown": {"property": "browser", "limit": 2}}
    created = await api.post("/v1/funnels", json=document)
    assert created.status_code == 201, created.text
    funnel = created.json()
    assert {k: funnel[k] for k in document} == document
    expected = evaluate_reference(from_clean(document), sessions, events)
    body = (await api.get(f"/v1/funnels/{funnel['id']}/results", params={"ids_limit": 0})).json()
    assert (body["entered"], body["excluded"]) == (expected.entered, expected.excluded)
    assert expected.excluded > 0 and expected.steps[1].completed > 0
    for got, want in zip(body["steps"], expected.steps, strict=True):
        assert (got["completed"], got["median_ms_from_start"], got["p90_ms_from_previous"]) == (
            want.completed, want.median_ms_from_start, want.p90_ms_from_previous)
        histogram = want.time_to_convert
        assert got["time_to_convert"] == (None if histogram is None else {
            "lower_ms": histogram.lower_ms, "bin_ms": histogram.bin_ms, "counts": histogram.counts})
    assert body["trend"] == {"period": "day", "points": [
        {"start": p.start.isoformat(), "entered": p.entered, "completed": p.completed} for p in expected.trend]}
    assert expected.breakdown is not None
    assert body["breakdown"] == [{"value": r.value, "other": r.value is None, "entered": r.entered,
                                  "completed": r.completed} for r in expected.breakdown]
    assert body["breakdown"][-1]["other"] is True
    for params, value, other in (({"breakdown_value": "Chrome"}, "Chrome", None),
                                 ({"breakdown_other": "true"}, None, top_values(expected.breakdown))):
        listed = (await api.get(f"/v1/funnels/{funnel['id']}/steps/2/dropped", params=params)).json()
        want = reference_step_sessions(from_clean(document), sessions, events, 2, "dropped",
                                       breakdown_value=value, breakdown_other=other)
        assert listed["session_ids"] == [str(r.session_id) for r in want] and want
    legacy = (await api.get(f"/api/funnel/{funnel['id']}")).json()
    assert legacy["onlyInV1"] == {k: document[k] for k in ("order", "exclusions", "breakdown")}
    bad = await api.post("/v1/funnels", json={**document, "exclusions": [{**document["exclusions"][0], "to_step": 3}]})
    assert bad.status_code == 400 and bad.json()["field"] == "exclusions[0].to_step"
