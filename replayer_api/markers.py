"""A session's markers: its clicks, custom events and console errors in time order, without its replay.

What counts is what :mod:`agent_api.tagging` counts: a click is an rrweb mouse click (type 3, ``data.source`` 2,
``data.type`` 2), tagged or not, labelled with its conversion label when it was tagged (the row of
``conversion_events`` with the same ``(batch_id, seq)``, kind ``click``: the agent's mark or a target Bard named);
a custom event is any type 5 event, labelled by ``data.tag``; an error is a type 6 console-plugin event at level
``error``, labelled by its message: the logged arguments (each a JSON-stringified value), a string argument
unquoted, joined with spaces and cut at :data:`MAX_ERROR_LABEL` characters.

The behaviour signals (rage, dead and error clicks, :mod:`session_ender.signals`) are markers too, of their own
kinds, labelled with the clicked element's text (``None`` for an element Bard does not name), at their click's
position. They are computed when the session is moved to ClickHouse, so an active session has none yet.

Events reach ``events`` while a session is still active, so this works for active and ended sessions alike.
``events`` is sorted by ``(session_id, ts, batch_id, seq)``: one session is a range read, and ``FINAL`` collapses
the copies of a redelivered batch. The JSON fields are read in ClickHouse; the one value, the session id, is
bound.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from replayer_api.warehouse import Warehouse

MAX_MARKERS = 10_000
MAX_ERROR_LABEL = 500

FIRST_EVENT = (
    "SELECT toUnixTimestamp64Milli(ts) FROM events WHERE session_id = {session:UUID} ORDER BY ts LIMIT 1"
)

# The label of an error: each logged argument is a JSON text, one that is a JSON string is shown unquoted.
MARKERS = (
    "SELECT toUnixTimestamp64Milli(ts), kind, "
    "multiIf(kind = 'click', if(tagged = 1, tag, NULL), "
    "kind = 'custom', JSONExtract(event, 'data', 'tag', 'Nullable(String)'), "
    "substringUTF8(arrayStringConcat(arrayMap("
    "a -> if(isValidJSON(a) AND JSONType(a) = 'String', JSONExtractString(a), a), "
    "JSONExtract(event, 'data', 'payload', 'payload', 'Array(String)')), ' '), 1, {label_chars:UInt64})) AS label, "
    "if(kind = 'click', JSONExtract(event, 'data', 'x', 'Nullable(Int64)'), NULL) AS x, "
    "if(kind = 'click', JSONExtract(event, 'data', 'y', 'Nullable(Int64)'), NULL) AS y "
    "FROM ("
    "SELECT ts, batch_id, seq, event, multiIf(type = 3, 'click', type = 5, 'custom', 'error') AS kind "
    "FROM events FINAL WHERE session_id = {session:UUID} AND type IN (3, 5, 6) AND ("
    "(type = 3 AND JSONExtractInt(event, 'data', 'source') = 2 AND JSONExtractInt(event, 'data', 'type') = 2) "
    "OR type = 5 "
    "OR (type = 6 AND JSONExtractString(event, 'data', 'plugin') = 'rrweb/console@1' "
    "AND JSONExtractString(event, 'data', 'payload', 'level') = 'error'))"
    ") AS marked "
    # Clicks tagged at ingest, by the event's identity; copies of a redelivered batch collapse in the GROUP BY.
    "LEFT JOIN ("
    "SELECT batch_id, seq, 1 AS tagged, any(label) AS tag FROM conversion_events "
    "WHERE session_id = {session:UUID} AND kind = 'click' GROUP BY batch_id, seq"
    ") AS clicks USING (batch_id, seq) "
    "ORDER BY ts, batch_id, seq LIMIT {limit:UInt64}"
)


# The session's signals, each once (copies of a row collapse in the GROUP BY), with its click's position.
SIGNALS = (
    "SELECT t, kind, label, x, y FROM ("
    "SELECT toUnixTimestamp64Milli(ts) AS t, toString(kind) AS kind, nullIf(label, '') AS label, batch_id, seq "
    "FROM conversion_events WHERE kind IN ('rage_click', 'dead_click', 'error_click') "
    "AND session_id = {session:UUID} GROUP BY ts, kind, label, batch_id, seq"
    ") AS signals LEFT JOIN ("
    "SELECT batch_id, seq, any(JSONExtract(event, 'data', 'x', 'Nullable(Int64)')) AS x, "
    "any(JSONExtract(event, 'data', 'y', 'Nullable(Int64)')) AS y FROM events "
    "WHERE session_id = {session:UUID} AND type = 3 GROUP BY batch_id, seq"
    ") AS clicks USING (batch_id, seq) ORDER BY t, kind LIMIT {limit:UInt64}"
)


@dataclass(frozen=True)
class Marker:
    kind: str  # "click", "custom", "error", or a signal: "rage_click", "dead_click", "error_click"
    at_ms: int
    label: str | None
    x: int | None
    y: int | None


@dataclass(frozen=True)
class SessionMarkers:
    first_event_ms: int
    markers: list[Marker]
    truncated: bool


async def session_markers(warehouse: Warehouse, session_id: uuid.UUID) -> SessionMarkers | None:
    """The session's first :data:`MAX_MARKERS` markers in (timestamp, batch, place in batch) order, and the
    moment of its first event of any kind; ``None`` when it has no events."""
    parameters = {"session": str(session_id)}
    first = await warehouse.rows(FIRST_EVENT, parameters)
    if not first:
        return None
    rows, signals = await asyncio.gather(
        warehouse.rows(MARKERS, {**parameters, "label_chars": MAX_ERROR_LABEL, "limit": MAX_MARKERS + 1}),
        warehouse.rows(SIGNALS, {**parameters, "limit": MAX_MARKERS + 1}),
    )
    # Both in time order; a signal after the click it is about (sorted() is stable).
    merged = sorted([*rows, *signals], key=lambda row: int(row[0]))
    markers = [Marker(kind, int(at_ms), label, x, y) for at_ms, kind, label, x, y in merged[:MAX_MARKERS]]
    return SessionMarkers(int(first[0][0]), markers, len(merged) > MAX_MARKERS)
