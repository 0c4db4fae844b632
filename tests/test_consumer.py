"""The embedded consumer on real RabbitMQ and chDB: messages in the agent API's format land in ``events`` and
``conversion_events``, in batches closed by size or by time, acknowledged only after the insert; a broken
message is kept in ``ingest_errors`` while the rest lands; redelivery is invisible to readers."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
from typing import Any

import aio_pika
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from bard.settings import Settings
from clickhouse import consumer as consumer_module
from clickhouse.consumer import Consumer, blames_data
from tests import bardrr_events as bardrr
from tests.ingest_support import eventually, ingest_rows, message_body, messages_ready, publish


def scalar(ch: Client, sql: str) -> Any:
    return ch.query(sql).result_rows[0][0]


def two_row_bodies(count: int) -> list[bytes]:
    start = bardrr.now_ms()
    return [
        message_body(ingest_rows(bardrr.later_batch(start + i * 1000, size=2), str(uuid.uuid4())))
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("error", "blamed"),
    [
        pytest.param(DatabaseError("Cannot parse uuid", code=376), True, id="bad-uuid"),
        pytest.param(DatabaseError("Cannot parse input", code=27), True, id="not-json"),
        pytest.param(DatabaseError("Unknown element for enum", code=691), True, id="bad-enum"),
        pytest.param(DatabaseError("Table does not exist", code=60), False, id="unknown-table"),
        pytest.param(DatabaseError("Memory limit exceeded", code=241), False, id="out-of-memory"),
        pytest.param(DatabaseError("no code"), False, id="no-code"),
        pytest.param(OperationalError("connection refused"), False, id="server-down"),
        pytest.param(RuntimeError("engine failure"), False, id="anything-else"),
    ],
)
def test_only_data_errors_blame_the_message(error: Exception, blamed: bool) -> None:
    assert blames_data(error) is blamed


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_messages_land_in_events_and_conversion_events(settings: Settings, ch: Client, amqp) -> None:
    session = str(uuid.uuid4())
    first = bardrr.first_batch()
    later = bardrr.later_batch(first[-1]["timestamp"] + 1000)
    await publish(amqp, settings, message_body(ingest_rows(first, session)), message_body(ingest_rows(later, session)))

    async with Consumer(settings, ch, amqp) as consumer:
        await eventually(lambda: consumer.stats.messages_acked == 2, "both messages acknowledged")

    count = ch.query("SELECT count() FROM events FINAL WHERE session_id = {s:UUID}", parameters={"s": session})
    assert count.result_rows[0][0] == 20
    stored = ch.query("SELECT type, event FROM events FINAL ORDER BY ts, seq").result_rows
    assert [json.loads(event) for _, event in stored] == first + later
    assert [t for t, _ in stored] == [e["type"] for e in first + later]
    tagged = ch.query("SELECT kind, label, app_name FROM conversion_events FINAL ORDER BY ts").result_rows
    assert tagged == [("click", bardrr.BUTTON_LABEL, "shop"), ("custom", bardrr.CUSTOM_TAG, "shop")]
    assert await messages_ready(amqp, settings) == 0


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_a_message_delivered_twice_is_seen_once(settings: Settings, ch: Client, amqp) -> None:
    body = message_body(ingest_rows(bardrr.first_batch(), str(uuid.uuid4())))
    async with Consumer(settings, ch, amqp) as consumer:
        await publish(amqp, settings, body)
        await eventually(lambda: consumer.stats.messages_acked == 1, "the first delivery")
        await publish(amqp, settings, body)
        await eventually(lambda: consumer.stats.messages_acked == 2, "the second delivery")

    assert consumer.stats.rows_inserted == 20  # both copies were inserted...
    assert scalar(ch, "SELECT count() FROM events FINAL") == 10  # ...and a reader sees each event once
    assert scalar(ch, "SELECT count() FROM conversion_events FINAL") == 2


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_batches_close_by_size(settings: Settings, ch: Client, amqp) -> None:
    settings = settings.replace(consumer_batch_rows=4, consumer_batch_seconds=3600.0)
    await publish(amqp, settings, *two_row_bodies(4))

    async with Consumer(settings, ch, amqp) as consumer:
        await eventually(lambda: consumer.stats.rows_inserted == 8, "eight rows inserted")

    assert consumer.stats.batch_rows == [4, 4]
    assert (consumer.stats.batches_by_size, consumer.stats.batches_by_time) == (2, 0)
    assert scalar(ch, "SELECT count() FROM events FINAL") == 8


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_batches_close_by_bytes(settings: Settings, ch: Client, amqp, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings.replace(consumer_batch_rows=10_000, consumer_batch_seconds=3600.0)
    bodies = two_row_bodies(4)
    monkeypatch.setattr(consumer_module, "BATCH_BYTES", len(bodies[0]) + 1)  # two messages pass it
    await publish(amqp, settings, *bodies)

    async with Consumer(settings, ch, amqp) as consumer:
        await eventually(lambda: consumer.stats.rows_inserted == 8, "eight rows inserted")

    assert consumer.stats.batch_rows == [4, 4]
    assert (consumer.stats.batches_by_size, consumer.stats.batches_by_time) == (2, 0)


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_batches_close_by_time(settings: Settings, ch: Client, amqp) -> None:
    settings = settings.replace(consumer_batch_rows=10_000, consumer_batch_seconds=0.1)
    async with Consumer(settings, ch, amqp) as consumer:
        await publish(amqp, settings, *two_row_bodies(3))
        await eventually(lambda: consumer.stats.rows_inserted == 6, "six rows inserted")

    assert consumer.stats.batches_by_size == 0
    assert consumer.stats.batches_by_time == len(consumer.stats.batch_rows) >= 1
    assert scalar(ch, "SELECT count() FROM events FINAL") == 6


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_nothing_is_acknowledged_before_it_is_inserted(settings: Settings, ch: Client, amqp) -> None:
    db = settings.resolved_clickhouse_database
    ch.command(f"RENAME TABLE {db}.events TO {db}.events_away")  # every insert into ingest now fails
    await publish(amqp, settings, *two_row_bodies(2))

    async with Consumer(settings, ch, amqp) as consumer:
        await eventually(lambda: consumer.stats.insert_failures >= 1, "a failed insert")
    assert consumer.stats.messages_acked == 0
    assert "code 60" in consumer.stats.last_error
    await eventually(lambda: _ready_is(amqp, settings, 2), "both messages back on the queue")
    assert scalar(ch, "SELECT count() FROM ingest_errors") == 0  # a failing server blames no message

    ch.command(f"RENAME TABLE {db}.events_away TO {db}.events")
    async with Consumer(settings, ch, amqp) as consumer:
        await eventually(lambda: consumer.stats.messages_acked == 2, "both messages acknowledged")
    assert scalar(ch, "SELECT count() FROM events FINAL") == 4
    assert await messages_ready(amqp, settings) == 0


async def _ready_is(amqp, settings: Settings, count: int) -> bool:
    return await messages_ready(amqp, settings) == count


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_consumer_backs_off_while_clickhouse_fails(
    settings: Settings, ch: Client, amqp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "BACKOFF_FIRST_SECONDS", 0.01)
    db = settings.resolved_clickhouse_database
    ch.command(f"RENAME TABLE {db}.events TO {db}.events_away")
    await publish(amqp, settings, *two_row_bodies(3))
    async with Consumer(settings, ch, amqp) as consumer:
        # Past the point where failing batches are split: with nothing landing, no message is blamed.
        failures = consumer_module.ISOLATE_AFTER_FAILURES + 2
        await eventually(lambda: consumer.stats.insert_failures >= failures, f"{failures} failed tries")
        ch.command(f"RENAME TABLE {db}.events_away TO {db}.events")
        await eventually(lambda: consumer.stats.messages_acked == 3, "the messages acknowledged after recovery")
    assert consumer.stats.messages_requeued >= failures * 3
    assert consumer.stats.messages_broken == 0
    assert scalar(ch, "SELECT count() FROM ingest_errors") == 0
    assert scalar(ch, "SELECT count() FROM events FINAL") == 6


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_a_message_failing_with_an_unlisted_error_is_kept_aside_after_retries(
    settings: Settings, ch: Client, amqp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if ClickHouse's parse error had a code the consumer does not know: it blames the server first.
    monkeypatch.setattr(consumer_module, "BROKEN_DATA_CODES", frozenset())
    monkeypatch.setattr(consumer_module, "BACKOFF_FIRST_SECONDS", 0.01)
    settings = settings.replace(consumer_batch_rows=10_000, consumer_batch_seconds=0.2)
    good = two_row_bodies(6)
    await publish(amqp, settings, *good[:3], b"this is not json\n", *good[3:])

    async with Consumer(settings, ch, amqp) as consumer:
        await eventually(lambda: consumer.stats.messages_acked == 7, "all seven messages acknowledged")

    assert consumer.stats.insert_failures == consumer_module.ISOLATE_AFTER_FAILURES
    assert (consumer.stats.messages_broken, consumer.stats.rows_inserted) == (1, 12)
    assert ch.query("SELECT raw_message FROM ingest_errors").result_rows == [("this is not json\n",)]
    assert scalar(ch, "SELECT count() FROM events FINAL") == 12


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_a_batch_spanning_a_century_of_client_clocks_lands(settings: Settings, ch: Client, amqp) -> None:
    # The agent API accepts client timestamps from 2000 to 2100; none of that may block the queue.
    month_ms = 31 * 24 * 3600 * 1000
    events = [bardrr.mouse_move(946_684_800_000 + i * month_ms) for i in range(150)]
    await publish(amqp, settings, message_body(ingest_rows(events, str(uuid.uuid4()))))
    async with Consumer(settings, ch, amqp) as consumer:
        await eventually(lambda: consumer.stats.messages_acked == 1, "the message acknowledged")
    assert consumer.stats.insert_failures == 0
    assert scalar(ch, "SELECT count() FROM events FINAL") == 150


BROKEN_BODIES = [
    pytest.param(b"this is not json\n", "Cannot parse input", id="not-json"),
    pytest.param(b'{"session_id":"not-a-uuid","ts":1}\n', "Cannot parse uuid", id="bad-uuid"),
    pytest.param(b'{"session_id":"6f1c1a52-8a9c-4b8e-9d7a-0f0d7b7f5d11","seq":-3}\n', "Unsigned", id="negative-seq"),
    pytest.param(b'{"session_id":"6f1c1a52-8a9c-4b8e-9d7a-0f0d7b7f5d11","ts":"soon"}\n', "Cannot parse", id="bad-ts"),
]


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
@pytest.mark.parametrize(("broken", "error"), BROKEN_BODIES)
async def test_a_broken_message_is_kept_aside_and_the_rest_lands(
    settings: Settings, ch: Client, amqp, broken: bytes, error: str
) -> None:
    settings = settings.replace(consumer_batch_rows=10_000, consumer_batch_seconds=0.5)
    good = two_row_bodies(6)
    await publish(amqp, settings, *good[:3], broken, *good[3:])

    async with Consumer(settings, ch, amqp) as consumer:
        await eventually(lambda: consumer.stats.messages_acked == 7, "all seven messages acknowledged")

    assert (consumer.stats.messages_broken, consumer.stats.rows_inserted) == (1, 12)
    assert scalar(ch, "SELECT count() FROM events FINAL") == 12
    kept = ch.query("SELECT error, raw_message FROM ingest_errors").result_rows
    assert len(kept) == 1
    assert kept[0][1] == broken.decode()
    assert re.search(error, kept[0][0])
    assert await messages_ready(amqp, settings) == 0


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_stop_inserts_the_batch_still_gathering(settings: Settings, ch: Client, amqp) -> None:
    settings = settings.replace(consumer_batch_rows=10_000, consumer_batch_seconds=3600.0)
    async with Consumer(settings, ch, amqp) as consumer:
        await publish(amqp, settings, *two_row_bodies(3))
        await eventually(lambda: consumer.pending_messages == 3, "three messages gathering")
        assert consumer.stats.rows_inserted == 0
    assert (consumer.stats.batches_at_stop, consumer.stats.messages_acked) == (1, 3)
    assert scalar(ch, "SELECT count() FROM events FINAL") == 6
    assert await messages_ready(amqp, settings) == 0


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_stop_requeues_what_clickhouse_cannot_take(settings: Settings, ch: Client, amqp) -> None:
    settings = settings.replace(consumer_batch_rows=10_000, consumer_batch_seconds=3600.0)
    db = settings.resolved_clickhouse_database
    ch.command(f"RENAME TABLE {db}.events TO {db}.events_away")
    async with Consumer(settings, ch, amqp) as consumer:
        await publish(amqp, settings, *two_row_bodies(3))
        await eventually(lambda: consumer.pending_messages == 3, "three messages gathering")
    assert (consumer.stats.messages_acked, consumer.stats.messages_requeued) == (0, 3)
    await eventually(lambda: _ready_is(amqp, settings, 3), "the three messages back on the queue")


def _drop_connection(name: str) -> None:
    """Close one AMQP connection from the broker's side, found by its client-given name (no other)."""
    listed = subprocess.run(["rabbitmqctl", "list_connections", "pid", "client_properties", "--no-table-headers"],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    pids = [line.split("\t")[0] for line in listed.splitlines() if name in line]
    assert len(pids) == 1, listed
    subprocess.run(["rabbitmqctl", "close_connection", pids[0], "test: dropped"], capture_output=True, check=True,
                   timeout=60)


@pytest.mark.slow
@pytest.mark.rabbitmq
@pytest.mark.clickhouse
@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl to drop a connection")
async def test_a_dropped_connection_loses_nothing(settings: Settings, ch: Client, amqp) -> None:
    """A delivery held when the connection drops comes back on the new channel; acking the old one fails
    harmlessly, the copy collapses, and everything is acknowledged in the end."""
    settings = settings.replace(consumer_batch_rows=6, consumer_batch_seconds=3600.0)
    name = f"bard-test-consumer-{uuid.uuid4().hex[:8]}"
    first, second = two_row_bodies(2)
    connection = await aio_pika.connect_robust(settings.amqp_url, reconnect_interval=0.2,
                                               client_properties={"connection_name": name})
    try:
        async with Consumer(settings, ch, connection) as consumer:
            await publish(amqp, settings, first)
            await eventually(lambda: consumer.pending_messages == 1, "the first message held")
            await asyncio.to_thread(_drop_connection, name)
            await eventually(lambda: consumer.pending_messages == 2, "the first message delivered again")
            await publish(amqp, settings, second)  # six rows now: the batch closes by size
            await eventually(lambda: consumer.stats.messages_acked == 3, "the batch acknowledged")
        assert consumer.stats.insert_failures == 0
    finally:
        await connection.close()
    assert scalar(ch, "SELECT count() FROM events FINAL") == 4
    assert await messages_ready(amqp, settings) == 0
