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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg
import msgspec

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


STORE_CLICK_TARGETS = """
INSERT INTO active_session_click_targets (session_id, since, starts_page, targets)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::boolean[], $4::jsonb[])
"""

# For each open click (c.i numbers them): the latest row at or before the click that has its node or starts a
# page (at one time, a page's own mutations come after its snapshot); the label if that row has the node.
RESOLVE_OPEN_CLICKS = """
SELECT c.i, t.targets ->> c.node_id::text
FROM unnest($1::uuid[], $2::integer[], $3::bigint[]) WITH ORDINALITY AS c(session_id, node_id, at, i)
CROSS JOIN LATERAL (
    SELECT t.targets FROM active_session_click_targets AS t
    WHERE t.session_id = c.session_id AND t.since <= c.at AND (t.starts_page OR t.targets ? c.node_id::text)
    ORDER BY t.since DESC, t.starts_page
    LIMIT 1
) AS t
WHERE t.targets ? c.node_id::text
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


async def store_click_targets(conn: asyncpg.Connection, batches: Iterable[Batch]) -> None:
    """Keep the pages and targets the batches bring (after their sessions' upsert: the rows refer to them)."""
    sessions: list[uuid.UUID] = []
    since: list[int] = []
    starts_page: list[bool] = []
    targets: list[str] = []
    for batch in batches:
        for found in batch.targets:
            sessions.append(batch.session_id)
            since.append(found.since)
            starts_page.append(found.starts_page)
            targets.append(msgspec.json.encode(found.labels).decode())
    if sessions:
        await conn.execute(STORE_CLICK_TARGETS, sessions, since, starts_page, targets)


async def resolve_open_clicks(conn: asyncpg.Connection, batches: Sequence[Batch]) -> dict[int, dict[int, str]]:
    """The open clicks that are on a link or button: ``{batch position: {event index: label}}``."""
    owners: list[tuple[int, int]] = []  # (batch position, event index) of each open click, in order
    sessions: list[uuid.UUID] = []
    node_ids: list[int] = []
    times: list[int] = []
    for position, batch in enumerate(batches):
        for click in batch.open_clicks:
            owners.append((position, click.position))
            sessions.append(batch.session_id)
            node_ids.append(click.node_id)
            times.append(click.at)
    if not owners:
        return {}
    found: dict[int, dict[int, str]] = {}
    for number, label in await conn.fetch(RESOLVE_OPEN_CLICKS, sessions, node_ids, times):
        position, index = owners[number - 1]  # ORDINALITY counts from 1
        found.setdefault(position, {})[index] = label
    return found
