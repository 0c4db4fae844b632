"""``GET /v1/sessions/{id}/markers``: a session's clicks, custom events and console errors in time order, without
its replay; for a session the real agent's batches made (still active: only its events have reached ClickHouse)
and for ended sessions, on real PostgreSQL, RabbitMQ and chDB."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from clickhouse_connect.driver.client import Client

from bard.settings import Settings
from clickhouse.consumer import Consumer
from replayer_api import markers
from replayer_api.parameters import iso_ms
from tests import bardrr_events as bardrr
from tests.ingest_support import eventually
from tests.replayer_support import (
    BASE_MS,
    EndedSession,
    at,
    clickhouse_snapshot,
    insert_active,
    insert_events,
    insert_sessions,
)
from tests.test_ingest_e2e import agent_api, record

pytestmark = [pytest.mark.postgres, pytest.mark.clickhouse]


def marker(kind: str, at_ms: int, first_ms: int, label: str | None = None, x: int | None = None,
           y: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "at": iso_ms(at_ms), "at_ms": at_ms, "offset_ms": at_ms - first_ms, "label": label,
            "x": x, "y": y}


async def markers_of(api: httpx.AsyncClient, session_id: object) -> dict[str, Any]:
    response = await api.get(f"/v1/sessions/{session_id}/markers")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.rabbitmq
async def test_markers_of_an_active_session_the_agent_recorded(settings: Settings, api: httpx.AsyncClient,
                                                               ch: Client, amqp: Any) -> None:
    """The agent's batches through the agent API and the consumer: the session is still active (no row in
    ``sessions``), its events are in ClickHouse, and its markers are there: the button click the agent marked,
    the link click Bard named from the page, the custom event and the console error; moves and scrolls are not."""
    session = str(uuid.uuid4())
    start = BASE_MS + 7
    first = bardrr.first_batch(start)
    second = [bardrr.mouse_move(start + 3_000), bardrr.console_error(start + 3_100, 'Payment "failed"'),
              bardrr.console_error(start + 3_200, "only a warning", level="warn"),
              bardrr.link_click(start + 3_300, node_id=999_999)]  # a node no page has: untagged
    async with agent_api(settings) as agent, Consumer(settings, ch, amqp) as consumer:
        for batch in (first, second):
            answer = await record(agent, batch, session)
            assert answer.is_success, answer.text
        await eventually(lambda: consumer.stats.messages_acked == 2, "both batches acknowledged")
    assert (await api.get(f"/v1/sessions/{session}")).json()["status"] == "active"

    body = await markers_of(api, session)
    assert body == {
        "session_id": session,
        "first_event_at": iso_ms(start),
        "markers": [
            marker("click", start + 400, start, bardrr.BUTTON_LABEL, 812, 34),
            marker("click", start + 1500, start, bardrr.LINK_LABEL, 700, 34),
            marker("custom", start + 1600, start, bardrr.CUSTOM_TAG),
            marker("error", start + 1700, start, bardrr.ERROR_MESSAGE),
            marker("error", start + 3_100, start, 'Payment "failed"'),
            marker("click", start + 3_300, start, None, 700, 34),
        ],
        "truncated": False,
    }
    assert body["markers"][0]["at"] == "2026-01-01T00:00:00.407Z"


def click(ts: int, x: object = 10, y: object = 20, kind: int = 2) -> dict[str, Any]:
    return {"type": 3, "timestamp": ts, "data": {"source": 2, "type": kind, "id": 5, "x": x, "y": y}}


def custom(ts: int, tag: str) -> dict[str, Any]:
    return {"type": 5, "timestamp": ts, "data": {"tag": tag, "payload": None}}


def console(ts: int, arguments: list[str], level: str = "error", plugin: str = "rrweb/console@1") -> dict[str, Any]:
    return {"type": 6, "timestamp": ts, "data": {"plugin": plugin, "payload": {"level": level, "trace": [],
                                                                                 "payload": arguments}}}


def insert_tagged_clicks(ch: Client, session_id: uuid.UUID, batch_id: uuid.UUID,
                         labels: dict[int, tuple[int, str]]) -> None:
    """``conversion_events`` rows for the clicks at ``seq`` -> ``(ts, label)`` of one batch, as ingest leaves them."""
    ch.insert("conversion_events",
              [[session_id, "shop", at(ts), "click", label, batch_id, seq] for seq, (ts, label) in labels.items()],
              column_names=["session_id", "app_name", "ts", "kind", "label", "batch_id", "seq"])


async def test_markers_of_an_ended_session(api: httpx.AsyncClient, ch: Client) -> None:
    sid = uuid.uuid4()
    insert_sessions(ch, [EndedSession(sid, "shop", BASE_MS, 60_000, 2)])
    long_message = "é" * 600
    batch = uuid.uuid4()
    events = [
        {"type": 4, "timestamp": BASE_MS - 5, "data": {"href": "https://x.test/", "width": 1, "height": 1}},
        click(BASE_MS + 100, 812, 34),  # tagged below
        click(BASE_MS + 200, 13.7, 40.2),  # untagged; fractional pixels as some browsers give
        click(BASE_MS + 250, kind=4),  # a double click: not a click marker
        {"type": 3, "timestamp": BASE_MS + 260, "data": {"source": 1, "positions": []}},
        custom(BASE_MS + 300, "x'); DROP TABLE sessions; --"),
        console(BASE_MS + 400, ['"Payment failed"', '{"code":42}', "7", '"line\\nbreak"']),
        console(BASE_MS + 500, ['"careful"'], level="warn"),
        console(BASE_MS + 600, ['"not the console"'], plugin="rrweb/sequential-id@1"),
        console(BASE_MS + 700, [json.dumps(long_message)]),
        custom(BASE_MS + 700, "same-moment"),  # a tie in time: by batch and place in batch
        console(BASE_MS + 800, []),
    ]
    insert_events(ch, sid, "shop", events, batch_id=batch)
    insert_events(ch, sid, "shop", events, batch_id=batch)  # a redelivered copy of the batch
    insert_tagged_clicks(ch, sid, batch, {1: (BASE_MS + 100, "Pay now")})
    insert_tagged_clicks(ch, sid, batch, {1: (BASE_MS + 100, "Pay now")})  # its copy
    insert_events(ch, uuid.uuid4(), "shop", [click(BASE_MS + 150), custom(BASE_MS + 150, "other")])

    first = BASE_MS - 5
    assert await markers_of(api, sid) == {
        "session_id": str(sid),
        "first_event_at": iso_ms(first),
        "markers": [
            marker("click", BASE_MS + 100, first, "Pay now", 812, 34),
            marker("click", BASE_MS + 200, first, None, 13, 40),
            marker("custom", BASE_MS + 300, first, "x'); DROP TABLE sessions; --"),
            marker("error", BASE_MS + 400, first, 'Payment failed {"code":42} 7 line\nbreak'),
            marker("error", BASE_MS + 700, first, "é" * 500),
            marker("custom", BASE_MS + 700, first, "same-moment"),
            marker("error", BASE_MS + 800, first, ""),
        ],
        "truncated": False,
    }
    assert int(ch.query("SELECT count() FROM sessions").result_rows[0][0]) == 1


async def test_many_markers_are_truncated(api: httpx.AsyncClient, ch: Client, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setattr(markers, "MAX_MARKERS", 5)
    sid = uuid.uuid4()
    insert_events(ch, sid, "shop", [custom(BASE_MS + i, f"tag {i}") for i in range(7)])
    body = await markers_of(api, sid)
    assert [m["label"] for m in body["markers"]] == [f"tag {i}" for i in range(5)]
    assert body["truncated"] is True
    insert_events(ch, sid := uuid.uuid4(), "shop", [custom(BASE_MS + i, f"tag {i}") for i in range(5)])
    assert (await markers_of(api, sid))["truncated"] is False


async def test_sessions_without_events_and_no_session(api: httpx.AsyncClient, ch: Client,
                                                      pg_pool: asyncpg.Pool) -> None:
    ended, active, orphan = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    insert_sessions(ch, [EndedSession(ended, "shop", BASE_MS, 0, 0)])
    await insert_active(pg_pool, active, "shop", BASE_MS, BASE_MS)
    for known in (ended, active):
        assert await markers_of(api, known) == {"session_id": str(known), "first_event_at": None, "markers": [],
                                                "truncated": False}
    # Events without a session row anywhere (the session is being moved): its events still answer.
    insert_events(ch, orphan, "shop", [{"type": 4, "timestamp": BASE_MS, "data": {}}])
    assert await markers_of(api, orphan) == {"session_id": str(orphan), "first_event_at": iso_ms(BASE_MS),
                                             "markers": [], "truncated": False}
    missing = await api.get(f"/v1/sessions/{uuid.uuid4()}/markers")
    assert missing.status_code == 404 and "no session" in missing.json()["message"]


BAD_MARKER_REQUESTS = [
    # (id, session id in the path, query, status, the parameter the error names)
    ("id-text", "not-a-uuid", None, 400, "session_id"),
    ("id-number", "123", None, 400, "session_id"),
    ("id-too-long", str(uuid.UUID(int=1)) + "0", None, 400, "session_id"),
    ("id-injection", "x'); DROP TABLE events; --", None, 400, "session_id"),
    ("unknown-parameter", str(uuid.UUID(int=1)), {"limit": "5"}, 400, "limit"),
    ("unknown-session", str(uuid.UUID(int=2)), None, 404, ""),
]


@pytest.mark.parametrize(("session_id", "query", "status", "parameter"), [row[1:] for row in BAD_MARKER_REQUESTS],
                         ids=[row[0] for row in BAD_MARKER_REQUESTS])
async def test_bad_marker_requests_are_refused_by_name(api: httpx.AsyncClient, ch: Client, session_id: str,
                                                       query: dict[str, str] | None, status: int,
                                                       parameter: str) -> None:
    insert_events(ch, uuid.UUID(int=1), "shop", [custom(BASE_MS, "a")])
    before = await clickhouse_snapshot(ch)
    response = await api.get(f"/v1/sessions/{session_id}/markers", params=query)
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    if parameter:
        assert body["field"] == parameter and body["message"].startswith(f"{parameter}: ")
    assert await clickhouse_snapshot(ch) == before
