"""Behaviour signals: rage clicks, dead clicks and error clicks, computed on the server from the recorded events.

Definitions (client timestamps in milliseconds, rrweb's ``timestamp``; "within 1 s after a click at t" means
at a time in [t, t + 1000]: 1000 ms counts, 1001 ms does not, and an event of the same millisecond as the click
counts as following it whatever its place in the stream, since rrweb stamps a click and the change it causes
alike and they may travel in different batches):

- A **click** is an rrweb mouse click: type 3, ``data.source`` the JSON integer 2 (MouseInteraction),
  ``data.type`` the JSON integer 2 (Click), as :mod:`agent_api.events` reads it (``is_click``). Its position is
  ``data.x``, ``data.y`` when both are JSON numbers; a click without one is never part of a rage click.
- A **rage click** is 3 or more clicks within 1 s, each within 30 px of the first: Euclidean distance,
  ``dx² + dy² <= 30²`` (29 px yes, 30 px yes, 31 px no), measured from the run's first click, not from the
  previous one. Runs are found greedily in click order (time, then ``batch_id``, then ``seq``: the tie-break
  between clicks of one millisecond): a click not yet used starts a candidate run made of itself and every
  later unused click within 1 s after it and within 30 px of it; with 3 or more clicks the run is one rage
  click, at its first click, and its clicks are used (a click is in at most one rage click); with fewer, nothing
  is used and the next click is tried. So a burst at one spot longer than a second is one rage click per such
  run (clicks every 300 ms from 0 to 1800 ms: runs 0-900 and 1200-1800, two), and a failed start does not hide a
  later run (clicks at 0, 900, 1100 and 1500 ms: the run from 0 has two clicks, the run from 900 has three).
  A run looks at no more than :data:`RAGE_SCAN_LIMIT` positioned clicks after its first within the second: no
  hand clicks that fast, and it bounds what a hostile agent can make the ender do.
- A **dead click** is a click followed within 1 s by no *reaction*: a DOM mutation (type 3 source 0), a scroll
  (3), an input (5), a selection (14), or a new page (a Meta event, type 4, or a FullSnapshot, type 2). Mouse moves,
  other mouse interactions (focus, mouseup...), viewport resizes, style sheet, canvas and media changes do not
  save a click. A click near the end of a recording with nothing after it is dead.
- An **error click** is a click followed within 1 s by a console error: a type 6 event of the rrweb console
  plugin (``data.plugin`` ``rrweb/console@1``) at ``data.payload.level`` ``error``, as :mod:`agent_api.tagging`
  counts errors.

The three are independent: one click can be dead and an error click, and be the first of a rage click. Copies
of an event (a redelivered batch) count once. ClickHouse's JSON parser decides what an event holds; it reads a
repeated key's first occurrence and no escaped key names, which the agent API's decoder reads differently: such
an event may be read differently here than when it was tagged.

Where they are computed: at the session ender's move, over the whole session. By then every event of the
session is in ClickHouse (the ingest lag is under a second, the idle timeout is minutes), so the answer is exact
however the events were batched (the agent sends batches of 10: a rage click often spans two), and a session
moved again after a late batch is computed again over all of its events. (Not so if the ingest lags behind by
more than the idle timeout and its grace, e.g. while ClickHouse was down: the move then sees part of the session;
nothing checks for that.) The move does not read the rrweb JSON in ``events``: the sessions of one move are
scattered over that table's granules, so reading their clicks decompresses most of its ``event`` column,
snapshots included (measured ~15 s per batch of 5000 sessions over 10 M events, ~20x the query below,
``bench/signals.py``). Instead ClickHouse extracts at ingest what the signals read of each click, reaction and
console error, a few bytes each, into ``signal_inputs`` (a materialized view on ``ingest``, migration 5 in
:mod:`clickhouse.schema`; it reads the common rrweb shapes without a JSON parse), and the move reads that.

How the move computes them: one query (:func:`signals_query`) per batch of sessions over ``signal_inputs``,
grouped by session, with array functions, each linear after one sort: the session's rows as integers (time and
role, so that a reaction or an error of a click's millisecond sorts after the click), the time of the next
reaction and of the next error at or after each click (``arrayReverseFill``): a click is dead when the first is
missing or more than 1000 ms later, an error click when the second is at most 1000 ms later; and rage
*candidates*, positioned clicks whose second next click is at most 1000 ms later (the first click of any rage run
is one), and the clicks at most 1000 ms after the latest candidate, *near* ones (every click of any rage run is
one, whatever the order of the clicks of one millisecond). Only clicks that are dead, error or near come back;
the greedy runs are then found in Python over the near ones (:func:`rage_anchors`), which is exact because no
other click can be in a run. ``tests/signals_reference.py`` evaluates the definitions in plain Python over rrweb
events, pair by pair; the tests hold this module to it.

Output: each signal is a row of ``conversion_events`` of kind ``rage_click``, ``dead_click`` or ``error_click``
at its click's time with its click's identity (``batch_id``, ``seq``), so a reader finds the click as it finds a
tagged click's event; and per session a :class:`SignalCounts` for ``sessions`` (totals over the whole session:
they replace what an earlier move counted, never add to it). Label: the click's own ``conversion_events`` label
when it has one (a link or button, named by the agent or by :mod:`agent_api.click_targets`; a rage click takes its
first click's); ``''`` when the click was on an element Bard does not name. No text is made up for those: it would
read as if the page said it, and could equal a real button's text. A reader shows ``''`` as an unnamed element
(``replayer_api.markers`` gives ``None``), and a funnel step cannot name it (a step needs a label).

Storing (:func:`store_signal_rows`): rows are idempotent (the table collapses identical rows), but a late batch
can also take a signal away (a dead click that the late batch's mutation saves, a rage click whose first click
changes), so for a session that may already have signal rows the stored ones are read, the missing ones inserted
and the ones no longer computed deleted (a lightweight ``DELETE``, in practice rare). Which sessions may have
them: those already in ``sessions``, provided the move stores signal rows only after it wrote the session's row.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple

from clickhouse_connect.driver.client import Client
from sqlglot import exp

from clickhouse.sql import QueryParameters, column, fragment, table

WINDOW_MS = 1000
RAGE_RADIUS_PX = 30
RAGE_MIN_CLICKS = 3
RAGE_SCAN_LIMIT = 100
"""At most this many positioned clicks after a run's first click (within its second) are looked at."""

RAGE_CLICK = "rage_click"
DEAD_CLICK = "dead_click"
ERROR_CLICK = "error_click"
SIGNAL_KINDS = (RAGE_CLICK, DEAD_CLICK, ERROR_CLICK)

QUERY_SETTINGS = {"optimize_aggregation_in_order": 1}
"""``signal_inputs`` is sorted by ``session_id`` first: grouping by it as it is read cost ~15 % less than hashing
(measured on ``bench/signals.py``'s data, 5000 sessions a query)."""

CONVERSION_COLUMNS = ("session_id", "app_name", "ts", "kind", "label", "batch_id", "seq")
"""The columns of ``conversion_events`` a :class:`SignalRow` fills, in its order."""


class SignalRow(NamedTuple):
    """A row of ``conversion_events`` for one signal; ``ts`` in client milliseconds since the epoch."""

    session_id: uuid.UUID
    app_name: str
    ts: int
    kind: str
    label: str
    batch_id: uuid.UUID
    seq: int


class SignalCounts(NamedTuple):
    """A session's signals, over all of its events: the values of the ``sessions`` columns of the same names."""

    rage_click_count: int = 0
    dead_click_count: int = 0
    error_click_count: int = 0


class StoredSignals(NamedTuple):
    inserted: int
    deleted: int


class Click(NamedTuple):
    """A positioned click that may belong to a rage click, as the query returns it."""

    ts: int
    batch_id: uuid.UUID
    seq: int
    x: float
    y: float
    label: str


def click_order(click: Click) -> tuple[int, uuid.UUID, int]:
    """The order of clicks for rage runs: time, then ``batch_id`` (as Python orders UUIDs), then ``seq``."""
    return click.ts, click.batch_id, click.seq


# --- the query -------------------------------------------------------------------------------------------------
#
# Per session, as aliases of one aggregate SELECT (ClickHouse lets each use the ones before it). ``keys`` is the
# session's rows as integers, time * 4 + role (click 1, reaction 2, error 3), sorted: so a reaction or error of a
# click's millisecond comes after the click, where the backward fill finds it, and sorting integers is cheap.
# ``clicks`` is the session's clicks sorted by time, so the flags worked out over ``keys`` for its clicks (which
# depend on the click's time only) line up with them; copies of a click stay (both get the same flags, Python
# keeps one). -1 stands for "none" (client times are after 1970: the agent API accepts 2000 to 2100); a missing
# coordinate is nan.

_W = WINDOW_MS
_AFTER = RAGE_MIN_CLICKS - 1  # a rage run's first click has at least this many clicks after it within 1 s


def _next_of(role: int) -> str:
    """For each click of ``keys``: the time of the first row of ``role`` at or after it, -1 if none."""
    return (f"arrayFilter((r, k) -> k % 4 = 1, arrayReverseFill(r -> r >= 0, "
            f"arrayMap(k -> if(k % 4 = {role}, intDiv(k, 4), -1), keys)), keys)")


_PER_SESSION: tuple[tuple[str, str], ...] = (
    ("app_name", "any(app_name)"),
    ("keys", "arraySort(groupArray(toUnixTimestamp64Milli(ts) * 4 + toUInt8(role)))"),
    ("click_keys", "arrayFilter(k -> k % 4 = 1, keys)"),
    ("dead", f"arrayMap((k, r) -> r < 0 OR r - intDiv(k, 4) > {_W}, click_keys, {_next_of(2)})"),
    ("error", f"arrayMap((k, r) -> r >= 0 AND r - intDiv(k, 4) <= {_W}, click_keys, {_next_of(3)})"),
    ("clicks", "arraySort(c -> tupleElement(c, 1), groupArrayIf("
               "(toUnixTimestamp64Milli(ts), batch_id, seq, x, y, label), role = 'click'))"),
    ("click_ts", "arrayMap(c -> tupleElement(c, 1), clicks)"),
    ("candidate_ts", f"arrayMap((c, i) -> if(NOT isNaN(tupleElement(c, 4)) AND NOT isNaN(tupleElement(c, 5)) "
                     f"AND i + {_AFTER} <= length(click_ts) AND click_ts[i + {_AFTER}] - tupleElement(c, 1) <= {_W}, "
                     "tupleElement(c, 1), -1), clicks, arrayEnumerate(clicks))"),
    ("near", f"arrayMap((t, a) -> a >= 0 AND t - a <= {_W}, click_ts, arrayFill(a -> a >= 0, candidate_ts))"),
    ("flagged", "arrayFilter(f -> tupleElement(f, 7) OR tupleElement(f, 8) OR tupleElement(f, 9), "
                "arrayMap((c, d, e, n) -> (tupleElement(c, 1), tupleElement(c, 2), tupleElement(c, 3), "
                "tupleElement(c, 4), tupleElement(c, 5), tupleElement(c, 6), d, e, n), clicks, dead, error, near))"),
)


def signals_query(database: str | None, session_ids: Sequence[uuid.UUID]) -> tuple[str, dict[str, Any]]:
    """Rows ``(session_id, app_name, flagged)`` for the sessions with a flagged click: ``flagged`` is an array of
    ``(ts, batch_id, seq, x, y, label, dead, error, near)``. The text depends on ``database`` only."""
    params = QueryParameters()
    ids = params.bind([str(s) for s in session_ids], "Array(UUID)")
    per_session = (
        exp.select(column("session_id"), *(exp.alias_(fragment(text), name) for name, text in _PER_SESSION))
        .from_(table("signal_inputs", database), copy=False)
        .where(exp.In(this=column("session_id"), field=ids), copy=False)
        .group_by("session_id", copy=False)
    )
    tree = (
        exp.select(column("session_id"), column("app_name"), column("flagged"))
        .from_(per_session.subquery("per_session", copy=False), copy=False)
        .where(fragment("notEmpty(flagged)"), copy=False)
    )
    return tree.sql(dialect="clickhouse"), dict(params.values)


@functools.cache
def _kinds() -> exp.Tuple:
    return exp.Tuple(expressions=[exp.Literal.string(kind) for kind in SIGNAL_KINDS])


def stored_query(database: str | None, session_ids: Collection[uuid.UUID]) -> tuple[str, dict[str, Any]]:
    """The signal rows stored for these sessions, in :data:`CONVERSION_COLUMNS` order (copies included)."""
    params = QueryParameters()
    ids = params.bind([str(s) for s in session_ids], "Array(UUID)")
    tree = (
        exp.select(column("session_id"), column("app_name"), fragment("toUnixTimestamp64Milli(ts)"),
                   fragment("toString(kind)"), column("label"), column("batch_id"), column("seq"))
        .from_(table("conversion_events", database), copy=False)
        .where(exp.and_(exp.In(this=column("kind"), expressions=_kinds().copy().expressions),
                        exp.In(this=column("session_id"), field=ids), copy=False), copy=False)
    )
    return tree.sql(dialect="clickhouse"), dict(params.values)


def delete_statement(database: str | None, rows: Collection[SignalRow]) -> tuple[str, dict[str, Any]]:
    """A lightweight ``DELETE`` of exactly these signal rows (every copy of each)."""
    params = QueryParameters()
    ids = params.bind(sorted({str(r.session_id) for r in rows}), "Array(UUID)")
    keys = params.bind([(str(r.session_id), r.kind, r.ts, r.label, str(r.batch_id), r.seq) for r in rows],
                       "Array(Tuple(UUID, String, Int64, String, UUID, UInt32))")
    key = fragment("(session_id, toString(kind), toUnixTimestamp64Milli(ts), label, batch_id, seq)")
    condition = exp.and_(
        exp.In(this=column("kind"), expressions=_kinds().copy().expressions),
        exp.In(this=column("session_id"), field=ids),
        exp.In(this=key, field=keys),
        copy=False,
    )
    tree = exp.Delete(this=table("conversion_events", database), where=exp.Where(this=condition))
    return tree.sql(dialect="clickhouse"), dict(params.values)


# --- computing -------------------------------------------------------------------------------------------------


def signal_rows(
    client: Client, database: str | None, session_ids: Collection[uuid.UUID]
) -> tuple[list[SignalRow], dict[uuid.UUID, SignalCounts]]:
    """The signal rows of these sessions, computed over all their events now in ClickHouse, and every one's
    counts (zeros for a session without signals or without events). One query; call it off the event loop.
    ``database``: where the tables are (``None``: the client's own)."""
    counts = {session_id: SignalCounts() for session_id in session_ids}
    if not counts:
        return [], counts
    sql, parameters = signals_query(database, list(counts))
    rows: list[SignalRow] = []
    for session_id, app_name, flagged in client.query(sql, parameters=parameters, settings=QUERY_SETTINGS).result_rows:
        session_rows = session_signals(session_id, app_name, flagged)
        counts[session_id] = count_signals(session_rows)
        rows.extend(session_rows)
    return rows, counts


def session_signals(session_id: uuid.UUID, app_name: str, flagged: Iterable[Sequence[Any]]) -> list[SignalRow]:
    """The signal rows of one session from the query's flagged clicks ``(ts, batch_id, seq, x, y, label, dead,
    error, near)``. Copies of an event (a redelivered batch) are one click: they agree on dead and error, and a
    click is a rage candidate if either copy is near."""
    rows: list[SignalRow] = []
    seen: set[tuple[int, uuid.UUID, int]] = set()
    near: dict[tuple[int, uuid.UUID, int], Click] = {}
    for ts, batch_id, seq, x, y, label, dead, error, is_near in flagged:
        key = (ts, batch_id, seq)
        if is_near and key not in near and not (math.isnan(x) or math.isnan(y)):
            near[key] = Click(ts, batch_id, seq, x, y, label)
        if key in seen:
            continue
        seen.add(key)
        if dead:
            rows.append(SignalRow(session_id, app_name, ts, DEAD_CLICK, label, batch_id, seq))
        if error:
            rows.append(SignalRow(session_id, app_name, ts, ERROR_CLICK, label, batch_id, seq))
    for first in rage_anchors(sorted(near.values(), key=click_order)):
        rows.append(SignalRow(session_id, app_name, first.ts, RAGE_CLICK, first.label, first.batch_id, first.seq))
    return rows


def rage_anchors(clicks: Sequence[Click]) -> list[Click]:
    """The first click of each rage run among positioned ``clicks`` in :func:`click_order` (see the module doc).

    Exact over any set of clicks that holds every click within 1 s after each first click it may have: the
    query's ``near`` clicks are such a set."""
    used = [False] * len(clicks)
    firsts: list[Click] = []
    radius_squared = RAGE_RADIUS_PX * RAGE_RADIUS_PX
    for i, first in enumerate(clicks):
        if used[i]:
            continue
        members = [i]
        for looked, j in enumerate(range(i + 1, len(clicks))):
            other = clicks[j]
            if other.ts - first.ts > WINDOW_MS or looked >= RAGE_SCAN_LIMIT:
                break
            dx, dy = other.x - first.x, other.y - first.y
            if not used[j] and dx * dx + dy * dy <= radius_squared:
                members.append(j)
        if len(members) >= RAGE_MIN_CLICKS:
            for j in members:
                used[j] = True
            firsts.append(first)
    return firsts


def count_signals(rows: Iterable[SignalRow]) -> SignalCounts:
    kinds = [row.kind for row in rows]
    return SignalCounts(kinds.count(RAGE_CLICK), kinds.count(DEAD_CLICK), kinds.count(ERROR_CLICK))


# --- storing ---------------------------------------------------------------------------------------------------


def store_signal_rows(
    client: Client,
    database: str | None,
    session_ids: Collection[uuid.UUID],
    rows: Sequence[SignalRow],
    *,
    moved_before: Collection[uuid.UUID] | None = None,
) -> StoredSignals:
    """Make ``conversion_events`` hold exactly ``rows`` as the signals of ``session_ids``.

    ``moved_before``: the sessions that may already have signal rows, i.e. those already in ``sessions`` when
    the move stores signals only after writing the session's row (the ender's ``previous``); ``None``: any of
    them may. For the others the rows are inserted without a look. For these the stored rows are read: only the
    missing rows are inserted, then the stored rows no longer computed are deleted (insert first, so a reader
    never misses a signal that stays; a crash between the two leaves the stale rows to the rerun, which this
    same call removes)."""
    sessions = set(session_ids)
    foreign = {row.session_id for row in rows} - sessions
    if foreign:
        raise ValueError(f"signal rows of sessions not being stored: {sorted(map(str, foreign))[:3]}")
    check = sessions if moved_before is None else sessions & set(moved_before)
    stored: set[SignalRow] = set()
    if check:
        sql, parameters = stored_query(database, check)
        stored = {_stored_row(values) for values in client.query(sql, parameters=parameters).result_rows}
    wanted = list(dict.fromkeys(rows))
    missing = [row for row in wanted if row not in stored]
    if missing:
        # Synchronous even where a server profile turns async inserts on: the next move must read these rows.
        client.insert("conversion_events", [list(row) for row in missing], database=database,
                      column_names=CONVERSION_COLUMNS, settings={"async_insert": 0})
    stale = stored - set(wanted)
    if stale:
        sql, parameters = delete_statement(database, stale)
        client.command(sql, parameters=parameters)
    return StoredSignals(inserted=len(missing), deleted=len(stale))


def _stored_row(values: Sequence[Any]) -> SignalRow:
    session_id, app_name, ts, kind, label, batch_id, seq = values
    return SignalRow(session_id, app_name, int(ts), kind, label, batch_id, int(seq))
