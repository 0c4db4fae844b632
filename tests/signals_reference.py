"""A plain-Python evaluator of the behaviour signals' definitions (:mod:`session_ender.signals`) over rrweb events.

Written from the definitions, not from the query: it reads each event as a dict (as ``json.loads`` gives it),
decides what it is with the agent API's strictness (a JSON integer is an ``int``, not a ``bool`` or a ``float``),
and checks every pair of events, with no sorting trick, no candidates and no ClickHouse. The tests hold
:func:`session_ender.signals.signal_rows` to it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

WINDOW_MS = 1000
RADIUS_PX = 30
MIN_CLICKS = 3
SCAN_LIMIT = 100
REACTION_SOURCES = (0, 3, 5, 14)  # mutation, scroll, input, selection
CONSOLE_PLUGIN = "rrweb/console@1"
INT64 = range(-(2**63), 2**64)  # what ClickHouse reads as a number (Int64 or UInt64)


class RecordedEvent(NamedTuple):
    """An event as stored: its identity, the rrweb event, and its click label ('' when it has none)."""

    batch_id: uuid.UUID
    seq: int
    event: dict[str, Any]
    label: str = ""


class Signal(NamedTuple):
    kind: str
    ts: int
    batch_id: uuid.UUID
    seq: int
    label: str


def _integer(value: object, *allowed: int) -> bool:
    return type(value) is int and value in allowed


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def is_click(event: dict[str, Any]) -> bool:
    data = _data(event)
    return event.get("type") == 3 and _integer(data.get("source"), 2) and _integer(data.get("type"), 2)


def is_reaction(event: dict[str, Any]) -> bool:
    if event.get("type") in (2, 4):
        return True
    return event.get("type") == 3 and _integer(_data(event).get("source"), *REACTION_SOURCES)


def is_console_error(event: dict[str, Any]) -> bool:
    if event.get("type") != 6:
        return False
    data = _data(event)
    payload = data.get("payload")
    return data.get("plugin") == CONSOLE_PLUGIN and isinstance(payload, dict) and payload.get("level") == "error"


def _coordinate(value: object) -> float | None:
    if type(value) is float and math.isfinite(value):
        return value
    if type(value) is int and value in INT64:
        return float(value)
    return None


def position(event: dict[str, Any]) -> tuple[float, float] | None:
    data = _data(event)
    x, y = _coordinate(data.get("x")), _coordinate(data.get("y"))
    return None if x is None or y is None else (x, y)


def follows_within_window(click_ts: int, other_ts: int) -> bool:
    return 0 <= other_ts - click_ts <= WINDOW_MS


def signals(events: Iterable[RecordedEvent]) -> list[Signal]:
    """Every signal of one session's events (copies of an event, same ``batch_id`` and ``seq``, count once)."""
    unique: dict[tuple[uuid.UUID, int], RecordedEvent] = {}
    for recorded in events:
        unique.setdefault((recorded.batch_id, recorded.seq), recorded)
    recorded_events = list(unique.values())
    clicks = [r for r in recorded_events if is_click(r.event)]
    reaction_times = [r.event["timestamp"] for r in recorded_events if is_reaction(r.event)]
    error_times = [r.event["timestamp"] for r in recorded_events if is_console_error(r.event)]
    found: list[Signal] = []
    for click in clicks:
        ts = click.event["timestamp"]
        if not any(follows_within_window(ts, t) for t in reaction_times):
            found.append(Signal("dead_click", ts, click.batch_id, click.seq, click.label))
        if any(follows_within_window(ts, t) for t in error_times):
            found.append(Signal("error_click", ts, click.batch_id, click.seq, click.label))
    found.extend(rage_clicks(clicks))
    return found


def rage_clicks(clicks: Sequence[RecordedEvent]) -> list[Signal]:
    """Greedy runs in click order (time, batch id, seq), each from its first click (see the definition)."""
    positioned = sorted((c for c in clicks if position(c.event) is not None),
                        key=lambda c: (c.event["timestamp"], c.batch_id, c.seq))
    used: set[int] = set()
    found: list[Signal] = []
    for i, first in enumerate(positioned):
        if i in used:
            continue
        t0 = first.event["timestamp"]
        x0, y0 = position(first.event) or (0.0, 0.0)
        later = [j for j in range(i + 1, len(positioned))
                 if follows_within_window(t0, positioned[j].event["timestamp"])][:SCAN_LIMIT]
        members = [i]
        for j in later:
            x, y = position(positioned[j].event) or (0.0, 0.0)
            dx, dy = x - x0, y - y0
            if j not in used and dx * dx + dy * dy <= RADIUS_PX * RADIUS_PX:
                members.append(j)
        if len(members) >= MIN_CLICKS:
            used.update(members)
            found.append(Signal("rage_click", t0, first.batch_id, first.seq, first.label))
    return found


def counts(found: Iterable[Signal]) -> tuple[int, int, int]:
    kinds = [s.kind for s in found]
    return kinds.count("rage_click"), kinds.count("dead_click"), kinds.count("error_click")
