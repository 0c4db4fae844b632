"""Active sessions, read from PostgreSQL (they reach ClickHouse's ``sessions`` only when they end)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from replayer_api.cursors import Cursor
from replayer_api.parameters import iso_ms


@dataclass(frozen=True)
class ActivePage:
    sessions: list[dict[str, Any]]
    next_cursor: Cursor | None


SORT = "last_event"
ORDER = "desc"


async def active_page(pool: asyncpg.Pool, apps: tuple[str, ...], limit: int, after: Cursor | None) -> ActivePage:
    """Active sessions, most recent activity first, keyset-paged on (last_event_at, session_id)."""
    after_key = after.key if after is not None else None
    after_id = after.session_id if after is not None else None
    records = await pool.fetch(
        """SELECT session_id, app_name, first_event_at, last_event_at, event_count, error_count,
                  last_seen_at, expires_at
           FROM active_sessions
           WHERE (cardinality($1::text[]) = 0 OR app_name = ANY($1::text[]))
             AND ($2::bigint IS NULL OR (last_event_at, session_id) < ($2::bigint, $3::uuid))
           ORDER BY last_event_at DESC, session_id DESC
           LIMIT $4""",
        list(apps), after_key, after_id, limit + 1,
    )
    sessions = [_active_json(r) for r in records[:limit]]
    next_cursor = None
    if len(records) > limit:
        last = records[limit - 1]
        next_cursor = Cursor(SORT, ORDER, int(last["last_event_at"]), last["session_id"])
    return ActivePage(sessions, next_cursor)


async def find_active(pool: asyncpg.Pool, session_id: uuid.UUID) -> dict[str, Any] | None:
    record = await pool.fetchrow(
        """SELECT session_id, app_name, first_event_at, last_event_at, event_count, error_count,
                  last_seen_at, expires_at
           FROM active_sessions WHERE session_id = $1""",
        session_id,
    )
    return _active_json(record) if record is not None else None


def _active_json(record: asyncpg.Record) -> dict[str, Any]:
    return {
        "session_id": str(record["session_id"]),
        "app_name": record["app_name"],
        "started_at": iso_ms(record["first_event_at"]),
        "last_event_at": iso_ms(record["last_event_at"]),
        "duration_ms": max(0, record["last_event_at"] - record["first_event_at"]),
        "event_count": record["event_count"],
        "error_count": record["error_count"],
        "last_seen_at": record["last_seen_at"].isoformat(),
        "expires_at": record["expires_at"].isoformat(),
    }
