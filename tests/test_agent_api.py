"""The agent API on real PostgreSQL and RabbitMQ, driven in process with its lifespan.

Every request goes through the app's real wiring (lifespan, middleware, pool, robust connection); queue messages
are consumed from the real queue, sessions read from the real table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import aio_pika
import asyncpg
import httpx
import jwt
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_api.app import create_app
from agent_api.batches import Batch, parse_batch
from agent_api.errors import DependencyUnavailable
from agent_api.publisher import BatchPublisher
from agent_api.storage import BatchStore
from agent_api.tokens import TokenAuthority, signing_key
from bard import postgres
from bard.broker import declare_topology
from bard.settings import Settings
from clickhouse.schema import INGEST_NAMES
from tests import bardrr_events as agent
from tests.conftest import PG_SERVER

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

MAX_BODY_BYTES = 200_000


# --- Harness ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's ASGI lifespan as a server would, and give an httpx client whose requests carry the
    lifespan's state (httpx's ASGITransport does neither by itself)."""
    state: dict[str, Any] = {}
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await to_app.get()

    async def send(message: MutableMapping[str, Any]) -> None:
        await from_app.put(dict(message))

    async def serve_lifespan() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}, receive, send)

    lifespan = asyncio.create_task(serve_lifespan())
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        await lifespan
        raise RuntimeError(f"the app did not start: {started}")

    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "state": dict(state)}, receive, send)

    transport = httpx.ASGITransport(app=with_state, client=("203.0.113.7", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://agent-api") as client:
            yield client
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await from_app.get()
        await lifespan
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.replace(max_body_bytes=MAX_BODY_BYTES)


@pytest.fixture
async def client(
    api_settings: Settings, pg_pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(api_settings)) as client:
        yield client


class Queue:
    """The test's view of Bard's queue on the real broker."""

    def __init__(self, connection: aio_pika.abc.AbstractRobustConnection, settings: Settings) -> None:
        self._connection = connection
        self._settings = settings

    async def count(self) -> int:
        async with self._connection.channel() as channel:
            queue = await channel.declare_queue(self._settings.amqp_queue, passive=True)
            count = queue.declaration_result.message_count
            assert count is not None
            return count

    async def take_all(self) -> list[aio_pika.abc.AbstractIncomingMessage]:
        messages = []
        async with self._connection.channel() as channel:
            _, queue = await declare_topology(channel, self._settings)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                messages.append(message)
        return messages

    async def take_rows(self) -> list[list[dict[str, Any]]]:
        """Every message on the queue, each as its JSONEachRow rows."""
        batches = []
        for message in await self.take_all():
            assert message.body.endswith(b"\n")
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            batches.append([json.loads(line) for line in message.body.split(b"\n")[:-1]])
        return batches

    async def take_batches(self) -> list[list[dict[str, Any]]]:
        """The rows on the queue grouped by batch, in order: batches stored together share a message."""
        by_batch: dict[str, list[dict[str, Any]]] = {}
        for rows in await self.take_rows():
            for row in rows:
                by_batch.setdefault(row["batch_id"], []).append(row)
        return list(by_batch.values())


@pytest.fixture
def queue(amqp: aio_pika.abc.AbstractRobustConnection, api_settings: Settings) -> Queue:
    return Queue(amqp, api_settings)


async def token_for(client: httpx.AsyncClient) -> str:
    response = await client.get("/authenticate", headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()["accessToken"]


async def session_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT *, expires_at - last_seen_at AS idle FROM active_sessions ORDER BY created_at")


async def assert_nothing_written(pool: asyncpg.Pool, queue: Queue) -> None:
    assert await session_rows(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM active_session_click_targets") == 0
    assert await queue.count() == 0


def post_record(client: httpx.AsyncClient, body: object, headers: dict[str, str]) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/record", content=content, headers=headers)


# --- The contract, end to end ----------------------------------------------------------------------------


async def test_authenticate_record_then_the_queue_and_the_session_hold_the_batch(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    token = await token_for(client)
    session_id = str(uuid.uuid4())
    start = agent.now_ms()
    events = agent.first_batch(start)
    before = time.time()

    response = await post_record(client, agent.record_body(events, session_id), agent.record_headers(token))

    assert response.status_code == 200, response.text
    assert response.json()["events"] == 10
    [rows] = await queue.take_rows()
    assert [sorted(row) for row in rows] == [sorted(INGEST_NAMES.split(", "))] * 10
    assert {row["session_id"] for row in rows} == {session_id}
    assert {row["app_name"] for row in rows} == {"shop"}
    assert {row["batch_id"] for row in rows} == {response.json()["batchId"]}
    assert [row["seq"] for row in rows] == list(range(10))
    assert [row["event"] for row in rows] == events
    assert [(row["ts"], row["type"]) for row in rows] == [(e["timestamp"], e["type"]) for e in events]
    assert [(row["kind"], row["label"]) for row in rows if row["kind"]] == [
        ("page", "/products/42"), ("click", agent.BUTTON_LABEL), ("click", agent.LINK_LABEL),
        ("custom", agent.CUSTOM_TAG)
    ]
    assert sum(row["is_error"] for row in rows) == 1
    assert before * 1000 - 1 <= rows[0]["received_at"] <= time.time() * 1000 + 1

    [session] = await session_rows(pg_pool)
    assert str(session["session_id"]) == session_id and session["app_name"] == "shop"
    assert (session["first_event_at"], session["last_event_at"]) == (start, start + 2000)
    assert (session["event_count"], session["error_count"], session["max_idle_ms"]) == (10, 1, 60_000)
    assert session["idle"].total_seconds() == 60
    assert abs(session["last_seen_at"].timestamp() - time.time()) < 60  # server time, not the client's

    # The next batch extends the session: times widen, counts add up, the segment stays.
    later = agent.later_batch(start - 5000, 10) + [agent.console_error(start + 9000)]
    response = await post_record(client, agent.record_body(later, session_id, 120_000), agent.record_headers(token))
    assert response.status_code == 200, response.text
    [rows] = await queue.take_rows()
    assert len(rows) == 11 and rows[0]["batch_id"] == response.json()["batchId"]
    [extended] = await session_rows(pg_pool)
    assert (extended["first_event_at"], extended["last_event_at"]) == (start - 5000, start + 9000)
    assert (extended["event_count"], extended["error_count"], extended["max_idle_ms"]) == (21, 2, 120_000)
    assert extended["segment_id"] == session["segment_id"]
    assert extended["last_seen_at"] >= session["last_seen_at"]
    assert extended["idle"].total_seconds() == 120


async def test_the_batch_that_races_the_token_is_refused_and_the_late_big_batch_accepted(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    session_id = str(uuid.uuid4())
    start = agent.now_ms()
    early = await post_record(client, agent.record_body(agent.first_batch(start), session_id),
                              agent.record_headers(None))
    assert early.status_code == 401 and early.json()["field"] == "authorization"
    await assert_nothing_written(pg_pool, queue)

    # The agent's buffer grew past 10 while the token was on its way; it all leaves at once.
    buffered = agent.first_batch(start) + agent.later_batch(start + 3000, 15)
    token = await token_for(client)
    response = await post_record(client, agent.record_body(buffered, session_id), agent.record_headers(token))
    assert response.status_code == 200, response.text
    [rows] = await queue.take_rows()
    assert len(rows) == 25
    [session] = await session_rows(pg_pool)
    assert session["event_count"] == 25


async def test_two_racing_first_batches_of_one_session_both_succeed(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    token = await token_for(client)
    session_id = str(uuid.uuid4())
    start = agent.now_ms()
    bodies = [agent.record_body(agent.first_batch(start), session_id),
              agent.record_body(agent.first_batch(start + 100), session_id)]
    responses = await asyncio.gather(*(post_record(client, b, agent.record_headers(token)) for b in bodies))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert len(await queue.take_batches()) == 2
    [session] = await session_rows(pg_pool)
    assert (session["event_count"], session["error_count"]) == (20, 2)
    assert (session["first_event_at"], session["last_event_at"]) == (start, start + 2100)


async def test_many_concurrent_sessions_each_get_their_row(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    token = await token_for(client)
    sessions = [str(uuid.uuid4()) for _ in range(20)]
    responses = await asyncio.gather(*(
        post_record(client, agent.record_body(agent.later_batch(), s), agent.record_headers(token, f"app-{i % 3}"))
        for i, s in enumerate(sessions)
    ))
    assert {r.status_code for r in responses} == {200}
    assert sorted(str(r["session_id"]) for r in await session_rows(pg_pool)) == sorted(sessions)
    assert sum(len(rows) for rows in await queue.take_rows()) == 200


async def test_after_an_idle_timeout_the_new_session_id_gets_its_own_row(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    token = await token_for(client)
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    start = agent.now_ms()
    for events, session_id in ((agent.first_batch(start), old), (agent.batch_after_idle_timeout(start + 70_000), new)):
        response = await post_record(client, agent.record_body(events, session_id), agent.record_headers(token))
        assert response.status_code == 200, response.text
    rows = {str(r["session_id"]): r for r in await session_rows(pg_pool)}
    assert (rows[old]["first_event_at"], rows[old]["last_event_at"]) == (start, start + 2000)
    assert (rows[new]["first_event_at"], rows[new]["event_count"]) == (start + 69_999, 10)
    [_, restarted] = await queue.take_batches()
    assert [r["type"] for r in restarted[:3]] == [4, 2, 3] and restarted[2]["kind"] == "click"


async def test_header_names_are_read_in_any_case(client: httpx.AsyncClient, queue: Queue) -> None:
    token = await token_for(client)
    headers = {"CONTENT-TYPE": "Application/JSON; charset=utf-8", "Authorization": f"Bearer {token}",
               "APPNAME": "shop"}
    response = await post_record(client, agent.record_body(agent.later_batch()), headers)
    assert response.status_code == 200, response.text
    assert await queue.count() == 1


async def test_max_idle_time_is_clamped_and_defaulted(
    client: httpx.AsyncClient, api_settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    token = await token_for(client)
    clamped, defaulted = str(uuid.uuid4()), str(uuid.uuid4())
    body = agent.record_body(agent.later_batch(), clamped, 10**15)
    assert (await post_record(client, body, agent.record_headers(token))).status_code == 200
    body = agent.record_body(agent.later_batch(), defaulted)
    del body["MAX_IDLE_TIME"]
    assert (await post_record(client, body, agent.record_headers(token))).status_code == 200
    idle = {str(r["session_id"]): r["max_idle_ms"] for r in await session_rows(pg_pool)}
    assert idle == {clamped: api_settings.max_idle_max_ms, defaulted: api_settings.max_idle_default_ms}


# --- Bad input: a clear 4xx naming the problem, and nothing written anywhere --------------------------------


def _body(**changes: Any) -> dict[str, Any]:
    body = agent.record_body(agent.later_batch(agent.now_ms(), 3))
    body.update(changes)
    return {k: v for k, v in body.items() if v is not DROP}


def _event(**changes: Any) -> dict[str, Any]:
    event = {**agent.mouse_move(agent.now_ms()), **changes}
    return {k: v for k, v in event.items() if v is not DROP}


DROP = object()
NOW = agent.now_ms()

BAD_BODIES: dict[str, tuple[Callable[[], object], str]] = {
    "not-json": (lambda: b"{sessionId: nope", "body"),
    "not-utf8": (lambda: b"\xff\xfe{}", "body"),
    "empty-body": (lambda: b"", "body"),
    "json-array": (lambda: b"[]", "body"),
    "json-string": (lambda: b'"hello"', "body"),
    "session-missing": (lambda: _body(sessionId=DROP), "sessionId"),
    "session-not-uuid": (lambda: _body(sessionId="session-1"), "sessionId"),
    "session-number": (lambda: _body(sessionId=12), "sessionId"),
    "session-null": (lambda: _body(sessionId=None), "sessionId"),
    "events-missing": (lambda: _body(events=DROP), "events"),
    "events-empty": (lambda: _body(events=[]), "events"),
    "events-object": (lambda: _body(events={"0": agent.mouse_move(NOW)}), "events"),
    "events-string": (lambda: _body(events="[]"), "events"),
    "event-number": (lambda: _body(events=[5]), "events[0]"),
    "event-null": (lambda: _body(events=[None]), "events[0]"),
    "event-array": (lambda: _body(events=[[agent.mouse_move(NOW)]]), "events[0]"),
    "second-event-bad": (lambda: _body(events=[agent.mouse_move(NOW), "x"]), "events[1]"),
    "type-missing": (lambda: _body(events=[_event(type=DROP)]), "events[0].type"),
    "type-7": (lambda: _body(events=[_event(type=7)]), "events[0].type"),
    "type-negative": (lambda: _body(events=[_event(type=-1)]), "events[0].type"),
    "type-string": (lambda: _body(events=[_event(type="3")]), "events[0].type"),
    "type-float": (lambda: _body(events=[_event(type=3.0)]), "events[0].type"),
    "timestamp-missing": (lambda: _body(events=[_event(timestamp=DROP)]), "events[0].timestamp"),
    "timestamp-zero": (lambda: _body(events=[_event(timestamp=0)]), "events[0].timestamp"),
    "timestamp-seconds": (lambda: _body(events=[_event(timestamp=NOW // 1000)]), "events[0].timestamp"),
    "timestamp-year-2200": (lambda: _body(events=[_event(timestamp=7_258_118_400_000)]), "events[0].timestamp"),
    "timestamp-huge": (lambda: _body(events=[_event(timestamp=10**30)]), "events[0].timestamp"),
    "timestamp-float": (lambda: _body(events=[_event(timestamp=NOW + 0.5)]), "events[0].timestamp"),
    "timestamp-string": (lambda: _body(events=[_event(timestamp=str(NOW))]), "events[0].timestamp"),
    "timestamp-bool": (lambda: _body(events=[_event(timestamp=True)]), "events[0].timestamp"),
    "custom-without-tag": (lambda: _body(events=[{"type": 5, "timestamp": NOW, "data": {}}]),
                           "events[0].data.tag"),
    "custom-tag-number": (lambda: _body(events=[agent.custom_event(NOW) | {"data": {"tag": 3}}]),
                          "events[0].data.tag"),
    "click-text-number": (lambda: _body(events=[agent.button_click(NOW) | {"conversionData": {
        "eventType": "click", "textContent": 5}}]), "events[0].conversionData.textContent"),
    "console-level-number": (lambda: _body(events=[{"type": 6, "timestamp": NOW, "data": {
        "plugin": "rrweb/console@1", "payload": {"level": 3}}}]), "events[0].data.payload.level"),
    "max-idle-negative": (lambda: _body(MAX_IDLE_TIME=-1), "MAX_IDLE_TIME"),
    "max-idle-zero": (lambda: _body(MAX_IDLE_TIME=0), "MAX_IDLE_TIME"),
    "max-idle-float": (lambda: _body(MAX_IDLE_TIME=1.5), "MAX_IDLE_TIME"),
    "max-idle-string": (lambda: _body(MAX_IDLE_TIME="60000"), "MAX_IDLE_TIME"),
    "max-idle-null": (lambda: _body(MAX_IDLE_TIME=None), "MAX_IDLE_TIME"),
    "nested-too-deep": (lambda: b'{"sessionId":"%s","events":[{"type":3,"timestamp":%d,"data":%s%s}]}' % (
        str(uuid.uuid4()).encode(), NOW, b"[" * 10_000, b"]" * 10_000), "body"),
}


@pytest.mark.parametrize(("make_body", "field"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_bad_bodies_get_400_naming_the_field_and_write_nothing(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue, make_body: Callable[[], object], field: str
) -> None:
    token = await token_for(client)
    response = await post_record(client, make_body(), agent.record_headers(token))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json()["field"] == field
    assert field in response.json()["message"]
    await assert_nothing_written(pg_pool, queue)


def _claims(settings: Settings, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "iat": now, "exp": now + 60, **changes}
    return {k: v for k, v in claims.items() if v is not DROP}


def _signed(settings: Settings, **changes: object) -> str:
    return "bearer " + jwt.encode(_claims(settings, **changes), signing_key(settings.jwt_secret), algorithm="HS256")


def _authority(settings: Settings, **changes: Any) -> TokenAuthority:
    options = {"ttl_seconds": 60, "issuer": settings.jwt_issuer, "audience": settings.jwt_audience, **changes}
    return TokenAuthority(settings.jwt_secret, **options)


BAD_HEADERS: dict[str, tuple[Callable[[Settings, str], dict[str, str]], int, str]] = {
    "authorization-missing": (lambda s, t: {"Content-Type": "application/json", "appName": "shop"},
                              401, "authorization"),
    "bearer-undefined": (lambda s, t: agent.record_headers(None), 401, "authorization"),
    "bearer-empty": (lambda s, t: agent.record_headers("") , 401, "authorization"),
    "no-scheme": (lambda s, t: agent.record_headers(t) | {"authorization": t}, 401, "authorization"),
    "basic-scheme": (lambda s, t: agent.record_headers(t) | {"authorization": f"Basic {t}"}, 401, "authorization"),
    "malformed-token": (lambda s, t: agent.record_headers("not.a.jwt"), 401, "authorization"),
    "expired-token": (lambda s, t: agent.record_headers(_authority(s).issue(now=time.time() - 120)),
                      401, "authorization"),
    "forged-token": (lambda s, t: agent.record_headers(TokenAuthority("x" * 40, ttl_seconds=60, issuer=s.jwt_issuer,
                                                                      audience=s.jwt_audience).issue()),
                     401, "authorization"),
    "alg-none": (lambda s, t: agent.record_headers(jwt.encode(_claims(s), "", algorithm="none")),
                 401, "authorization"),
    "wrong-audience": (lambda s, t: agent.record_headers(_authority(s, audience="other").issue()),
                       401, "authorization"),
    "wrong-issuer": (lambda s, t: agent.record_headers(_authority(s, issuer="other").issue()),
                     401, "authorization"),
    "no-exp": (lambda s, t: agent.record_headers("") | {"authorization": _signed(s, exp=DROP)},
               401, "authorization"),
    "app-name-missing": (lambda s, t: {"Content-Type": "application/json", "authorization": f"bearer {t}"},
                         400, "appName"),
    "app-name-empty": (lambda s, t: agent.record_headers(t, ""), 400, "appName"),
    "app-name-201": (lambda s, t: agent.record_headers(t, "a" * 201), 400, "appName"),
    "content-type-text": (lambda s, t: agent.record_headers(t) | {"Content-Type": "text/plain"},
                          415, "Content-Type"),
    "content-type-form": (lambda s, t: agent.record_headers(t) | {
        "Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type"),
    "content-type-missing": (lambda s, t: {"authorization": f"bearer {t}", "appName": "shop"},
                             415, "Content-Type"),
}


@pytest.mark.parametrize(("make_headers", "status", "field"), BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
async def test_bad_headers_and_tokens_are_refused_and_write_nothing(
    client: httpx.AsyncClient,
    api_settings: Settings,
    pg_pool: asyncpg.Pool,
    queue: Queue,
    make_headers: Callable[[Settings, str], dict[str, str]],
    status: int,
    field: str,
) -> None:
    token = await token_for(client)
    headers = make_headers(api_settings, token)
    response = await post_record(client, agent.record_body(agent.first_batch()), headers)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert response.json()["message"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    await assert_nothing_written(pg_pool, queue)


async def test_a_body_over_the_cap_is_413_by_its_declared_length(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    token = await token_for(client)
    events = agent.first_batch() + [agent.full_snapshot(agent.now_ms(), products=300)]
    body = json.dumps(agent.record_body(events)).encode()
    assert len(body) > MAX_BODY_BYTES
    response = await post_record(client, body, agent.record_headers(token))
    assert response.status_code == 413
    assert response.json() == {"error": "body_too_large", "field": "body",
                               "message": f"the request body exceeds {MAX_BODY_BYTES} bytes"}
    await assert_nothing_written(pg_pool, queue)


async def test_a_body_over_the_cap_is_413_when_streamed_without_a_length(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    token = await token_for(client)
    body = json.dumps(agent.record_body(agent.first_batch() * 5)).encode()
    assert len(body) > MAX_BODY_BYTES

    async def chunks() -> AsyncIterator[bytes]:
        for offset in range(0, len(body), 16_384):
            yield body[offset:offset + 16_384]

    response = await client.post("/record", content=chunks(), headers=agent.record_headers(token))
    assert response.status_code == 413
    assert response.json()["field"] == "body"
    await assert_nothing_written(pg_pool, queue)


async def test_a_streamed_body_under_the_cap_is_accepted(client: httpx.AsyncClient, queue: Queue) -> None:
    token = await token_for(client)
    body = json.dumps(agent.record_body(agent.first_batch())).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for offset in range(0, len(body), 4096):
            yield body[offset:offset + 4096]

    response = await client.post("/record", content=chunks(), headers=agent.record_headers(token))
    assert response.status_code == 200, response.text
    assert await queue.count() == 1


async def test_unknown_routes_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "http_error"
    wrong_method = await client.get("/record")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "http_error"


# --- /authenticate: CORS and the rate limit -----------------------------------------------------------------


async def test_authenticate_issues_a_token_that_expires_as_configured(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    token = await token_for(client)
    claims = _authority(api_settings).verify(token)
    assert claims["exp"] - claims["iat"] == api_settings.jwt_ttl_seconds == 24 * 3600


async def test_authenticate_is_rate_limited_per_address(
    api_settings: Settings, pg_pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    async with running(create_app(api_settings.replace(authenticate_rate_per_minute=18))) as client:
        statuses = [(await client.get("/authenticate")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]  # a burst of 18 // 6 = 3
        refused = await client.get("/authenticate")
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        elsewhere = await client.get("/authenticate", headers={"x-forwarded-for": "198.51.100.1"})
        assert elsewhere.status_code == 429  # a forged header from a peer Bard does not trust: the same bucket


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(
    api_settings: Settings, pg_pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    # The test client's peer is 203.0.113.7 (see running): here it is the operator's load balancer.
    settings = api_settings.replace(authenticate_rate_per_minute=18, trusted_proxies="203.0.113.0/24")
    async with running(create_app(settings)) as client:
        async def status(forwarded_for: str) -> int:
            return (await client.get("/authenticate", headers={"x-forwarded-for": forwarded_for})).status_code

        assert [await status("198.51.100.1") for _ in range(4)] == [200, 200, 200, 429]
        assert await status("198.51.100.2") == 200  # another client behind the same proxy
        assert await status("10.9.9.9, 198.51.100.1") == 429  # what the client wrote left of itself is not read


@pytest.mark.parametrize("path", ["/authenticate", "/record"])
async def test_preflight_allows_what_the_agent_sends(client: httpx.AsyncClient, path: str) -> None:
    method = "GET" if path == "/authenticate" else "POST"
    response = await client.options(path, headers={
        "Origin": "https://shop.example.com",
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type,authorization,appname",
    })
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "authorization", "appname"} <= allowed
    assert method in response.headers["access-control-allow-methods"]


async def test_cors_origins_come_from_the_settings(
    api_settings: Settings, pg_pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection, queue: Queue
) -> None:
    settings = api_settings.replace(agent_cors_origins="https://shop.example.com, https://blog.example.com")
    async with running(create_app(settings)) as client:
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        allowed = await client.options("/record", headers={"Origin": "https://blog.example.com", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://blog.example.com"
        refused = await client.options("/record", headers={"Origin": "https://evil.example.net", **preflight})
        assert refused.status_code == 400
        token = (await client.get("/authenticate", headers={"Origin": "https://shop.example.com"})).json()
        response = await post_record(client, agent.record_body(agent.later_batch()),
                                     agent.record_headers(token["accessToken"]) | {"Origin": "https://shop.example.com"})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://shop.example.com"


# --- Health ------------------------------------------------------------------------------------------------


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


# --- A dependency down: 503 naming it, nothing half-written, recovery by itself -------------------------------


class TcpProxy:
    """A TCP forwarder the test can cut and restore, standing in for a server going away and coming back
    (the shared PostgreSQL and RabbitMQ servers are never stopped)."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and drop every connection, as a crashed server would."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        self._writers.clear()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass  # the other side went away; both are closed below
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._writers -= {writer, upstream_writer}


@contextlib.asynccontextmanager
async def proxied(port: int) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(port)
    await proxy.start()
    try:
        yield proxy
    finally:
        with contextlib.suppress(AssertionError):
            await proxy.cut()


async def record_until_accepted(client: httpx.AsyncClient, token: str, dependency: str) -> list[int]:
    """Send batches until one is accepted (recovery takes the client a reconnect); every refusal on the way
    must be a 503 naming ``dependency``. Bounded by attempts, not by a timed assertion."""
    statuses = []
    for _ in range(200):
        response = await post_record(client, agent.record_body(agent.later_batch()), agent.record_headers(token))
        statuses.append(response.status_code)
        if response.status_code == 200:
            return statuses
        assert response.status_code == 503 and response.json()["dependency"] == dependency, response.text
        await asyncio.sleep(0.1)
    raise AssertionError(f"no recovery after {len(statuses)} attempts: {statuses[-5:]}")


def _with_port(url: str, port: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}{':' if parts.password else ''}"
                                            f"{parts.password or ''}{'@' if parts.username else ''}127.0.0.1:{port}"))


async def test_postgresql_down_is_503_with_nothing_published_then_recovers(
    api_settings: Settings, pg_pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection, queue: Queue
) -> None:
    async with proxied(5432) as proxy:
        settings = api_settings.replace(postgres_url=_with_port(api_settings.postgres_url, proxy.port))
        async with running(create_app(settings)) as client:
            token = await token_for(client)
            assert (await post_record(client, agent.record_body(agent.later_batch()),
                                      agent.record_headers(token))).status_code == 200
            assert len(await queue.take_all()) == 1

            await proxy.cut()
            down = await post_record(client, agent.record_body(agent.first_batch()), agent.record_headers(token))
            assert down.status_code == 503
            assert down.json()["dependency"] == "PostgreSQL" and "PostgreSQL" in down.json()["message"]
            assert await queue.count() == 0  # nothing published for the refused batch
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and "PostgreSQL" in ready.json()["dependencies"]
            assert (await client.get("/authenticate")).status_code == 200  # tokens need no dependency

            await proxy.start()
            statuses = await record_until_accepted(client, token, "PostgreSQL")
            assert statuses[-1] == 200
            assert (await client.get("/readyz")).status_code == 200
    assert await queue.count() == 1
    assert [r["event_count"] for r in await session_rows(pg_pool)] == [10, 10]


async def test_postgresql_going_away_inside_a_transaction_is_503_then_recovers(
    api_settings: Settings, pg_pool: asyncpg.Pool, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart under load cuts connections in the middle of a group's transaction: a 503 naming PostgreSQL,
    never a 500 (it was: ``'Transaction' object has no attribute 'is_completed'``), and nothing published."""
    from agent_api import storage

    keep_sessions = storage.keep_sessions
    async with proxied(5432) as proxy:

        async def cut_inside_the_transaction(conn: asyncpg.Connection, batches: Any) -> Any:
            await proxy.cut()  # the transaction has begun on this connection; now the server is gone
            return await keep_sessions(conn, batches)

        settings = api_settings.replace(postgres_url=_with_port(api_settings.postgres_url, proxy.port))
        async with running(create_app(settings)) as client:
            token = await token_for(client)
            monkeypatch.setattr(storage, "keep_sessions", cut_inside_the_transaction)
            down = await post_record(client, agent.record_body(agent.first_batch()), agent.record_headers(token))
            assert down.status_code == 503, down.text
            assert down.json()["dependency"] == "PostgreSQL"
            assert await queue.count() == 0
            monkeypatch.setattr(storage, "keep_sessions", keep_sessions)
            await proxy.start()
            statuses = await record_until_accepted(client, token, "PostgreSQL")
            assert statuses[-1] == 200
    assert await queue.count() == 1
    assert [r["event_count"] for r in await session_rows(pg_pool)] == [10]


async def test_rabbitmq_down_is_503_with_the_session_rolled_back_then_recovers(
    api_settings: Settings, pg_pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection, queue: Queue
) -> None:
    async with proxied(5672) as proxy:
        amqp_url = _with_port(api_settings.amqp_url, proxy.port) + "?reconnect_interval=0.2"
        async with running(create_app(api_settings.replace(amqp_url=amqp_url))) as client:
            token = await token_for(client)
            session_id = str(uuid.uuid4())
            first = await post_record(client, agent.record_body(agent.first_batch(), session_id),
                                      agent.record_headers(token))
            assert first.status_code == 200

            await proxy.cut()
            refused_session = str(uuid.uuid4())
            for body in (agent.record_body(agent.later_batch(), session_id),  # an existing session
                         agent.record_body(agent.first_batch(), refused_session)):  # a new one
                down = await post_record(client, body, agent.record_headers(token))
                assert down.status_code == 503, down.text
                assert down.json()["dependency"] == "RabbitMQ" and "RabbitMQ" in down.json()["message"]
            # The upserts rolled back: the existing session is as the first batch left it, the new one absent.
            assert [(str(r["session_id"]), r["event_count"]) for r in await session_rows(pg_pool)] == [
                (session_id, 10)
            ]
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and "RabbitMQ" in ready.json()["dependencies"]

            await proxy.start()
            await record_until_accepted(client, token, "RabbitMQ")
            assert (await client.get("/readyz")).status_code == 200
    assert await queue.count() == 2
    assert len(await session_rows(pg_pool)) == 2



# --- Clicks on links and buttons, named from the snapshot kept in PostgreSQL --------------------------------


async def record_all(client: httpx.AsyncClient, session_id: str, *batches: list[dict[str, Any]]) -> None:
    token = await token_for(client)
    for events in batches:
        response = await post_record(client, agent.record_body(events, session_id), agent.record_headers(token))
        assert response.status_code == 200, response.text


def clicks_of(batch_rows: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """(node id, kind, label) of each click in a batch's rows."""
    return [(row["event"]["data"]["id"], row["kind"], row["label"]) for row in batch_rows
            if row["type"] == 3 and row["event"]["data"].get("source") == 2]


async def test_clicks_in_later_batches_are_named_from_the_pages_snapshot(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    session_id, start = str(uuid.uuid4()), agent.now_ms()
    later = [agent.mouse_move(start + 5000), agent.link_click(start + 5100),
             agent.link_click(start + 5200, agent.ACCOUNT_ICON_PATH_ID),
             agent.link_click(start + 5300, node_id=7),  # the product list: no link, no button
             agent.link_click(start + 5400, node_id=99_999),  # a node the snapshot does not have
             agent.button_click(start + 5500, "Add to cart (1)")]  # marked by the agent: its text stands

    await record_all(client, session_id, agent.first_batch(start), later)

    _, second = await queue.take_batches()
    assert clicks_of(second) == [
        (agent.LINK_ID, "click", agent.LINK_LABEL),
        (agent.ACCOUNT_ICON_PATH_ID, "click", agent.ACCOUNT_LABEL),
        (7, "", ""),
        (99_999, "", ""),
        (agent.BUTTON_ID, "click", "Add to cart (1)"),
    ]
    [kept] = await pg_pool.fetch("SELECT since, starts_page, targets FROM active_session_click_targets")
    assert (kept["since"], kept["starts_page"]) == (start + 1, True)
    assert json.loads(kept["targets"]) == {"42": agent.BUTTON_LABEL, "57": agent.LINK_LABEL, "60": agent.ACCOUNT_LABEL,
                                           "61": agent.ACCOUNT_LABEL, "62": agent.ACCOUNT_LABEL}


async def test_a_new_page_forgets_the_old_pages_targets_except_for_clicks_made_before_it(
    client: httpx.AsyncClient, queue: Queue
) -> None:
    session_id, start = str(uuid.uuid4()), agent.now_ms()
    # The user followed the link to /cart: a new page, where rrweb's ids start again and 57 is no link.
    cart_page = [agent.meta(start + 10_000, "https://shop.example.com/cart"), {
        "type": 2, "timestamp": start + 10_001, "data": {"initialOffset": {"left": 0, "top": 0}, "node": {
            "type": 0, "id": 1, "childNodes": [{"type": 2, "tagName": "div", "attributes": {}, "id": agent.LINK_ID,
                                                "childNodes": [{"type": 3, "textContent": "Your cart", "id": 58}]}]}}}]
    on_cart_page = [agent.link_click(start + 11_000)]
    on_first_page_arriving_late = [agent.link_click(start + 9_000)]

    await record_all(client, session_id, agent.first_batch(start), cart_page, on_cart_page,
                     on_first_page_arriving_late)

    *_, cart_click, late_click = await queue.take_batches()
    assert clicks_of(cart_click) == [(agent.LINK_ID, "", "")]
    assert clicks_of(late_click) == [(agent.LINK_ID, "click", agent.LINK_LABEL)]


async def test_a_link_a_mutation_added_is_named_when_clicked_later(
    client: httpx.AsyncClient, queue: Queue
) -> None:
    session_id, start = str(uuid.uuid4()), agent.now_ms()
    await record_all(client, session_id,
                     agent.first_batch(start),
                     [agent.mutation_adding_link(start + 3000, 500, "Summer sale")],
                     [agent.link_click(start + 4000, 501), agent.link_click(start + 2000, 500)])
    *_, clicks = await queue.take_batches()
    # The bold text inside the new link is the link; a click from before the link existed is nothing.
    assert clicks_of(clicks) == [(501, "click", "Summer sale!"), (500, "", "")]


async def test_clicks_of_another_session_are_not_named_by_this_ones_page(
    client: httpx.AsyncClient, queue: Queue
) -> None:
    start = agent.now_ms()
    await record_all(client, str(uuid.uuid4()), agent.first_batch(start))
    await record_all(client, str(uuid.uuid4()), [agent.link_click(start + 100)])
    _, other = await queue.take_batches()
    assert clicks_of(other) == [(agent.LINK_ID, "", "")]


# --- Typing in text fields, named from the page kept in PostgreSQL ------------------------------------------


def inputs_of(batch_rows: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """(node id, kind, label) of each input event in a batch's rows."""
    return [(row["event"]["data"]["id"], row["kind"], row["label"]) for row in batch_rows
            if row["type"] == 3 and row["event"]["data"].get("source") == 5]


async def test_typing_in_later_batches_is_named_from_the_pages_snapshot(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    session_id, start = str(uuid.uuid4()), agent.now_ms()
    later = [*agent.typing(start + 5000, agent.EMAIL_ID, "ada"),
             *agent.typing(start + 6000, agent.LINK_ID, "x"),  # a link: no text field
             *agent.typing(start + 6100, 99_999, "y"),  # a node the page does not have
             agent.link_click(start + 6200),
             *agent.typing(start + 7000, agent.PASSWORD_ID, "pw")]

    await record_all(client, session_id, [agent.meta(start), agent.signup_snapshot(start + 1)], later)

    _, second = await queue.take_batches()
    assert inputs_of(second) == [
        (agent.EMAIL_ID, "input", agent.EMAIL_LABEL), (agent.EMAIL_ID, "", ""), (agent.EMAIL_ID, "", ""),
        (agent.LINK_ID, "", ""), (99_999, "", ""),
        (agent.PASSWORD_ID, "input", agent.PASSWORD_LABEL), (agent.PASSWORD_ID, "", ""),
    ]
    assert clicks_of(second) == [(agent.LINK_ID, "click", agent.LINK_LABEL)]
    assert not any(agent.TYPED_SECRET in row["label"] for row in second)
    [kept] = await pg_pool.fetch("SELECT targets, inputs FROM active_session_click_targets")
    assert json.loads(kept["targets"]) == {str(agent.LINK_ID): agent.LINK_LABEL}
    assert json.loads(kept["inputs"]) == {"201": agent.EMAIL_LABEL, "204": agent.PASSWORD_LABEL,
                                          "206": agent.NOTES_LABEL}
    assert agent.TYPED_SECRET not in kept["inputs"]  # the value attribute in the snapshot was never read
    # The named click counts; typing counts toward no click.
    assert await pg_pool.fetchval("SELECT click_count FROM active_sessions") == 1


async def test_a_new_page_forgets_the_old_pages_fields_except_for_typing_before_it(
    client: httpx.AsyncClient, queue: Queue
) -> None:
    session_id, start = str(uuid.uuid4()), agent.now_ms()
    thanks_page = [agent.meta(start + 10_000, "https://shop.example.com/thanks"), {
        "type": 2, "timestamp": start + 10_001, "data": {"initialOffset": {"left": 0, "top": 0}, "node": {
            "type": 0, "id": 1, "childNodes": [{"type": 2, "tagName": "div", "attributes": {}, "id": agent.EMAIL_ID,
                                                "childNodes": [{"type": 3, "textContent": "Thanks", "id": 58}]}]}}}]
    await record_all(client, session_id, [agent.signup_snapshot(start)], thanks_page,
                     agent.typing(start + 11_000, agent.EMAIL_ID, "a"),
                     agent.typing(start + 9_000, agent.EMAIL_ID, "b"))
    *_, on_thanks_page, arriving_late = await queue.take_batches()
    assert inputs_of(on_thanks_page) == [(agent.EMAIL_ID, "", "")]
    assert inputs_of(arriving_late) == [(agent.EMAIL_ID, "input", agent.EMAIL_LABEL)]


async def test_a_field_a_mutation_added_is_named_when_typed_in_later(
    client: httpx.AsyncClient, queue: Queue
) -> None:
    session_id, start = str(uuid.uuid4()), agent.now_ms()
    await record_all(client, session_id, agent.first_batch(start),
                     [agent.mutation_adding_form(start + 3000, first_id=500)],
                     [*agent.typing(start + 4000, 506, "n"), *agent.typing(start + 2000, 501, "e")])
    *_, typed = await queue.take_batches()
    # Typing from before the form existed is nothing.
    assert inputs_of(typed) == [(506, "input", agent.NOTES_LABEL), (501, "", "")]


async def test_typing_is_named_from_a_page_that_came_in_the_same_group(
    api_settings: Settings, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    session, start = uuid.uuid4(), agent.now_ms()
    await store_groups(api_settings, pg_pool, [
        parsed([*agent.typing(start + 5000, agent.NOTES_ID, "hi"), agent.link_click(start + 5100)], session),
        parsed([agent.signup_snapshot(start)], session),
    ])
    typed, _ = await queue.take_batches()
    assert inputs_of(typed) == [(agent.NOTES_ID, "input", agent.NOTES_LABEL), (agent.NOTES_ID, "", "")]
    assert clicks_of(typed) == [(agent.LINK_ID, "click", agent.LINK_LABEL)]


async def test_target_rows_from_before_the_fields_were_kept_read_as_pages_without_fields(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    session_id, start = str(uuid.uuid4()), agent.now_ms()
    await record_all(client, session_id, agent.later_batch(start, 1))
    # A row as the agent API wrote it before PostgreSQL migration 6: no inputs column named.
    await pg_pool.execute("INSERT INTO active_session_click_targets (session_id, since, starts_page, targets) "
                          "VALUES ($1, $2, true, $3)", uuid.UUID(session_id), start + 10,
                          json.dumps({str(agent.EMAIL_ID): "Old link"}))
    await record_all(client, session_id, [*agent.typing(start + 100, agent.EMAIL_ID, "a"),
                                          agent.link_click(start + 200, agent.EMAIL_ID)])
    *_, later = await queue.take_batches()
    assert inputs_of(later) == [(agent.EMAIL_ID, "", "")]
    assert clicks_of(later) == [(agent.EMAIL_ID, "click", "Old link")]
    assert await pg_pool.fetchval("SELECT inputs::text FROM active_session_click_targets") == "{}"


async def test_postgresql_migration_6_keeps_the_target_rows_and_rewrites_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"{PG_SERVER}/bard_test_migration_{uuid.uuid4().hex[:10]}"
    await postgres.ensure_database(url)
    conn = await asyncpg.connect(url)
    try:
        with monkeypatch.context() as before:
            before.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:5])
            assert await postgres.migrate(conn) == [1, 2, 3, 4, 5]
        session = uuid.uuid4()
        await conn.execute("INSERT INTO active_sessions (session_id, app_name, first_event_at, last_event_at, "
                           "max_idle_ms, event_count, error_count, expires_at) VALUES ($1, 'shop', 1, 2, 60000, 1, "
                           "0, now())", session)
        await conn.execute("INSERT INTO active_session_click_targets VALUES ($1, 5, true, '{\"57\": \"Cart\"}')",
                           session)
        file_before = await conn.fetchval(
            "SELECT relfilenode FROM pg_class WHERE relname = 'active_session_click_targets'")
        assert await postgres.migrate(conn) == [6]
        assert await conn.fetchval(
            "SELECT relfilenode FROM pg_class WHERE relname = 'active_session_click_targets'") == file_before
        row = await conn.fetchrow("SELECT targets, inputs FROM active_session_click_targets")
        assert (json.loads(row["targets"]), json.loads(row["inputs"])) == ({"57": "Cart"}, {})
        assert await postgres.migrate(conn) == []
    finally:
        await conn.close()
        await postgres.drop_database(url)


# --- Batches stored together ----------------------------------------------------------------------------------


async def test_concurrent_batches_of_a_few_sessions_add_up(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    token = await token_for(client)
    sessions = [str(uuid.uuid4()) for _ in range(4)]
    start = agent.now_ms()
    bodies = [agent.record_body(agent.later_batch(start + 1000 * i), sessions[i % 4], 60_000 + i)
              for i in range(60)]
    responses = await asyncio.gather(*(post_record(client, b, agent.record_headers(token)) for b in bodies))
    assert {r.status_code for r in responses} == {200}
    assert len(await queue.take_batches()) == 60
    by_session = {str(r["session_id"]): r for r in await session_rows(pg_pool)}
    assert sorted(by_session) == sorted(sessions)
    for n, session_id in enumerate(sessions):
        row = by_session[session_id]
        assert row["event_count"] == 150
        assert row["first_event_at"] == start + 1000 * n
        assert row["last_event_at"] == start + 1000 * (56 + n) + 450


class RefusingPublisher(BatchPublisher):
    """The real publisher, except that it refuses every message holding one of the batches it is told to, as a
    broker may refuse one message of several in flight."""

    def __init__(self, settings: Settings, refuse: set[bytes]) -> None:
        super().__init__(settings)
        self.refuse = refuse

    async def publish_message(self, rows: bytes) -> None:
        if any(refused in rows for refused in self.refuse):
            raise DependencyUnavailable("RabbitMQ", "refused by the test")
        await super().publish_message(rows)


def three_batches_of_two_sessions(shared: uuid.UUID, other: uuid.UUID, start: int) -> list[Batch]:
    return [
        parse_batch(json.dumps(agent.record_body(events, str(session))).encode(), "shop",
                    max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)
        for events, session in ((agent.later_batch(start), shared), (agent.first_batch(start - 500), shared),
                                (agent.later_batch(start, 4), other))
    ]


async def store_as_one_group(store: BatchStore, batches: list[Batch], ids: list[uuid.UUID], start: int) -> list[Any]:
    return await asyncio.gather(*(store.store(b, i, start) for b, i in zip(batches, ids, strict=True)),
                                return_exceptions=True)


async def test_a_group_goes_to_the_queue_as_one_message_of_every_batch(
    api_settings: Settings, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    start = agent.now_ms()
    batches = three_batches_of_two_sessions(uuid.uuid4(), uuid.uuid4(), start)
    ids = [uuid.uuid4() for _ in batches]
    messages = [b.ingest_rows(i, start) for b, i in zip(batches, ids, strict=True)]
    publisher = BatchPublisher(api_settings)
    await publisher.start()
    try:
        store = BatchStore(pg_pool, publisher, workers=1)  # one worker: the three form one group
        assert await store_as_one_group(store, batches, ids, start) == [None, None, None]
    finally:
        await publisher.close()
    assert store.groups_stored == 1
    assert [m.body for m in await queue.take_all()] == [b"".join(messages)]
    assert len(await session_rows(pg_pool)) == 2


async def test_a_refused_group_message_keeps_all_its_batches_out(
    api_settings: Settings, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    start = agent.now_ms()
    batches = three_batches_of_two_sessions(uuid.uuid4(), uuid.uuid4(), start)
    ids = [uuid.uuid4() for _ in batches]
    messages = [b.ingest_rows(i, start) for b, i in zip(batches, ids, strict=True)]
    publisher = RefusingPublisher(api_settings, refuse={messages[1]})
    await publisher.start()
    try:
        store = BatchStore(pg_pool, publisher, workers=1)
        outcomes = await store_as_one_group(store, batches, ids, start)
    finally:
        await publisher.close()
    assert store.groups_stored == 1
    assert all(isinstance(o, DependencyUnavailable) and o.dependency == "RabbitMQ" for o in outcomes), outcomes
    await assert_nothing_written(pg_pool, queue)


async def test_a_refused_message_in_a_group_keeps_its_batch_out_and_the_others_in(
    api_settings: Settings, pg_pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection, queue: Queue
) -> None:
    shared, other = uuid.uuid4(), uuid.uuid4()
    start = agent.now_ms()
    batches = three_batches_of_two_sessions(shared, other, start)
    ids = [uuid.uuid4() for _ in batches]
    messages = [b.ingest_rows(i, start) for b, i in zip(batches, ids, strict=True)]
    publisher = RefusingPublisher(api_settings, refuse={messages[1]})
    await publisher.start()
    try:
        # One worker: the three form one group; one byte per message: each batch goes alone.
        store = BatchStore(pg_pool, publisher, workers=1, message_bytes=1)
        outcomes = await store_as_one_group(store, batches, ids, start)
    finally:
        await publisher.close()
    assert store.groups_stored == 1
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], DependencyUnavailable) and outcomes[1].dependency == "RabbitMQ"
    assert sorted(m.body for m in await queue.take_all()) == sorted([messages[0], messages[2]])
    rows = {r["session_id"]: r for r in await session_rows(pg_pool)}
    assert (rows[shared]["event_count"], rows[shared]["error_count"], rows[shared]["first_event_at"]) == (10, 0, start)
    assert rows[other]["event_count"] == 4


def parsed(events: list[dict[str, Any]], session: uuid.UUID) -> Batch:
    return parse_batch(json.dumps(agent.record_body(events, str(session))).encode(), "shop",
                       max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)


async def store_groups(api_settings: Settings, pg_pool: asyncpg.Pool, *groups: list[Batch]) -> None:
    publisher = BatchPublisher(api_settings)
    await publisher.start()
    try:
        store = BatchStore(pg_pool, publisher, workers=1)  # one worker: each list is one group
        for group in groups:
            ids = [uuid.uuid4() for _ in group]
            assert await store_as_one_group(store, group, ids, agent.now_ms()) == [None] * len(group)
    finally:
        await publisher.close()
    assert store.groups_stored == len(groups)


async def test_a_click_is_named_from_a_snapshot_that_came_in_the_same_group(
    api_settings: Settings, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    session, start = uuid.uuid4(), agent.now_ms()
    # The statement's lookup cannot see rows the same statement adds: the group's own targets are matched apart.
    await store_groups(api_settings, pg_pool, [
        parsed([agent.link_click(start + 5000)], session),  # stored first in the group, yet clicked later
        parsed(agent.first_batch(start), session),
    ])
    clicks, _ = await queue.take_batches()
    assert clicks_of(clicks) == [(agent.LINK_ID, "click", agent.LINK_LABEL)]


async def test_a_page_started_in_the_group_outranks_an_older_stored_target(
    api_settings: Settings, pg_pool: asyncpg.Pool, queue: Queue
) -> None:
    session, start = uuid.uuid4(), agent.now_ms()
    empty_page = {"type": 2, "timestamp": start + 10_000, "data": {"node": {"type": 0, "id": 1, "childNodes": []}}}
    await store_groups(api_settings, pg_pool,
                       [parsed(agent.first_batch(start), session)],
                       [parsed([empty_page], session),
                        parsed([agent.link_click(start + 11_000), agent.link_click(start + 9_000)], session)])
    *_, clicks = await queue.take_batches()
    assert clicks_of(clicks) == [(agent.LINK_ID, "", ""), (agent.LINK_ID, "click", agent.LINK_LABEL)]


async def test_message_bytes_of_one_gives_every_batch_its_own_message(
    api_settings: Settings, pg_pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection, queue: Queue
) -> None:
    async with running(create_app(api_settings.replace(agent_message_bytes=1))) as client:
        token = await token_for(client)
        answers = await asyncio.gather(*(
            post_record(client, agent.record_body(agent.later_batch(agent.now_ms(), 3)), agent.record_headers(token))
            for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    messages = await queue.take_rows()
    assert len(messages) == 5 and all(len(rows) == 3 for rows in messages)
    assert len({rows[0]["batch_id"] for rows in messages}) == 5


async def test_an_unroutable_message_is_refused_and_the_next_ones_still_confirmed(
    api_settings: Settings, amqp: aio_pika.abc.AbstractRobustConnection, queue: Queue
) -> None:
    """Messages are mandatory: one the exchange cannot route comes back as a refusal (never dropped silently), and
    the channel goes on confirming the next ones."""
    publisher = BatchPublisher(api_settings)
    await publisher.start()
    try:
        async with amqp.channel() as channel:
            exchange, bound = await declare_topology(channel, api_settings)
            await bound.unbind(exchange, routing_key=api_settings.amqp_queue)
            with pytest.raises(DependencyUnavailable) as refused:
                await publisher.publish_message(b'{"unroutable":1}\n')
            assert refused.value.dependency == "RabbitMQ"
            await bound.bind(exchange, routing_key=api_settings.amqp_queue)
        await asyncio.gather(*(publisher.publish_message(b'{"n":%d}\n' % n) for n in range(3)))
    finally:
        await publisher.close()
    assert sorted(m.body for m in await queue.take_all()) == [b'{"n":%d}\n' % n for n in range(3)]


@pytest.mark.postgres
async def test_a_throwaway_database_is_created_once_and_dropped_with_its_sessions() -> None:
    """bard.postgres.ensure_database and drop_database, which the tests and benchmarks use for their own databases:
    a name that needs quoting, a second ensure that changes nothing, a drop while a session is still connected."""
    url = f"{PG_SERVER}/bard_test_Quoted-{uuid.uuid4().hex[:8]}"
    await postgres.ensure_database(url)
    await postgres.ensure_database(url)
    held = await asyncpg.connect(url)
    try:
        await postgres.drop_database(url)
        admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            assert await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1",
                                        url.rsplit("/", 1)[1]) == 0
        finally:
            await admin.close()
        assert held.is_closed() or not await _answers(held)
    finally:
        await held.close()
    await postgres.drop_database(url)  # gone already: nothing to do


async def _answers(conn: asyncpg.Connection) -> bool:
    try:
        return await conn.fetchval("SELECT 1") == 1
    except (asyncpg.PostgresError, ConnectionError, asyncpg.InterfaceError):
        return False
