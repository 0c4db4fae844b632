"""The active sessions in PostgreSQL, kept for a group of accepted batches in one statement.

Event times are client milliseconds (they only widen a session's span); ``last_seen_at`` and ``expires_at``
are server time, which alone decides expiry (invariant 5). ``segment_id`` and ``app_name`` stay as the first
batch set them. ``INSERT ... ON CONFLICT DO UPDATE`` makes racing first batches of one session all succeed:
the later waits for the earlier's row and adds to it.

One statement per group (``unnest`` of arrays) costs PostgreSQL about what one row does. Batches of one
session within a group are merged first (a statement may not update a row twice), and rows go in session
order, so two groups in flight lock shared sessions in the same order and cannot deadlock.

The same statement keeps the links and buttons the batches' pages show and looks up the clicks the agent left
unmarked (:mod:`agent_api.click_targets`): one round trip for all three, as the group's transaction already has
two more (BEGIN, COMMIT) around the publish. Its lookup sees the table as it was before the statement, so a
target brought by another batch of the same group is matched in Python, and the later of the two wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg
import msgspec

from agent_api.batches import Batch, OpenClick, TargetsFound

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


# Parameters $8-$11: the click-target rows; $12-$14: the open clicks. For each click (c.i numbers them): the
# latest row at or before it that has its node or starts a page (at one time, a page's own mutations come after
# its snapshot), with the label if that row has the node.
KEEP_GROUP = f"""
WITH upserted AS ({UPSERT_ACTIVE_SESSIONS}),
kept_targets AS (
    INSERT INTO active_session_click_targets (session_id, since, starts_page, targets)
    SELECT * FROM unnest($8::uuid[], $9::bigint[], $10::boolean[], $11::jsonb[])
)
SELECT c.i, t.since, t.targets ->> c.node_id::text AS label
FROM unnest($12::uuid[], $13::integer[], $14::bigint[]) WITH ORDINALITY AS c(session_id, node_id, at, i)
CROSS JOIN LATERAL (
    SELECT t.since, t.targets FROM active_session_click_targets AS t
    WHERE t.session_id = c.session_id AND t.since <= c.at AND (t.starts_page OR t.targets ? c.node_id::text)
    ORDER BY t.since DESC, t.starts_page
    LIMIT 1
) AS t
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


async def keep_sessions(conn: asyncpg.Connection, batches: Sequence[Batch]) -> dict[int, dict[int, str]]:
    """Upsert the batches' sessions, keep their click targets, and name their open clicks that landed on a link
    or button: ``{batch position: {event index: label}}``."""
    merged = merge_by_session(batches)
    activities = list(merged.values())
    targets: list[tuple[uuid.UUID, TargetsFound]] = [(b.session_id, t) for b in batches for t in b.targets]
    clicks: list[tuple[int, uuid.UUID, OpenClick]] = [
        (position, b.session_id, click) for position, b in enumerate(batches) for click in b.open_clicks
    ]
    rows = await conn.fetch(
        KEEP_GROUP,
        list(merged),
        [a.app_name for a in activities],
        [a.first_event_at for a in activities],
        [a.last_event_at for a in activities],
        [a.max_idle_ms for a in activities],
        [a.event_count for a in activities],
        [a.error_count for a in activities],
        [session for session, _ in targets],
        [t.since for _, t in targets],
        [t.starts_page for _, t in targets],
        [msgspec.json.encode(t.labels).decode() for _, t in targets],
        [session for _, session, _ in clicks],
        [click.node_id for *_, click in clicks],
        [click.at for *_, click in clicks],
    )
    if not clicks:
        return {}
    stored: dict[int, tuple[int, str | None]] = {number: (since, label) for number, since, label in rows}
    in_group: dict[uuid.UUID, list[TargetsFound]] = {}
    for session, found in targets:
        in_group.setdefault(session, []).append(found)
    named: dict[int, dict[int, str]] = {}
    for number, (position, session, click) in enumerate(clicks, start=1):  # ORDINALITY counts from 1
        best = stored.get(number)
        for found in in_group.get(session, ()):
            if found.since <= click.at and (found.starts_page or click.node_id in found.labels):
                if best is None or found.since >= best[0]:
                    best = (found.since, found.labels.get(click.node_id))
        if best is not None and best[1] is not None:
            named.setdefault(position, {})[click.position] = best[1]
    return named
