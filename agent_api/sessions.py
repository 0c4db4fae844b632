"""The active sessions in PostgreSQL, upserted for a group of accepted batches in one statement.

Event times are client milliseconds (they only widen a session's span); ``last_seen_at`` and ``expires_at``
are server time, which alone decides expiry (invariant 5). ``segment_id`` and ``app_name`` stay as the first
batch set them. ``INSERT ... ON CONFLICT DO UPDATE`` makes racing first batches of one session all succeed:
the later waits for the earlier's row and adds to it.

One statement per group (``unnest`` of arrays) costs PostgreSQL about what one row does. Batches of one
session within a group are merged first (a statement may not update a row twice), and rows go in session
order, so two groups in flight lock shared sessions in the same order and cannot deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from agent_api.batches import Batch

UPSERT_ACTIVE_SESSIONS = """
INSERT INTO active_sessions AS s (
    session_id, app_name, first_event_at, last_event_at, max_idle_ms, event_count, error_count,
    last_seen_at, expires_at
)
SELECT u.session_id, u.app_name, u.first_event_at, u.last_event_at, u.max_idle_ms, u.event_count, u.error_count,
       now(), now() + u.max_idle_ms * interval '1 millisecond'
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::integer[], $6::bigint[], $7::bigint[])
     AS u(session_id, app_name, first_event_at, last_event_at, max_idle_ms, event_count, error_count)
ORDER BY u.session_id
ON CONFLICT (session_id) DO UPDATE SET
    first_event_at = LEAST(s.first_event_at, EXCLUDED.first_event_at),
    last_event_at  = GREATEST(s.last_event_at, EXCLUDED.last_event_at),
    max_idle_ms    = EXCLUDED.max_idle_ms,
    event_count    = s.event_count + EXCLUDED.event_count,
    error_count    = s.error_count + EXCLUDED.error_count,
    last_seen_at   = EXCLUDED.last_seen_at,
    expires_at     = EXCLUDED.expires_at
"""


@dataclass(slots=True)
class SessionActivity:
    """What a group of batches did to one session."""

    app_name: str
    first_event_at: int
    last_event_at: int
    max_idle_ms: int
    event_count: int
    error_count: int


def merge_by_session(batches: Iterable[Batch]) -> dict[uuid.UUID, SessionActivity]:
    """In arrival order: the first batch names the app, the last sets the idle time, times widen, counts add."""
    merged: dict[uuid.UUID, SessionActivity] = {}
    for batch in batches:
        activity = merged.get(batch.session_id)
        if activity is None:
            merged[batch.session_id] = SessionActivity(
                batch.app_name, batch.first_event_at, batch.last_event_at, batch.max_idle_ms,
                len(batch.timestamps), batch.error_count,
            )
        else:
            activity.first_event_at = min(activity.first_event_at, batch.first_event_at)
            activity.last_event_at = max(activity.last_event_at, batch.last_event_at)
            activity.max_idle_ms = batch.max_idle_ms
            activity.event_count += len(batch.timestamps)
            activity.error_count += batch.error_count
    return merged


async def upsert_active_sessions(conn: asyncpg.Connection, batches: Iterable[Batch]) -> None:
    merged = merge_by_session(batches)
    activities = list(merged.values())
    await conn.execute(
        UPSERT_ACTIVE_SESSIONS,
        list(merged),
        [a.app_name for a in activities],
        [a.first_event_at for a in activities],
        [a.last_event_at for a in activities],
        [a.max_idle_ms for a in activities],
        [a.event_count for a in activities],
        [a.error_count for a in activities],
    )
