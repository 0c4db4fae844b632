"""Shared by the ingest tests: queue messages in the agent API's format, publishing them, waiting for the
consumer."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
import pytest

from bard.broker import declare_topology
from bard.settings import Settings
from tests import bardrr_events as bardrr

WAIT_SECONDS = 60.0  # a ceiling for a busy machine, never a performance assertion


def ingest_rows(events: list[dict[str, Any]], session_id: str, app_name: str = "shop") -> list[dict[str, Any]]:
    """Rows in the queue's format (``clickhouse.schema.INGEST_COLUMNS``), tagged as the agent API tags what the
    agent marked (clicks it names from the page's snapshot are left untagged here)."""
    batch_id = str(uuid.uuid4())
    rows = []
    for seq, event in enumerate(events):
        kind, label = "", ""
        conversion = event.get("conversionData") or {}
        if event["type"] == 3 and conversion.get("eventType") == "click":
            kind, label = "click", " ".join(conversion["textContent"].split())[:256]
        elif event["type"] == 5:
            kind, label = "custom", event["data"]["tag"]
        is_error = int(event["type"] == 6 and event["data"]["payload"]["level"] == "error")
        rows.append({
            "session_id": session_id, "app_name": app_name, "batch_id": batch_id, "seq": seq,
            "ts": event["timestamp"], "type": event["type"], "event": event, "kind": kind, "label": label,
            "is_error": is_error, "received_at": bardrr.now_ms(),
        })
    return rows


def message_body(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows)


async def publish(connection: aio_pika.abc.AbstractConnection, settings: Settings, *bodies: bytes) -> None:
    async with connection.channel(publisher_confirms=True) as channel:
        exchange, _ = await declare_topology(channel, settings)
        for body in bodies:
            await exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type="application/json"),
                routing_key=settings.amqp_queue,
            )


async def messages_ready(connection: aio_pika.abc.AbstractConnection, settings: Settings) -> int:
    async with connection.channel() as channel:
        queue = await channel.declare_queue(settings.amqp_queue, passive=True)
        assert queue.declaration_result.message_count is not None
        return queue.declaration_result.message_count


async def eventually(condition: Callable[[], Any], what: str) -> None:
    """Poll ``condition`` (sync or async) until it holds; fail naming ``what`` after a generous ceiling."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
