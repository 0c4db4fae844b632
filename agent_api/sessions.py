"""The active sessions in PostgreSQL, kept for a group of accepted batches in one statement.

Event times are client milliseconds (they only widen a session's span); ``last_seen_at`` and ``expires_at``
are server time, which alone decides expiry (invariant 5). ``segment_id`` and ``app_name`` stay as the first
batch set them. ``INSERT ... ON CONFLICT DO UPDATE`` makes racing first batches of one session all succeed:
the later waits for the earlier's row and adds to it.

The session's metadata rides along: the client (browser, OS, device type) and the country as first known (each
the first non-empty one: a batch from an unknown address leaves a known country alone); the entry page (URL,
path, viewport) of its earliest Meta event and the exit path of its latest, by client time (``entry_at`` and
``exit_at`` keep those times, NULL before any Meta event; :func:`agent_api.pages.combine` is the same rule in
Python); pages and clicks add up like the other counts.

One statement per group (``unnest`` of arrays) costs PostgreSQL about what one row does. Batches of one
session within a group are merged first (a statement may not update a row twice), and rows go in session
order, so two groups in flight lock shared sessions in the same order and cannot deadlock.

The same statement keeps the links, buttons and text fields the batches' pages show and looks up the clicks the
agent left unmarked and the inputs on nodes their batch did not show (:mod:`agent_api.click_targets`): one round
trip for all three, as the group's transaction already has two more (BEGIN, COMMIT) around the publish. Its
lookup sees the table as it was before the statement, so the best target another batch of the same group brought
is found in Python and passed along, and the later of the two wins. The clicks it names count toward their
sessions' ``click_count`` in that same statement (inputs count toward nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from agent_api.batches import Batch, OpenClick, OpenInput, TargetsFound
from agent_api.pages import PagesSeen, combine
from agent_api.tagging import Tag
from agent_api.user_agents import ClientDevice

NAMED_CLICKS = "/*named clicks*/"

_UPSERT = f"""
INSERT INTO active_sessions AS s (
    session_id, app_name, first_event_at, last_event_at, max_idle_ms, event_count, error_count,
    browser, browser_major, os, device_type, country, viewport_width, viewport_height, entry_at, entry_url,
    entry_path, exit_at, exit_path, page_count, click_count, last_seen_at, expires_at
)
SELECT u.session_id, u.app_name, u.first_event_at, u.last_event_at, u.max_idle_ms, u.event_count, u.error_count,
       u.browser, u.browser_major, u.os, u.device_type, u.country, COALESCE(p.viewport_width, 0),
       COALESCE(p.viewport_height, 0), p.entry_at, COALESCE(p.entry_url, ''), COALESCE(p.entry_path, ''), p.exit_at,
       COALESCE(p.exit_path, ''), COALESCE(p.page_count, 0), u.click_count{NAMED_CLICKS},
       now(), now() + u.max_idle_ms * interval '1 millisecond'
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::integer[], $6::bigint[], $7::bigint[],
            $8::text[], $9::integer[], $10::text[], $11::text[], $12::text[], $13::bigint[])
     AS u(session_id, app_name, first_event_at, last_event_at, max_idle_ms, event_count, error_count,
          browser, browser_major, os, device_type, country, click_count)
LEFT JOIN unnest($14::uuid[], $15::bigint[], $16::bigint[], $17::text[], $18::text[], $19::integer[], $20::integer[],
                 $21::bigint[], $22::text[])
     AS p(session_id, page_count, entry_at, entry_url, entry_path, viewport_width, viewport_height, exit_at, exit_path)
     ON p.session_id = u.session_id
ORDER BY u.session_id
ON CONFLICT (session_id) DO UPDATE SET
    first_event_at  = LEAST(s.first_event_at, EXCLUDED.first_event_at),
    last_event_at   = GREATEST(s.last_event_at, EXCLUDED.last_event_at),
    max_idle_ms     = EXCLUDED.max_idle_ms,
    event_count     = s.event_count + EXCLUDED.event_count,
    error_count     = s.error_count + EXCLUDED.error_count,
    browser         = CASE WHEN s.browser = '' AND s.os = '' AND s.device_type = '' THEN EXCLUDED.browser
                           ELSE s.browser END,
    browser_major   = CASE WHEN s.browser = '' AND s.os = '' AND s.device_type = '' THEN EXCLUDED.browser_major
                           ELSE s.browser_major END,
    os              = CASE WHEN s.browser = '' AND s.os = '' AND s.device_type = '' THEN EXCLUDED.os
                           ELSE s.os END,
    device_type     = CASE WHEN s.browser = '' AND s.os = '' AND s.device_type = '' THEN EXCLUDED.device_type
                           ELSE s.device_type END,
    country         = CASE WHEN s.country = '' THEN EXCLUDED.country ELSE s.country END,
    entry_at        = LEAST(s.entry_at, EXCLUDED.entry_at),
    entry_url       = CASE WHEN s.entry_at IS NULL OR EXCLUDED.entry_at < s.entry_at THEN EXCLUDED.entry_url
                           ELSE s.entry_url END,
    entry_path      = CASE WHEN s.entry_at IS NULL OR EXCLUDED.entry_at < s.entry_at THEN EXCLUDED.entry_path
                           ELSE s.entry_path END,
    viewport_width  = CASE WHEN s.entry_at IS NULL OR EXCLUDED.entry_at < s.entry_at THEN EXCLUDED.viewport_width
                           ELSE s.viewport_width END,
    viewport_height = CASE WHEN s.entry_at IS NULL OR EXCLUDED.entry_at < s.entry_at THEN EXCLUDED.viewport_height
                           ELSE s.viewport_height END,
    exit_at         = GREATEST(s.exit_at, EXCLUDED.exit_at),
    exit_path       = CASE WHEN s.exit_at IS NULL OR EXCLUDED.exit_at >= s.exit_at THEN EXCLUDED.exit_path
                           ELSE s.exit_path END,
    page_count      = s.page_count + EXCLUDED.page_count,
    click_count     = s.click_count + EXCLUDED.click_count,
    last_seen_at    = EXCLUDED.last_seen_at,
    expires_at      = EXCLUDED.expires_at
"""

UPSERT_ACTIVE_SESSIONS = _UPSERT.replace(NAMED_CLICKS, "")
"""The session upsert alone ($1-$22, :func:`session_parameters`), for sessions without open clicks to name."""

# Parameters $23-$27: the target rows (click targets in $26, text fields in $27); $28-$33: the open clicks and
# inputs, each with the best target the group itself brought (its time and label, NULL for none:
# :func:`best_in_group`). For each (c.i numbers them): the latest stored row at or before it that has its node
# among the targets of its kind (``targets`` for a click, ``inputs`` for an input) or starts a page (at one time,
# a page's own mutations come after its snapshot), with the label if that row has the node; the group's own
# target wins when it is as late.
_COUNT_NAMED = """
       + (SELECT count(*) FROM named AS n
          WHERE n.session_id = u.session_id AND n.label IS NOT NULL AND NOT n.is_input)"""
KEEP_GROUP = f"""
WITH named AS (
    SELECT c.i, c.session_id, c.is_input,
           CASE WHEN c.group_since IS NOT NULL AND (t.since IS NULL OR c.group_since >= t.since) THEN c.group_label
                ELSE t.label END AS label
    FROM unnest($28::uuid[], $29::integer[], $30::bigint[], $31::boolean[], $32::bigint[], $33::text[])
         WITH ORDINALITY AS c(session_id, node_id, at, is_input, group_since, group_label, i)
    LEFT JOIN LATERAL (
        SELECT t.since, t.nodes ->> c.node_id::text AS label
        FROM (SELECT since, starts_page, CASE WHEN c.is_input THEN inputs ELSE targets END AS nodes
              FROM active_session_click_targets
              WHERE session_id = c.session_id AND since <= c.at) AS t
        WHERE t.starts_page OR t.nodes ? c.node_id::text
        ORDER BY t.since DESC, t.starts_page
        LIMIT 1
    ) AS t ON true
),
upserted AS ({_UPSERT.replace(NAMED_CLICKS, _COUNT_NAMED)}),
kept_targets AS (
    INSERT INTO active_session_click_targets (session_id, since, starts_page, targets, inputs)
    SELECT * FROM unnest($23::uuid[], $24::bigint[], $25::boolean[], $26::jsonb[], $27::jsonb[])
)
SELECT i, label FROM named WHERE label IS NOT NULL
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
    client: ClientDevice
    pages: PagesSeen
    click_count: int
    country: str = ""


def merge_by_session(batches: Iterable[Batch]) -> dict[uuid.UUID, SessionActivity]:
    """In arrival order: the first batch names the app, the last sets the idle time, times widen, counts add, the
    first known client and country stay, pages combine (:func:`agent_api.pages.combine`)."""
    merged: dict[uuid.UUID, SessionActivity] = {}
    for batch in batches:
        activity = merged.get(batch.session_id)
        if activity is None:
            merged[batch.session_id] = SessionActivity(
                batch.app_name, batch.first_event_at, batch.last_event_at, batch.max_idle_ms,
                len(batch.timestamps), batch.error_count, batch.client, batch.pages, batch.click_count,
                batch.country,
            )
        else:
            activity.first_event_at = min(activity.first_event_at, batch.first_event_at)
            activity.last_event_at = max(activity.last_event_at, batch.last_event_at)
            activity.max_idle_ms = batch.max_idle_ms
            activity.event_count += len(batch.timestamps)
            activity.error_count += batch.error_count
            if not activity.client.is_known:
                activity.client = batch.client
            if not activity.country:
                activity.country = batch.country
            activity.pages = combine(activity.pages, batch.pages)
            activity.click_count += batch.click_count
    return merged


def session_parameters(merged: dict[uuid.UUID, SessionActivity]) -> list[list[Any]]:
    """The upsert's parameters: $1-$13 for every session, $14-$22 for the sessions whose batches had a Meta event
    (most batches have none: not sending their empty pages saves the agent API ~0.6 us per array element)."""
    activities = list(merged.values())
    clients = [a.client for a in activities]
    seen = [(session, a.pages) for session, a in merged.items() if a.pages.page_count]
    pages = [p for _, p in seen]
    return [
        list(merged),
        [a.app_name for a in activities],
        [a.first_event_at for a in activities],
        [a.last_event_at for a in activities],
        [a.max_idle_ms for a in activities],
        [a.event_count for a in activities],
        [a.error_count for a in activities],
        [c.browser for c in clients],
        [c.browser_major for c in clients],
        [c.os for c in clients],
        [c.device_type for c in clients],
        [a.country for a in activities],
        [a.click_count for a in activities],
        [session for session, _ in seen],
        [p.page_count for p in pages],
        [p.entry_at for p in pages],
        [p.entry_url for p in pages],
        [p.entry_path for p in pages],
        [p.viewport_width for p in pages],
        [p.viewport_height for p in pages],
        [p.exit_at for p in pages],
        [p.exit_path for p in pages],
    ]


_NO_NODES = "{}"


async def keep_sessions(conn: asyncpg.Connection, batches: Sequence[Batch]) -> dict[int, dict[int, Tag]]:
    """Upsert the batches' sessions, keep their targets, and name their open clicks that landed on a link or
    button and their open inputs that were in a text field: ``{batch position: {event index: tag}}``."""
    targets: list[tuple[uuid.UUID, TargetsFound]] = [(b.session_id, t) for b in batches for t in b.targets]
    opened: list[tuple[int, uuid.UUID, OpenClick | OpenInput]] = [
        (position, b.session_id, click) for position, b in enumerate(batches) for click in b.open_clicks
    ]
    opened += [(position, b.session_id, event) for position, b in enumerate(batches) for event in b.open_inputs]
    in_group = best_in_group(targets, opened) if opened else []
    encode = msgspec.json.encode
    rows = await conn.fetch(
        KEEP_GROUP,
        *session_parameters(merge_by_session(batches)),
        [session for session, _ in targets],
        [t.since for _, t in targets],
        [t.starts_page for _, t in targets],
        [encode(t.labels).decode() for _, t in targets],
        [encode(t.inputs).decode() if t.inputs else _NO_NODES for _, t in targets],
        [session for _, session, _ in opened],
        [event.node_id for *_, event in opened],
        [event.at for *_, event in opened],
        [isinstance(event, OpenInput) for *_, event in opened],
        [since for since, _ in in_group],
        [label for _, label in in_group],
    )
    named: dict[int, dict[int, Tag]] = {}
    for number, label in rows:
        position, _, event = opened[number - 1]  # ORDINALITY counts from 1
        kind = "input" if isinstance(event, OpenInput) else "click"
        named.setdefault(position, {})[event.position] = Tag(kind, label, False)
    return named


def best_in_group(
    targets: Sequence[tuple[uuid.UUID, TargetsFound]], opened: Sequence[tuple[int, uuid.UUID, OpenClick | OpenInput]]
) -> list[tuple[int | None, str | None]]:
    """For each open click or input, the latest target the group's own batches brought at or before it that has
    its node (among the click targets, or the text fields) or starts a page (the later of two at one time):
    ``(since, label or None)``; ``(None, None)`` for none."""
    by_session: dict[uuid.UUID, list[TargetsFound]] = {}
    for session, found in targets:
        by_session.setdefault(session, []).append(found)
    best: list[tuple[int | None, str | None]] = []
    for _, session, event in opened:
        since: int | None = None
        label: str | None = None
        is_input = isinstance(event, OpenInput)
        for found in by_session.get(session, ()):
            nodes = found.inputs if is_input else found.labels
            if found.since <= event.at and (found.starts_page or event.node_id in nodes):
                if since is None or found.since >= since:
                    since, label = found.since, nodes.get(event.node_id)
        best.append((since, label))
    return best
