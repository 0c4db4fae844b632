"""Ended sessions in ClickHouse: the filtered, sorted list and one session's metadata.

Every query is a sqlglot tree (:mod:`clickhouse.sql`): the filter's conditions come from the one session filter
builder (:func:`clickhouse.session_filters.condition`), the sort key from an allow-list (:data:`SORT_KEYS`,
:data:`LEGACY_SORT_COLUMNS`), every value is a bound ``{pN: Type}`` placeholder. ``sessions`` is a
ReplacingMergeTree: a session moved twice has two rows until they merge, and readers must see only the newest
(see :func:`ordered_sessions` for how pages do that without ``FINAL``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from clickhouse import session_filters
from clickhouse.session_filters import SessionFilter, instant
from clickhouse.sql import QueryParameters, and_, call, column, fragment, number, or_, render, table
from replayer_api.cursors import Cursor
from replayer_api.warehouse import Warehouse

Filters = Sequence[SessionFilter]

# The columns of a session row, and what is read of them, in the order Session.from_row takes them. The metadata
# (from browser on) is empty for sessions recorded before it was captured.
METADATA = ("browser", "browser_major", "os", "device_type", "viewport_width", "viewport_height", "entry_url",
            "entry_path", "exit_path", "page_count", "click_count", "rage_click_count", "dead_click_count",
            "error_click_count", "country")
FIELDS = ("app_name", "started_at", "ended_at", "duration_ms", "event_count", "error_count", *METADATA)
READ = ("session_id", "app_name", "toUnixTimestamp64Milli(started_at)", "toUnixTimestamp64Milli(ended_at)",
        "duration_ms", "event_count", "error_count", *METADATA)


def read_columns() -> list[exp.Expr]:
    return [fragment(text) for text in READ]


@dataclass(frozen=True)
class Session:
    session_id: uuid.UUID
    app_name: str
    started_at_ms: int
    ended_at_ms: int
    duration_ms: int
    event_count: int
    error_count: int
    browser: str = ""
    browser_major: int = 0
    os: str = ""
    device_type: str = ""
    viewport_width: int = 0
    viewport_height: int = 0
    entry_url: str = ""
    entry_path: str = ""
    exit_path: str = ""
    page_count: int = 0
    click_count: int = 0
    rage_click_count: int = 0
    dead_click_count: int = 0
    error_click_count: int = 0
    country: str = ""

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Session:
        (session_id, app_name, started, ended, duration, events, errors, browser, browser_major, os, device,
         width, height, entry_url, entry_path, exit_path, pages, clicks, rage, dead, error_clicks, country) = row
        return cls(session_id, app_name, int(started), int(ended), int(duration), int(events), int(errors), browser,
                   int(browser_major), os, device, int(width), int(height), entry_url, entry_path, exit_path,
                   int(pages), int(clicks), int(rage), int(dead), int(error_clicks), country)


@dataclass(frozen=True)
class Column:
    """A sortable expression of a session row (constant SQL): as ordered and compared, as selected to read its
    value back, and the type a value compared with it is bound as (``moment``: ms, compared as ``started_at``)."""

    expression: str
    selected: str
    value_type: str
    moment: bool = False

    def tree(self) -> exp.Expr:
        return fragment(self.expression)

    def read(self) -> exp.Expr:
        return fragment(self.selected)

    def bound(self, params: QueryParameters, value: Any) -> exp.Expr:
        if self.moment:
            return instant(params, value)
        return params.bind(str(value) if isinstance(value, uuid.UUID) else value, self.value_type)


START = Column("started_at", "toUnixTimestamp64Milli(started_at)", "Int64", moment=True)
DURATION = Column("duration_ms", "duration_ms", "UInt64")
APP = Column("app_name", "app_name", "String")
ERRORS = Column("error_count", "error_count", "UInt64")
EVENTS = Column("event_count", "event_count", "UInt64")
PAGES = Column("page_count", "page_count", "UInt64")
CLICKS = Column("click_count", "click_count", "UInt64")
SESSION_ID = Column("session_id", "session_id", "UUID")
SESSION_ID_TEXT = Column("toString(session_id)", "toString(session_id)", "String")


@dataclass(frozen=True)
class Term:
    column: Column
    direction: str  # "ASC" or "DESC", from DIRECTIONS

    def ordered(self) -> exp.Ordered:
        return exp.Ordered(this=self.column.tree(), desc=self.direction == "DESC")


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
            "page_count": session.page_count,
            "click_count": session.click_count,
        }
        return keys[self.column.expression]


DIRECTIONS = {"asc": "ASC", "desc": "DESC"}
SORT_KEYS = {
    "start": SortKey("start", START, int),
    "duration": SortKey("duration", DURATION, int),
    "app": SortKey("app", APP, str),
    "events": SortKey("events", EVENTS, int),
    "errors": SortKey("errors", ERRORS, int),
    "pages": SortKey("pages", PAGES, int),
    "clicks": SortKey("clicks", CLICKS, int),
}

# The legacy API's sort names, as the original dashboard sends them; ties by session id text, ascending.
LEGACY_SORT_COLUMNS = {
    "sessionId": SESSION_ID_TEXT,
    "length": DURATION,
    "date": START,
    "appName": APP,
    "errorCount": ERRORS,
}


def legacy_ordering(column_: Column, direction: str) -> Ordering:
    return Term(column_, direction), Term(SESSION_ID_TEXT, "ASC")


def after_condition(params: QueryParameters, ordering: Ordering, values: Sequence[Any]) -> exp.Expr:
    """Rows strictly after ``values`` in ``ordering``: for terms (a, b), ``a > x OR (a = x AND b > y)``, with ``<``
    for a descending term. Each use of a value is bound anew."""
    alternatives: list[exp.Expr] = []
    for index, term in enumerate(ordering):
        equal: list[exp.Expr] = [exp.EQ(this=t.column.tree(), expression=t.column.bound(params, v))
                                 for t, v in zip(ordering[:index], values[:index], strict=True)]
        comparison = exp.GT if term.direction == "ASC" else exp.LT
        beyond = comparison(this=term.column.tree(), expression=term.column.bound(params, values[index]))
        alternatives.append(exp.Paren(this=and_(*equal, beyond)))
    return exp.Paren(this=or_(*alternatives))


def filtered(tree: exp.Select, conditions: list[exp.Expr]) -> exp.Select:
    condition = session_filters.where(conditions)
    return tree.where(condition, copy=False) if condition is not None else tree


def sorted_by(tree: exp.Select, ordering: Ordering) -> exp.Select:
    return tree.order_by(*(term.ordered() for term in ordering), copy=False)


def final_sessions_table() -> exp.Final:
    return exp.Final(this=table("sessions"))


def latest_versions(params: QueryParameters, candidates: list[str]) -> exp.Select:
    """The newest version of each candidate session (the ReplacingMergeTree's rule: highest ``version`` wins),
    with the columns of ``sessions`` by name."""
    newest = exp.CombinedAggFunc(this="argMax", expressions=[
        exp.Tuple(expressions=[column(name) for name in FIELDS]), column("version")])
    inner = (
        exp.select(column("session_id"), exp.alias_(newest, "latest"))
        .from_(table("sessions"), copy=False)
        .where(exp.In(this=column("session_id"), field=params.bind(candidates, "Array(UUID)")), copy=False)
        .group_by("session_id", copy=False)
    )
    unpacked = [exp.alias_(call("tupleElement", column("latest"), number(i)), name)
                for i, name in enumerate(FIELDS, start=1)]
    return exp.select(column("session_id"), *unpacked).from_(inner.subquery(copy=False), copy=False)


# Candidate rows read per round beyond those needed: room for the stale copies of moved sessions (about 1 in
# 100 rows while merges catch up), so that a second round is rare. Each candidate costs a granule read in the
# lookup of newest versions, so the slack stays modest.
CANDIDATE_SLACK = 16
# Past this many rows to skip (the legacy API's offset paging), the plain FINAL read is cheaper.
MAX_CANDIDATE_SKIP = 2_000


def candidates_query(filters: Filters, ordering: Ordering, lower: Sequence[Any] | None,
                     count: int) -> tuple[str, dict[str, Any]]:
    params = QueryParameters()
    conditions = session_filters.conditions(filters, params)
    if lower is not None:
        conditions.append(after_condition(params, ordering, lower))
    tree = exp.select(column("session_id"), *(term.column.read() for term in ordering)).from_(
        table("sessions"), copy=False)
    tree = sorted_by(filtered(tree, conditions), ordering).limit(params.bind(count, "UInt64"), copy=False)
    return render(tree, params)


def verified_query(filters: Filters, ordering: Ordering, lower: Sequence[Any] | None,
                   upper: Sequence[Any] | None, candidates: list[str], count: int) -> tuple[str, dict[str, Any]]:
    params = QueryParameters()
    newest = latest_versions(params, candidates)
    conditions = session_filters.conditions(filters, params)
    if lower is not None:
        conditions.append(after_condition(params, ordering, lower))
    if upper is not None:
        conditions.append(exp.Not(this=after_condition(params, ordering, upper)))
    tree = exp.select(*read_columns()).from_(newest.subquery(copy=False), copy=False)
    tree = sorted_by(filtered(tree, conditions), ordering).limit(params.bind(count, "UInt64"), copy=False)
    return render(tree, params)


async def ordered_sessions(warehouse: Warehouse, filters: Filters, ordering: Ordering,
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
        return await final_sessions(warehouse, filters, ordering, after, skip, take)
    need = skip + take
    found: list[Session] = []
    lower = after
    while len(found) < need:
        wanted = need - len(found)
        count = wanted + max(CANDIDATE_SLACK, wanted // 4)
        sql, parameters = candidates_query(filters, ordering, lower, count)
        rows = await warehouse.rows(sql, parameters)
        if not rows:
            break
        exhausted = len(rows) < count
        upper = None if exhausted else tuple(rows[-1][1:])
        ids = sorted({str(row[0]) for row in rows})
        sql, parameters = verified_query(filters, ordering, lower, upper, ids, need - len(found))
        found += [Session.from_row(row) for row in await warehouse.rows(sql, parameters)]
        if exhausted:
            break
        lower = upper
    return found[skip:need]


async def final_sessions(warehouse: Warehouse, filters: Filters, ordering: Ordering,
                         after: tuple[Any, ...] | None, skip: int, take: int) -> list[Session]:
    """The same answer as :func:`ordered_sessions` by reading the table ``FINAL`` (for deep offsets)."""
    params = QueryParameters()
    conditions = session_filters.conditions(filters, params)
    if after is not None:
        conditions.append(after_condition(params, ordering, after))
    tree = sorted_by(filtered(exp.select(*read_columns()).from_(final_sessions_table(), copy=False), conditions),
                     ordering)
    tree = tree.limit(params.bind(take, "UInt64"), copy=False).offset(params.bind(skip, "UInt64"), copy=False)
    return [Session.from_row(row) for row in await warehouse.rows(*render(tree, params))]


@dataclass(frozen=True)
class SessionPage:
    sessions: list[Session]
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


async def session_page(warehouse: Warehouse, filters: Filters, sort: SortKey, order: str,
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
        found = await ordered_sessions(warehouse, filters, backward, (before.key, before.session_id), 0,
                                       limit + 1)
        sessions = found[:limit][::-1]
        if not sessions:
            return SessionPage([], None, None)
        return SessionPage(sessions, cursor_of(sessions[-1]), cursor_of(sessions[0]) if len(found) > limit else None)

    if after is None:  # the page starts the list: nothing precedes it
        found = await ordered_sessions(warehouse, filters, forward, None, 0, limit + 1)
        earlier: list[Session] = []
    else:
        # What precedes the first row is what is at or before the cursor: look strictly before it meanwhile
        # (another client, another core), and at the cursor's own place only if that finds nothing.
        lower = (after.key, after.session_id)
        found, earlier = await asyncio.gather(
            ordered_sessions(warehouse, filters, forward, lower, 0, limit + 1),
            ordered_sessions(warehouse, filters, backward, lower, 0, 1),
        )
    sessions = found[:limit]
    if not sessions:
        return SessionPage([], None, None)
    next_cursor = cursor_of(sessions[-1]) if len(found) > limit else None
    first = sessions[0]
    if after is not None and not earlier:
        earlier = await ordered_sessions(warehouse, filters, backward, (sort.key_of(first), first.session_id),
                                         0, 1)
    return SessionPage(sessions, next_cursor, cursor_of(first) if earlier else None)


async def legacy_session_page(warehouse: Warehouse, filters: Filters, column: Column,
                              direction: str, limit: int, offset: int) -> list[Session]:
    """The original dashboard's page: offset paging, ties broken by session id ascending."""
    return await ordered_sessions(warehouse, filters, legacy_ordering(column, direction), None, offset, limit)


async def count_sessions(warehouse: Warehouse, filters: Filters) -> int:
    params = QueryParameters()
    tree = exp.select(exp.Count(this=exp.Star())).from_(final_sessions_table(), copy=False)
    rows = await warehouse.rows(*render(filtered(tree, session_filters.conditions(filters, params)), params))
    return int(rows[0][0])


async def find_session(warehouse: Warehouse, session_id: uuid.UUID) -> Session | None:
    params = QueryParameters()
    tree = (
        exp.select(*read_columns())
        .from_(final_sessions_table(), copy=False)
        .where(exp.EQ(this=column("session_id"), expression=params.bind(str(session_id), "UUID")), copy=False)
        .limit(1, copy=False)
    )
    rows = await warehouse.rows(*render(tree, params))
    return Session.from_row(rows[0]) if rows else None


async def distinct_apps(warehouse: Warehouse) -> list[str]:
    """App names of ended sessions, for autocomplete."""
    rows = await warehouse.rows("SELECT DISTINCT app_name FROM sessions ORDER BY app_name", {})
    return [row[0] for row in rows]


# The session properties offered for autocomplete (GET /v1/options/{property}), each a column of ``sessions``.
OPTION_COLUMNS = {"app": "app_name", "browser": "browser", "os": "os", "device_type": "device_type",
                  "country": "country", "entry_path": "entry_path"}


async def distinct_values(warehouse: Warehouse, property_name: str, prefix: str, limit: int) -> list[tuple[str, int]]:
    """The non-empty values of a property (:data:`OPTION_COLUMNS`) that start with ``prefix``, with how many
    sessions have each, the most common first (ties by value), at most ``limit``. Counted over every stored row
    without FINAL: a session moved twice counts twice until its rows merge, which only shifts an order of
    suggestions."""
    params = QueryParameters()
    value = column(OPTION_COLUMNS[property_name])
    tree = (
        exp.select(value.copy(), exp.alias_(exp.Count(this=exp.Star()), "sessions"))
        .from_(table("sessions"), copy=False)
        .where(and_(exp.NEQ(this=value.copy(), expression=exp.Literal.string("")),
                    call("startsWith", value.copy(), params.bind(prefix, "String"))), copy=False)
        .group_by(value.copy(), copy=False)
        .order_by(exp.Ordered(this=column("sessions"), desc=True), exp.Ordered(this=value.copy()), copy=False)
        .limit(params.bind(limit, "UInt64"), copy=False)
    )
    return [(row[0], int(row[1])) for row in await warehouse.rows(*render(tree, params))]
