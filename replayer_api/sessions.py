"""Ended sessions in ClickHouse: the filtered, sorted list and one session's metadata.

Query text is assembled only from the constant fragments below, chosen by the request's shape (which filters
are present, which sort key from an allow-list, which direction); every value is a bound ``{pN:Type}``
parameter. ``sessions`` is a ReplacingMergeTree: a session moved twice has two rows until they merge, and
readers must see only the newest (see :func:`ordered_sessions` for how pages do that without ``FINAL``).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from replayer_api.cursors import Cursor
from replayer_api.warehouse import Warehouse

COLUMNS = (
    "session_id, app_name, toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(ended_at), "
    "duration_ms, event_count, error_count"
)


@dataclass(frozen=True)
class Session:
    session_id: uuid.UUID
    app_name: str
    started_at_ms: int
    ended_at_ms: int
    duration_ms: int
    event_count: int
    error_count: int

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Session:
        return cls(row[0], row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5]), int(row[6]))


@dataclass(frozen=True)
class SessionFilter:
    """Conditions a session must all meet; ``None`` (or empty) means no condition."""

    apps: tuple[str, ...] = ()
    started_from_ms: int | None = None  # inclusive
    started_before_ms: int | None = None  # exclusive
    min_duration_ms: int | None = None
    max_duration_ms: int | None = None
    has_errors: bool | None = None
    id_prefix: str | None = None


@dataclass(frozen=True)
class Column:
    """A sortable expression of a session row: as written in SQL, as selected to read its value back, and as a
    bound value of the same type (slot ``v``) to compare it with."""

    expression: str
    selected: str
    bound: str


START = Column("started_at", "toUnixTimestamp64Milli(started_at)", "fromUnixTimestamp64Milli({v:Int64}, 'UTC')")
DURATION = Column("duration_ms", "duration_ms", "{v:UInt64}")
APP = Column("app_name", "app_name", "{v:String}")
ERRORS = Column("error_count", "error_count", "{v:UInt64}")
EVENTS = Column("event_count", "event_count", "{v:UInt64}")
SESSION_ID = Column("session_id", "session_id", "{v:UUID}")
SESSION_ID_TEXT = Column("toString(session_id)", "toString(session_id)", "{v:String}")


@dataclass(frozen=True)
class Term:
    column: Column
    direction: str  # "ASC" or "DESC", from DIRECTIONS

    @property
    def sql(self) -> str:
        return f"{self.column.expression} {self.direction}"


Ordering = tuple[Term, ...]

FLIPPED = {"ASC": "DESC", "DESC": "ASC"}


def reversed_ordering(ordering: Ordering) -> Ordering:
    """The same order backwards: every term's direction flipped (the rows before a position, nearest first)."""
    return tuple(Term(term.column, FLIPPED[term.direction]) for term in ordering)


@dataclass(frozen=True)
class SortKey:
    name: str
    column: Column
    key_type: type

    def ordering(self, order: str) -> Ordering:
        """The sort key, then the session id in the same direction: a total order, so keyset paging is exact."""
        return Term(self.column, DIRECTIONS[order]), Term(SESSION_ID, DIRECTIONS[order])

    def key_of(self, session: Session) -> int | str:
        keys: dict[str, int | str] = {
            "started_at": session.started_at_ms,
            "duration_ms": session.duration_ms,
            "app_name": session.app_name,
            "event_count": session.event_count,
            "error_count": session.error_count,
        }
        return keys[self.column.expression]


DIRECTIONS = {"asc": "ASC", "desc": "DESC"}
SORT_KEYS = {
    "start": SortKey("start", START, int),
    "duration": SortKey("duration", DURATION, int),
    "app": SortKey("app", APP, str),
    "events": SortKey("events", EVENTS, int),
    "errors": SortKey("errors", ERRORS, int),
}

# The legacy API's sort names, as the original dashboard sends them; ties by session id text, ascending.
LEGACY_SORT_COLUMNS = {
    "sessionId": SESSION_ID_TEXT,
    "length": DURATION,
    "date": START,
    "appName": APP,
    "errorCount": ERRORS,
}


def legacy_ordering(column: Column, direction: str) -> Ordering:
    return Term(column, direction), Term(SESSION_ID_TEXT, "ASC")


class Conditions:
    """AND-ed condition fragments; every value gets its own parameter name (p0, p1, ...)."""

    def __init__(self) -> None:
        self.fragments: list[str] = []
        self.parameters: dict[str, Any] = {}

    def add(self, fragment: str, **values: Any) -> None:
        # ``fragment`` is a constant of this module; its ``{slot:Type}`` placeholders are renamed to fresh names.
        for slot, value in values.items():
            name = f"p{len(self.parameters)}"
            fragment = fragment.replace("{" + slot + ":", "{" + name + ":")
            self.parameters[name] = value
        self.fragments.append(fragment)

    def where(self) -> str:
        return " WHERE " + " AND ".join(self.fragments) if self.fragments else ""


def filter_conditions(session_filter: SessionFilter) -> Conditions:
    conditions = Conditions()
    f = session_filter
    if f.apps:
        conditions.add("app_name IN {apps:Array(String)}", apps=list(f.apps))
    if f.started_from_ms is not None:
        conditions.add("started_at >= fromUnixTimestamp64Milli({ms:Int64}, 'UTC')", ms=f.started_from_ms)
    if f.started_before_ms is not None:
        conditions.add("started_at < fromUnixTimestamp64Milli({ms:Int64}, 'UTC')", ms=f.started_before_ms)
    if f.min_duration_ms is not None:
        conditions.add("duration_ms >= {ms:UInt64}", ms=f.min_duration_ms)
    if f.max_duration_ms is not None:
        conditions.add("duration_ms <= {ms:UInt64}", ms=f.max_duration_ms)
    if f.has_errors is True:
        conditions.add("error_count > 0")
    elif f.has_errors is False:
        conditions.add("error_count = 0")
    if f.id_prefix:
        conditions.add("startsWith(toString(session_id), {prefix:String})", prefix=f.id_prefix)
    return conditions


def add_after(conditions: Conditions, ordering: Ordering, values: tuple[Any, ...], *, negate: bool = False) -> None:
    """Rows strictly after ``values`` in ``ordering`` (or, negated, at or before them): for terms (a, b),
    ``a > x OR (a = x AND b > y)``, with ``<`` for a descending term."""
    slots = [f"k{i}" for i in range(len(ordering))]
    bounds = [term.column.bound.replace("{v:", "{" + slot + ":") for term, slot in zip(ordering, slots, strict=True)]
    alternatives = []
    for index, term in enumerate(ordering):
        equal = [f"{t.column.expression} = {b}" for t, b in zip(ordering[:index], bounds[:index], strict=True)]
        beyond = f"{term.column.expression} {'>' if term.direction == 'ASC' else '<'} {bounds[index]}"
        alternatives.append("(" + " AND ".join([*equal, beyond]) + ")")
    fragment = "(" + " OR ".join(alternatives) + ")"
    conditions.add(("NOT " if negate else "") + fragment,
                   **{slot: _bindable(value) for slot, value in zip(slots, values, strict=True)})


def _bindable(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


# The newest version of each candidate session (the ReplacingMergeTree's rule: highest ``version`` wins).
LATEST = (
    "SELECT session_id, latest.1 AS app_name, latest.2 AS started_at, latest.3 AS ended_at, "
    "latest.4 AS duration_ms, latest.5 AS event_count, latest.6 AS error_count FROM ("
    "SELECT session_id, argMax((app_name, started_at, ended_at, duration_ms, event_count, error_count), version) "
    "AS latest FROM sessions WHERE session_id IN {candidates:Array(UUID)} GROUP BY session_id)"
)

# Candidate rows read per round beyond those needed: room for the stale copies of moved sessions (about 1 in
# 100 rows while merges catch up), so that a second round is rare. Each candidate costs a granule read in the
# lookup of newest versions, so the slack stays modest.
CANDIDATE_SLACK = 16
# Past this many rows to skip (the legacy API's offset paging), the plain FINAL read is cheaper.
MAX_CANDIDATE_SKIP = 2_000


def candidates_query(session_filter: SessionFilter, ordering: Ordering, lower: tuple[Any, ...] | None,
                     count: int) -> tuple[str, dict[str, Any]]:
    conditions = filter_conditions(session_filter)
    if lower is not None:
        add_after(conditions, ordering, lower)
    conditions.parameters["count"] = count
    selected = ", ".join(term.column.selected for term in ordering)
    order_by = ", ".join(term.sql for term in ordering)
    sql = (
        f"SELECT session_id, {selected} FROM sessions{conditions.where()} "  # noqa: S608 - fragments are constants
        f"ORDER BY {order_by} LIMIT {{count:UInt64}}"
    )
    return sql, conditions.parameters


def verified_query(session_filter: SessionFilter, ordering: Ordering, lower: tuple[Any, ...] | None,
                   upper: tuple[Any, ...] | None, candidates: list[str], count: int) -> tuple[str, dict[str, Any]]:
    conditions = filter_conditions(session_filter)
    if lower is not None:
        add_after(conditions, ordering, lower)
    if upper is not None:
        add_after(conditions, ordering, upper, negate=True)
    conditions.parameters["candidates"] = candidates
    conditions.parameters["count"] = count
    order_by = ", ".join(term.sql for term in ordering)
    sql = (
        f"SELECT {COLUMNS} FROM ({LATEST}){conditions.where()} "  # noqa: S608 - fragments are constants
        f"ORDER BY {order_by} LIMIT {{count:UInt64}}"
    )
    return sql, conditions.parameters


async def ordered_sessions(warehouse: Warehouse, session_filter: SessionFilter, ordering: Ordering,
                           after: tuple[Any, ...] | None, skip: int, take: int) -> list[Session]:
    """Sessions ``skip`` to ``skip + take`` in ``ordering``, of those strictly after ``after``, as readers see them.

    ``FINAL`` over the whole table would merge every part on every page (ruinous at a million sessions). Instead
    each round reads candidate rows without it (a top-N scan: every version of every session, the current one
    included) and then only those sessions' newest versions, through the primary key, and keeps those that
    still match and still fall within the candidates' range. A session whose current row is outside that range
    cannot be missed: it is beyond every row kept. Stale copies may crowd the candidates; then another round
    continues after the last candidate, until enough sessions are found or the table is exhausted.
    """
    if skip > MAX_CANDIDATE_SKIP:
        return await final_sessions(warehouse, session_filter, ordering, after, skip, take)
    need = skip + take
    found: list[Session] = []
    lower = after
    while len(found) < need:
        wanted = need - len(found)
        count = wanted + max(CANDIDATE_SLACK, wanted // 4)
        sql, parameters = candidates_query(session_filter, ordering, lower, count)
        rows = await warehouse.rows(sql, parameters)
        if not rows:
            break
        exhausted = len(rows) < count
        upper = None if exhausted else tuple(rows[-1][1:])
        ids = sorted({str(row[0]) for row in rows})
        sql, parameters = verified_query(session_filter, ordering, lower, upper, ids, need - len(found))
        found += [Session.from_row(row) for row in await warehouse.rows(sql, parameters)]
        if exhausted:
            break
        lower = upper
    return found[skip:need]


async def final_sessions(warehouse: Warehouse, session_filter: SessionFilter, ordering: Ordering,
                         after: tuple[Any, ...] | None, skip: int, take: int) -> list[Session]:
    """The same answer as :func:`ordered_sessions` by reading the table ``FINAL`` (for deep offsets)."""
    conditions = filter_conditions(session_filter)
    if after is not None:
        add_after(conditions, ordering, after)
    conditions.parameters["limit"] = take
    conditions.parameters["offset"] = skip
    order_by = ", ".join(term.sql for term in ordering)
    sql = (
        f"SELECT {COLUMNS} FROM sessions FINAL{conditions.where()} "  # noqa: S608 - fragments are constants
        f"ORDER BY {order_by} LIMIT {{limit:UInt64}} OFFSET {{offset:UInt64}}"
    )
    return [Session.from_row(row) for row in await warehouse.rows(sql, conditions.parameters)]


@dataclass(frozen=True)
class SessionPage:
    sessions: list[Session]
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


async def session_page(warehouse: Warehouse, session_filter: SessionFilter, sort: SortKey, order: str,
                       limit: int, after: Cursor | None = None, before: Cursor | None = None) -> SessionPage:
    """One page of the keyset-paged list, in (sort key, session id) order: the ``limit`` sessions after ``after``
    (from the start without it), or the ``limit`` sessions just before ``before``, still in the list's order.

    Going back reads the list backwards (:func:`reversed_ordering`) from ``before`` with the same
    :func:`ordered_sessions`, so stale versions are handled alike, and turns the rows round. ``next_cursor`` is
    the last row's cursor when a session follows it (going back: always, the page ends where one began);
    ``prev_cursor`` the first row's when a session precedes it: going back, the ``limit + 1``-th row tells;
    going forward, one row read backward. An empty page has neither. Forward N pages then back N pages gives
    the same pages.
    """
    forward = sort.ordering(order)
    backward = reversed_ordering(forward)

    def cursor_of(session: Session) -> Cursor:
        return Cursor(sort.name, order, sort.key_of(session), session.session_id)

    if before is not None:
        found = await ordered_sessions(warehouse, session_filter, backward, (before.key, before.session_id), 0,
                                       limit + 1)
        sessions = found[:limit][::-1]
        if not sessions:
            return SessionPage([], None, None)
        return SessionPage(sessions, cursor_of(sessions[-1]), cursor_of(sessions[0]) if len(found) > limit else None)

    if after is None:  # the page starts the list: nothing precedes it
        found = await ordered_sessions(warehouse, session_filter, forward, None, 0, limit + 1)
        earlier: list[Session] = []
    else:
        # What precedes the first row is what is at or before the cursor: look strictly before it meanwhile
        # (another client, another core), and at the cursor's own place only if that finds nothing.
        lower = (after.key, after.session_id)
        found, earlier = await asyncio.gather(
            ordered_sessions(warehouse, session_filter, forward, lower, 0, limit + 1),
            ordered_sessions(warehouse, session_filter, backward, lower, 0, 1),
        )
    sessions = found[:limit]
    if not sessions:
        return SessionPage([], None, None)
    next_cursor = cursor_of(sessions[-1]) if len(found) > limit else None
    first = sessions[0]
    if after is not None and not earlier:
        earlier = await ordered_sessions(warehouse, session_filter, backward, (sort.key_of(first), first.session_id),
                                         0, 1)
    return SessionPage(sessions, next_cursor, cursor_of(first) if earlier else None)


async def legacy_session_page(warehouse: Warehouse, session_filter: SessionFilter, column: Column,
                              direction: str, limit: int, offset: int) -> list[Session]:
    """The original dashboard's page: offset paging, ties broken by session id ascending."""
    return await ordered_sessions(warehouse, session_filter, legacy_ordering(column, direction), None, offset, limit)


async def count_sessions(warehouse: Warehouse, session_filter: SessionFilter) -> int:
    conditions = filter_conditions(session_filter)
    sql = f"SELECT count() FROM sessions FINAL{conditions.where()}"  # noqa: S608 - fragments are constants
    rows = await warehouse.rows(sql, conditions.parameters)
    return int(rows[0][0])


async def find_session(warehouse: Warehouse, session_id: uuid.UUID) -> Session | None:
    rows = await warehouse.rows(
        f"SELECT {COLUMNS} FROM sessions FINAL WHERE session_id = {{id:UUID}} LIMIT 1",  # noqa: S608
        {"id": str(session_id)},
    )
    return Session.from_row(rows[0]) if rows else None


async def distinct_apps(warehouse: Warehouse) -> list[str]:
    """App names of ended sessions, for autocomplete."""
    rows = await warehouse.rows("SELECT DISTINCT app_name FROM sessions ORDER BY app_name", {})
    return [row[0] for row in rows]
