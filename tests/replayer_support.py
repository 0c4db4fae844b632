"""Shared by the replayer API's tests: the app driven in process with its lifespan, and data put straight into
ClickHouse and PostgreSQL in the shapes the ingest path and the session ender leave."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from clickhouse_connect.driver.client import Client
from starlette.types import Receive, Scope, Send

from bard.settings import Settings
from replayer_api.app import create_app

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def clickhouse_uuid_key(session_id: uuid.UUID) -> tuple[int, int]:
    """ClickHouse orders UUIDs by their low 64 bits, then their high 64 bits (checked in the tests)."""
    return session_id.int & (2**64 - 1), session_id.int >> 64


@contextlib.asynccontextmanager
async def open_api(settings: Settings, *, authorized: bool = True, address: str = "127.0.0.1",
                   **client_options: object) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its real lifespan (pool, ClickHouse clients), requests through httpx's ASGI transport from
    the client ``address``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            # What a server does with the lifespan's state: every request gets a shallow copy.
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        headers = {"Authorization": f"Bearer {settings.dashboard_token}"} if authorized else {}
        transport = httpx.ASGITransport(app=with_state, client=(address, 50000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers=headers, **client_options) as client:  # type: ignore[arg-type]
            yield client


@dataclass(frozen=True)
class EndedSession:
    session_id: uuid.UUID
    app_name: str
    started_ms: int
    duration_ms: int
    error_count: int
    event_count: int = 10

    @property
    def ended_ms(self) -> int:
        return self.started_ms + self.duration_ms


def insert_sessions(ch: Client, sessions: Sequence[EndedSession], version: int = 1) -> None:
    ch.insert(
        "sessions",
        [[s.session_id, s.app_name, at(s.started_ms), at(s.ended_ms), s.event_count, s.error_count,
          [uuid.uuid4()], [s.event_count], [s.error_count], version] for s in sessions],
        column_names=["session_id", "app_name", "started_at", "ended_at", "event_count", "error_count",
                      "segments", "segment_event_counts", "segment_error_counts", "version"],
    )


def insert_events(ch: Client, session_id: uuid.UUID, app_name: str, events: Sequence[dict[str, Any]],
                  batch_id: uuid.UUID | None = None) -> None:
    """Events as the ingest views leave them: one row each, the rrweb event kept as its JSON text."""
    batch = batch_id or uuid.uuid4()
    ch.insert(
        "events",
        [[session_id, app_name, at(e["timestamp"]), e["type"], batch, seq, json.dumps(e), at(e["timestamp"])]
         for seq, e in enumerate(events)],
        column_names=["session_id", "app_name", "ts", "type", "batch_id", "seq", "event", "received_at"],
    )


def insert_conversions(ch: Client, rows: Sequence[tuple[uuid.UUID, str, int, str, str]]) -> None:
    """``(session_id, app_name, ts_ms, kind, label)`` rows of ``conversion_events``."""
    ch.insert(
        "conversion_events",
        [[sid, app, at(ts), kind, label, uuid.uuid4(), 0] for sid, app, ts, kind, label in rows],
        column_names=["session_id", "app_name", "ts", "kind", "label", "batch_id", "seq"],
    )


async def insert_active(pool: asyncpg.Pool, session_id: uuid.UUID, app_name: str, first_ms: int, last_ms: int,
                        events: int = 5, errors: int = 0) -> None:
    await pool.execute(
        """INSERT INTO active_sessions (session_id, app_name, first_event_at, last_event_at, max_idle_ms,
               event_count, error_count, expires_at)
           VALUES ($1, $2, $3, $4, 60000, $5, $6, now() + interval '1 minute')""",
        session_id, app_name, first_ms, last_ms, events, errors,
    )


async def clickhouse_snapshot(ch: Client) -> dict[str, int]:
    """Rows in each table a request could write to."""
    [(sessions, events, conversions)] = ch.query(
        "SELECT (SELECT count() FROM sessions), (SELECT count() FROM events), (SELECT count() FROM conversion_events)"
    ).result_rows
    return {"sessions": int(sessions), "events": int(events), "conversion_events": int(conversions)}


async def postgres_snapshot(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    rows = await pool.fetch("SELECT id, name, definition::text, updated_at, deleted_at FROM funnels ORDER BY id")
    return [tuple(r) for r in rows]
