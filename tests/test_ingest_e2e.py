"""Ingest end to end, in process: the agent API (its real lifespan, pool and publisher) and the embedded
consumer on real PostgreSQL, RabbitMQ and chDB. bardrr-shaped batches go in through ``/authenticate`` and
``/record``; rows come out of ``events`` and ``conversion_events`` and the session out of ``active_sessions``."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from clickhouse_connect.driver.client import Client
from starlette.types import Receive, Scope, Send

from agent_api.app import create_app
from bard.settings import Settings
from clickhouse.consumer import Consumer
from tests import bardrr_events as bardrr
from tests.ingest_support import eventually, messages_ready

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.clickhouse]


@contextlib.asynccontextmanager
async def agent_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The agent API with its real lifespan; requests through httpx's ASGI transport carry its state."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=("198.51.100.4", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://agent-api") as client:
            yield client


@pytest.fixture
async def ingest(settings: Settings, pg_pool: asyncpg.Pool, ch: Client, amqp) -> AsyncIterator[
        tuple[httpx.AsyncClient, Consumer]]:
    async with agent_api(settings) as client, Consumer(settings, ch, amqp) as consumer:
        yield client, consumer


async def record(client: httpx.AsyncClient, events: list[dict[str, Any]], session: str, *,
                 token: str | None = "", app_name: str = "shop") -> httpx.Response:
    if token == "":
        token = (await client.get("/authenticate")).json()["accessToken"]
    return await client.post("/record", headers=bardrr.record_headers(token, app_name),
                             json=bardrr.record_body(events, session))


def rows(ch: Client, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in ch.query(sql, parameters=parameters).result_rows]


async def test_recorded_batches_land_in_clickhouse_and_the_session_in_postgres(
    ingest: tuple[httpx.AsyncClient, Consumer], ch: Client, pg_pool: asyncpg.Pool, settings: Settings, amqp
) -> None:
    client, consumer = ingest
    shop, blog = str(uuid.uuid4()), str(uuid.uuid4())
    first = bardrr.first_batch()
    second = bardrr.later_batch(first[-1]["timestamp"] + 500)
    # The token arrived late: the agent's buffer grew and everything left in one large batch.
    late = bardrr.first_batch() + bardrr.later_batch(size=25)
    for events, session, app_name in ((first, shop, "shop"), (second, shop, "shop"), (late, blog, "blog")):
        answer = await record(client, events, session, app_name=app_name)
        assert answer.is_success, answer.text

    await eventually(lambda: consumer.stats.messages_acked == 3, "the three batches acknowledged")
    assert await messages_ready(amqp, settings) == 0

    by_session = dict(rows(ch, "SELECT session_id, count() FROM events FINAL GROUP BY session_id"))
    assert {str(k): v for k, v in by_session.items()} == {shop: 20, blog: 35}
    stored = rows(ch, "SELECT app_name, type, event FROM events FINAL WHERE session_id = {s:UUID} ORDER BY ts, seq",
                  s=shop)
    assert [json.loads(event) for _, _, event in stored] == first + second
    assert {app for app, _, _ in stored} == {"shop"}

    tagged = rows(ch, "SELECT session_id, app_name, kind, label, toUnixTimestamp64Milli(ts) FROM conversion_events "
                      "FINAL ORDER BY session_id, ts")
    click_at, link_at, custom_at = (first[i]["timestamp"] for i in (4, 6, 7))
    late_click_at, late_link_at, late_custom_at = (late[i]["timestamp"] for i in (4, 6, 7))
    assert sorted((str(s), app, kind, label, ts) for s, app, kind, label, ts in tagged) == sorted([
        (shop, "shop", "click", bardrr.BUTTON_LABEL, click_at),
        (shop, "shop", "click", bardrr.LINK_LABEL, link_at),  # never marked by the agent: named from the page
        (shop, "shop", "custom", bardrr.CUSTOM_TAG, custom_at),
        (blog, "blog", "click", bardrr.BUTTON_LABEL, late_click_at),
        (blog, "blog", "click", bardrr.LINK_LABEL, late_link_at),
        (blog, "blog", "custom", bardrr.CUSTOM_TAG, late_custom_at),
        # A Meta event is a page the session loaded, labelled with its URL's path.
        *((shop, "shop", "page", "/products/42", e["timestamp"]) for e in first + second if e["type"] == 4),
        *((blog, "blog", "page", "/products/42", e["timestamp"]) for e in late if e["type"] == 4),
    ])
    assert any(kind == "page" for _, _, kind, _, _ in tagged)

    lag = rows(ch, "SELECT min(inserted_at >= received_at), max(received_at > '2020-01-01') FROM events")
    assert lag == [(1, 1)]

    sessions = {
        str(r["session_id"]): dict(r)
        for r in await pg_pool.fetch(
            "SELECT session_id, app_name, event_count, error_count, first_event_at, last_event_at FROM active_sessions")
    }
    assert sessions[shop] == {"session_id": uuid.UUID(shop), "app_name": "shop", "event_count": 20,
                              "error_count": 1, "first_event_at": first[0]["timestamp"],
                              "last_event_at": second[-1]["timestamp"]}
    assert sessions[blog]["event_count"] == 35 and sessions[blog]["error_count"] == 1


@pytest.mark.parametrize(
    ("token", "body_change", "status"),
    [
        pytest.param(None, None, 401, id="bearer-undefined"),
        pytest.param("forged", None, 401, id="forged-token"),
        pytest.param("", {"sessionId": "not-a-uuid"}, 400, id="bad-session-id"),
        pytest.param("", {"events": []}, 400, id="no-events"),
        pytest.param("", {"events": [{"type": 9, "timestamp": 1_700_000_000_000}]}, 400, id="bad-event-type"),
    ],
)
async def test_a_rejected_batch_reaches_neither_queue_nor_clickhouse(
    ingest: tuple[httpx.AsyncClient, Consumer], ch: Client, pg_pool: asyncpg.Pool,
    token: str | None, body_change: dict[str, Any] | None, status: int,
) -> None:
    client, consumer = ingest
    if token == "":
        token = (await client.get("/authenticate")).json()["accessToken"]
    rejected = bardrr.record_body(bardrr.first_batch(), str(uuid.uuid4())) | (body_change or {})
    answer = await client.post("/record", headers=bardrr.record_headers(token), json=rejected)
    assert answer.status_code == status
    assert answer.json()

    accepted = str(uuid.uuid4())
    assert (await record(client, bardrr.later_batch(), accepted)).is_success
    await eventually(lambda: consumer.stats.messages_acked == 1, "the accepted batch acknowledged")
    # Queues are FIFO: once the batch sent after the rejected one is in, a leaked message would be too.
    assert [str(s) for (s,) in rows(ch, "SELECT DISTINCT session_id FROM events")] == [accepted]
    assert rows(ch, "SELECT count() FROM ingest_errors") == [(0,)]
    assert [str(r["session_id"]) for r in await pg_pool.fetch("SELECT session_id FROM active_sessions")] == [accepted]
