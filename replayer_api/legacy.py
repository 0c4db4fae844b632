"""The original Bard dashboard's API, ``/api``, answered on its contract (see DESIGN.md and the notes on the
original backend): the same paths, parameters, shapes and status codes, with its plain bugs fixed.

Fixed, as the original obviously meant: an unknown filter is a 400 (the original silently filtered on "today");
an update or delete of a missing or deleted funnel is a 404 (the original answered 204); deleted funnels are
gone to every read; replay events come in timestamp order; an empty filter list (stored as ``[{}]``) means no
filter; a date range without an end has none (the original's default end was a fixed day of 2022; the rule is
Bard's one rule for a missing bound, see :mod:`clickhouse.session_filters`).

Where the original's behaviour is unknown: ``GET /api/sessions`` without parameters lists every ended session
(newest first, 5 a page). ``GET /api/funnel/:id`` answers the stored form (``funnelName``, ``sessionFilters``,
``eventSequence``) as the original did, with ``id``, the times and the same form under ``funnel`` added.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlglot import exp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clickhouse import session_filters
from clickhouse.session_filters import (
    AppNameFilter,
    DurationFilter,
    ErrorsFilter,
    Filters,
    InvalidFilter,
    StartedFilter,
)
from clickhouse.session_filters import dashboard_filters as read_dashboard_filters
from clickhouse.sql import QueryParameters, call, column, lambda_, number, render
from funnels import AllIds, InvalidFunnel, from_dashboard, to_clean, to_dashboard
from funnels.definition import FunnelDefinition
from replayer_api import funnel_results, sessions
from replayer_api.errors import BadParameter
from replayer_api.funnel_store import MAX_FUNNEL_ID, ORDER_COLUMNS, StoredFunnel, iso
from replayer_api.options import conversion_labels
from replayer_api.parameters import (
    int_param,
    limited_body,
    parse_int,
    parse_uuid,
)
from replayer_api.v1 import MAX_BODY, field_of, funnels_of, stream_events
from replayer_api.warehouse import Warehouse

log = logging.getLogger(__name__)

FILTER_TYPES = ("length", "date", "appName", "Has Errors?")
LEGACY_DIRECTIONS = {"ascending": "ASC", "descending": "DESC"}
DEFAULT_PER_PAGE = 5
MAX_PER_PAGE = 1000


# The /api list's filter parameters, by filter type: the dashboard form's fields, given as query parameters.
LIST_FILTER_FIELDS = {
    "length": ("minLength", "maxLength"),
    "date": ("startDate", "endDate"),
    "appName": ("textContent",),
    "Has Errors?": ("yesOrNo",),
}


def legacy_session_filter(params: Any) -> Filters:
    """The ``filter_N`` parameters: each names a filter type whose values are in shared parameters. Read as the
    dashboard form's filter of that type (one reader, :func:`clickhouse.session_filters.dashboard_filters`: the
    same rules as a stored funnel's ``sessionFilters``); an error names the query parameter."""
    types: list[str] = []
    for key, value in params.multi_items():
        if key.startswith("filter"):
            if value not in LIST_FILTER_FIELDS:
                raise BadParameter(key, f"must be one of {', '.join(LIST_FILTER_FIELDS)}, got {value!r}")
            if value not in types:
                types.append(value)
    entries = []
    for filter_type in types:
        entry = {"filterType": filter_type}
        entry.update({name: params[name] for name in LIST_FILTER_FIELDS[filter_type] if name in params})
        entries.append(entry)
    try:
        return read_dashboard_filters(entries, "query")
    except InvalidFilter as error:
        # "query[0].startDate" names the parameter startDate.
        raise BadParameter(error.path.rpartition(".")[2] or "filter", error.message) from None


def legacy_paging(params: Mapping[str, str], sort_columns: Collection[str], default_sort: str
                  ) -> tuple[str, str, int, int]:
    """The original's list parameters: ``sortBy`` (one of ``sort_columns``), ``sortOrder`` (descending unless
    ``ascending``), ``perPage`` (default 5) and ``pageNum`` (from 0)."""
    sort_by = params.get("sortBy", default_sort)
    if sort_by not in sort_columns:
        raise BadParameter("sortBy", f"must be one of {', '.join(sort_columns)}, got {sort_by!r}")
    sort_order = params.get("sortOrder", "descending")
    if sort_order not in LEGACY_DIRECTIONS:
        raise BadParameter("sortOrder", f"must be ascending or descending, got {sort_order!r}")
    per_page = int_param(params, "perPage", DEFAULT_PER_PAGE, minimum=1, maximum=MAX_PER_PAGE)
    page_number = int_param(params, "pageNum", 0, minimum=0, maximum=10**9)
    return sort_by, sort_order, per_page, page_number


def legacy_session_json(session: sessions.Session) -> dict[str, Any]:
    day = dt.datetime.fromtimestamp(session.started_at_ms // 1000, tz=dt.UTC).date()
    return {"sessionId": str(session.session_id), "length": session.duration_ms, "date": day.isoformat(),
            "appName": session.app_name, "errorCount": session.error_count}


async def list_sessions(request: Request) -> Response:
    params = request.query_params
    filters = legacy_session_filter(params)
    sort_by, sort_order, per_page, page_number = legacy_paging(params, sessions.LEGACY_SORT_COLUMNS, "date")
    sort_column, direction = sessions.LEGACY_SORT_COLUMNS[sort_by], LEGACY_DIRECTIONS[sort_order]
    offset = per_page * page_number
    warehouse = request.state.warehouse
    if offset > DEEP_OFFSET:
        page, count = await deep_session_page(warehouse, filters, sort_column, direction, per_page, offset)
    else:
        # Two queries on two ClickHouse clients at once.
        page, count = await asyncio.gather(
            sessions.legacy_session_page(warehouse, filters, sort_column, direction, per_page, offset),
            sessions.count_sessions(warehouse, filters),
        )
    return JSONResponse({"count": count, "sessions": [legacy_session_json(s) for s in page]})


async def session_events(request: Request) -> Response:
    return await stream_events(request, parse_uuid(request.path_params["session_id"], "sessionId"))


# --- deep offset pages -----------------------------------------------------------------------------------------

# Past this offset a page is read by sample and window (:func:`deep_session_page`): over 1 M sessions it costs the
# same at any depth, about what the candidates path (sessions.ordered_sessions) costs at offset 100, measured.
DEEP_OFFSET = 100
# One session in SAMPLE_RATE estimates where a position is. The sample is one range of the primary key:
# ClickHouse orders UUIDs by their low 64 bits first, and in an RFC 4122/9562 id (v4 as the agent makes them, v7)
# those are the variant bits 10 then 62 random bits. The first 1/SAMPLE_RATE of that span, read FINAL, is its
# own few granules merged: every version of its sessions, the newest seen. Other ids only make the estimate
# worse, never the answer wrong.
SAMPLE_RATE = 32
# The window around the estimate, in standard deviations of it: a window that misses costs a plain FINAL read.
WINDOW_SIGMAS = 4
# The most rows a window sorts: deeper than that (offsets in the tens of millions), the page is read the plain way.
MAX_WINDOW = 200_000

# The session id compared as its 128-bit number: the same order as its text (the text is the number's hex digits,
# most significant first), without making a million strings to compare.
SESSION_ID_NUMBER = sessions.Column("toUInt128(session_id)", "toUInt128(session_id)", "UInt128")


def numeric_ordering(column_: sessions.Column, direction: str) -> sessions.Ordering:
    """:func:`sessions.legacy_ordering` with the session id's text compared as its number."""
    key = SESSION_ID_NUMBER if column_ == sessions.SESSION_ID_TEXT else column_
    return sessions.Term(key, direction), sessions.Term(SESSION_ID_NUMBER, "ASC")


def sample_ranks(offset: int, limit: int) -> tuple[int, int]:
    """The ranks in the sample of the rows that enclose positions ``offset`` to ``offset + limit`` (first 0: the
    window starts the list): the expected ranks, WINDOW_SIGMAS standard deviations (``sqrt`` of the rank) out."""
    expected = offset // SAMPLE_RATE
    expected_end = -(-(offset + limit) // SAMPLE_RATE)
    first = max(expected - math.ceil(WINDOW_SIGMAS * math.sqrt(expected)) - 1, 0)
    return first, expected_end + math.ceil(WINDOW_SIGMAS * math.sqrt(expected_end)) + 1


async def window_bounds(warehouse: Warehouse, filters: Filters, ordering: sessions.Ordering,
                        first: int, last: int) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None] | None:
    """The sample's rows at ranks ``first`` and ``last`` as (sort key, id number), ``None`` for an end of the list
    (rank 0, or a sample too short); ``None`` for both if the sample ends before ``first``."""
    params = QueryParameters()
    conditions = session_filters.conditions(filters, params)
    # High 64 bits 0: a range of the low 64 bits, which ClickHouse orders first.
    low, high = uuid.UUID(int=2**63), uuid.UUID(int=2**63 + 2**62 // SAMPLE_RATE)
    conditions.append(exp.GTE(this=column("session_id"), expression=params.bind(str(low), "UUID")))
    conditions.append(exp.LT(this=column("session_id"), expression=params.bind(str(high), "UUID")))
    tree = exp.select(*(term.column.read() for term in ordering)).from_(sessions.final_sessions_table(), copy=False)
    tree = sessions.sorted_by(sessions.filtered(tree, conditions), ordering)
    tree = tree.limit(params.bind(last - first + 1, "UInt64"), copy=False).offset(params.bind(first, "UInt64"),
                                                                                   copy=False)
    rows = await warehouse.rows(*render(tree, params))
    if first > 0 and not rows:
        return None
    return (tuple(rows[0]) if first > 0 else None), (tuple(rows[-1]) if len(rows) == last - first + 1 else None)


@dataclass(frozen=True)
class Window:
    matching: int  # sessions that match the filter
    before: int  # of them, at or before the window's lower row
    inside: int  # in the window
    page: list[uuid.UUID]  # the ids at the asked positions, in order, if the window holds them

    def holds(self, offset: int, limit: int) -> bool:
        return (self.before <= offset and self.inside <= MAX_WINDOW
                and (self.before + self.inside >= offset + limit or self.before + self.inside == self.matching))


async def read_window(warehouse: Warehouse, filters: Filters, ordering: sessions.Ordering,
                      lower: tuple[Any, ...] | None, upper: tuple[Any, ...] | None, offset: int, limit: int
                      ) -> Window:
    """One pass of the table ``FINAL`` (every count is of newest versions) reading only the sort key and the
    filter's columns: the sessions that match, those at or before ``lower``, and those after it and at or before
    ``upper``, sorted and cut to the page. (The position tests are the ``OR`` of comparisons that
    :func:`sessions.after_condition` writes: comparing tuples instead costs the same on numbers and a quarter more
    of the whole pass on the LowCardinality app name.)"""
    params = QueryParameters()
    conditions = session_filters.conditions(filters, params)
    tests: list[exp.Expr] = []
    if lower is not None:
        tests.append(sessions.after_condition(params, ordering, lower))
    if upper is not None:
        tests.append(exp.Not(this=sessions.after_condition(params, ordering, upper)))
    at_or_before: exp.Expr = exp.Not(this=tests[0].copy()) if lower is not None else number(0)
    inside: exp.Expr = exp.and_(*(t.copy() for t in tests)) if tests else number(1)
    key, id_number = (term.column.tree() for term in ordering)
    x = exp.to_identifier("x")

    def element(i: int) -> exp.Expr:
        return call("tupleElement", x.copy(), number(i))

    # (key, id number) ascending; descending, sorted backwards on (key, bitNot(id number)): ties stay ascending.
    if ordering[0].direction == "ASC":
        sort_name, sort_key = "arraySort", exp.Tuple(expressions=[element(1), element(2)])
    else:
        sort_name, sort_key = "arrayReverseSort", exp.Tuple(expressions=[element(1), call("bitNot", element(2))])
    window = exp.CombinedParameterizedAgg(
        this="groupArrayIf", expressions=[params.bind(MAX_WINDOW, "UInt64")],
        params=[exp.Tuple(expressions=[key, id_number, column("session_id")]), inside.copy()])
    start = exp.Add(this=call("greatest", exp.Sub(this=call("toInt64", params.bind(offset, "UInt64")),
                                                  expression=call("toInt64", column("before"))), number(0)),
                    expression=number(1))
    page = call("arraySlice", call(sort_name, lambda_(sort_key, "x"), window), start, params.bind(limit, "UInt64"))
    tree = exp.select(
        exp.alias_(exp.Count(this=exp.Star()), "matching"),
        exp.alias_(exp.CombinedAggFunc(this="countIf", expressions=[at_or_before]), "before"),
        exp.alias_(exp.CombinedAggFunc(this="countIf", expressions=[inside]), "inside"),
        page,
    ).from_(sessions.final_sessions_table(), copy=False)
    [(matching, before, inside_count, ids)] = await warehouse.rows(*render(sessions.filtered(tree, conditions),
                                                                            params))
    return Window(int(matching), int(before), int(inside_count), [row[2] for row in ids])


async def sessions_by_id(warehouse: Warehouse, ids: list[uuid.UUID]) -> list[sessions.Session]:
    """The newest version of each session of ``ids``, in that order (read ``FINAL``, through the primary key)."""
    if not ids:
        return []
    params = QueryParameters()
    tree = exp.select(*sessions.read_columns()).from_(sessions.final_sessions_table(), copy=False).where(
        exp.In(this=column("session_id"), field=params.bind([str(i) for i in ids], "Array(UUID)")), copy=False)
    rows = await warehouse.rows(*render(tree, params))
    found = {row[0]: sessions.Session.from_row(row) for row in rows}
    return [found[i] for i in ids if i in found]


async def deep_session_page(warehouse: Warehouse, filters: Filters, column: sessions.Column,
                            direction: str, limit: int, offset: int) -> tuple[list[sessions.Session], int]:
    """The page at ``offset`` in the legacy order and the number of matching sessions: the same answer as
    ``sessions.legacy_session_page`` and ``sessions.count_sessions``, without sorting the whole list.

    ``FINAL`` with ``ORDER BY ... LIMIT 5 OFFSET 500000`` merges every column of every part and sorts half a
    million rows. Here a sample (:data:`SAMPLE_RATE`) gives two rows that most likely enclose the page
    (:func:`window_bounds`), one ``FINAL`` pass over the sort key and the filter's columns counts exactly the
    sessions up to the first of them and sorts only the few thousand between the two (:func:`read_window`), and
    the page's sessions are read by id. The counts prove the window holds the page; when it does not (an estimate
    that far off is rare), the page is read the plain way. The count comes from the same pass. A session moved
    again between the pass and the read by id shows its newest row, as it would on the next request.
    """
    first, last = sample_ranks(offset, limit)
    if (last - first + 1) * SAMPLE_RATE > MAX_WINDOW:
        return await asyncio.gather(plain_page(warehouse, filters, column, direction, limit, offset),
                                    sessions.count_sessions(warehouse, filters))
    ordering = numeric_ordering(column, direction)
    bounds = await window_bounds(warehouse, filters, ordering, first, last)
    if bounds is None:  # fewer sampled sessions than the offset asks: the list most likely ends before it
        count = await sessions.count_sessions(warehouse, filters)
        if count <= offset:
            return [], count
        return await plain_page(warehouse, filters, column, direction, limit, offset), count
    window = await read_window(warehouse, filters, ordering, *bounds, offset, limit)
    if not window.holds(offset, limit):
        log.info("deep page: the window (%d before, %d inside) misses offset %d; reading it FINAL",
                 window.before, window.inside, offset)
        return await plain_page(warehouse, filters, column, direction, limit, offset), window.matching
    return await sessions_by_id(warehouse, window.page), window.matching


async def plain_page(warehouse: Warehouse, filters: Filters, column: sessions.Column,
                     direction: str, limit: int, offset: int) -> list[sessions.Session]:
    """The page read ``FINAL`` and sorted whole: the simple way, for what the window cannot answer."""
    return await sessions.final_sessions(warehouse, filters, sessions.legacy_ordering(column, direction),
                                         None, offset, limit)


# --- funnels ---------------------------------------------------------------------------------------------------


# The filters the dashboard's stored form can say.
DASHBOARD_FILTERS = (AppNameFilter, StartedFilter, DurationFilter, ErrorsFilter)


def dashboard_form(definition: FunnelDefinition) -> dict[str, Any]:
    """The stored form the dashboard reads. A ``/v1`` funnel may hold filters the dashboard form cannot say: an
    app filter naming several apps is shown with its first name and every name in ``appNamesAnyOf``; a filter of
    another kind (``started_at``, ``id_prefix``, ``browser``, ...) is left out of ``sessionFilters`` and kept, in
    the clean form, in ``filtersOnlyInV1``; an order other than ``ordered``, exclusions and a breakdown are kept in
    ``onlyInV1``. Saving such a funnel from the old dashboard narrows or drops them."""
    try:
        return to_dashboard(definition)
    except InvalidFunnel:
        sayable = tuple(AppNameFilter(names=f.names[:1]) if isinstance(f, AppNameFilter) else f
                        for f in definition.filters if isinstance(f, DASHBOARD_FILTERS))
        document = to_dashboard(msgspec.structs.replace(definition, filters=sayable, order="ordered", exclusions=(),
                                                        breakdown=None))
        several = [list(f.names) for f in definition.filters if isinstance(f, AppNameFilter)]
        if any(len(names) > 1 for names in several):
            document["appNamesAnyOf"] = several
        unsayable = [f for f in definition.filters if not isinstance(f, DASHBOARD_FILTERS)]
        if unsayable:
            clean = to_clean(msgspec.structs.replace(definition, filters=tuple(unsayable)))
            document["filtersOnlyInV1"] = clean["filters"]
        clean = to_clean(definition)
        only_v1 = {key: clean[key] for key in ("order", "exclusions", "breakdown") if key in clean}
        if only_v1:
            document["onlyInV1"] = only_v1
        return document


def legacy_funnel_json(funnel: StoredFunnel) -> dict[str, Any]:
    """A funnel as the dashboard reads it: the stored form's keys at the top and under ``funnel``, with ``id``."""
    stored = dashboard_form(funnel.definition)
    return {"id": funnel.id, **stored, "funnel": stored, "createdAt": iso(funnel.created_at),
            "updatedAt": iso(funnel.updated_at)}


async def dashboard_definition_from_body(request: Request) -> FunnelDefinition:
    body = await limited_body(request, MAX_BODY)
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise BadParameter("body", "must be a JSON object") from None
    if isinstance(document, dict) and set(document) == {"funnel"} and isinstance(document["funnel"], dict):
        document = document["funnel"]  # accept the funnel wrapped as the list answers it
    if not isinstance(document, dict):
        raise BadParameter("body", "must be a JSON object")
    try:
        return from_dashboard(document)
    except InvalidFunnel as error:
        raise BadParameter(field_of(error), error.message) from None


def funnel_id_from(request: Request) -> int:
    return parse_int(request.path_params["funnel_id"], "id", minimum=1, maximum=MAX_FUNNEL_ID)


def short_day(moment: dt.datetime) -> str:
    """The original's date text: UTC, without zero padding (``2026-1-5``)."""
    day = moment.astimezone(dt.UTC)
    return f"{day.year}-{day.month}-{day.day}"


async def list_funnels(request: Request) -> Response:
    """``{funnels: [{id, name, created, lastModified}], count}``, paged and sorted as the original did: by
    ``sortBy`` (name, created, lastModified; default name), descending unless ``sortOrder=ascending``,
    ``perPage`` (default 5) from ``pageNum`` 0. Deleted funnels are neither listed nor counted."""
    sort_by, sort_order, per_page, page_number = legacy_paging(request.query_params, ORDER_COLUMNS, "name")
    page, count = await funnels_of(request).page(sort_by, sort_order, per_page, per_page * page_number)
    return JSONResponse({
        "funnels": [{"id": f.id, "name": f.definition.name, "created": short_day(f.created_at),
                     "lastModified": short_day(f.updated_at)} for f in page],
        "count": count,
    })


async def create_funnel(request: Request) -> Response:
    funnel = await funnels_of(request).create(await dashboard_definition_from_body(request))
    return JSONResponse(legacy_funnel_json(funnel), status_code=201)


async def get_funnel(request: Request) -> Response:
    return JSONResponse(legacy_funnel_json(await funnels_of(request).get(funnel_id_from(request))))


async def update_funnel(request: Request) -> Response:
    funnel_id = funnel_id_from(request)
    await funnels_of(request).update(funnel_id, await dashboard_definition_from_body(request))
    return Response(status_code=204)


async def delete_funnel(request: Request) -> Response:
    await funnels_of(request).delete(funnel_id_from(request))
    return Response(status_code=200)  # the original's answer


async def funnel_results_handler(request: Request) -> Response:
    """The funnel over sessions started from ``startDate`` to ``endDate`` (UTC days, inclusive; a missing one is
    open), read as the dashboard form's date filter."""
    funnel_id = funnel_id_from(request)
    params = request.query_params
    entry = {"filterType": "date", **{name: params[name] for name in ("startDate", "endDate") if name in params}}
    try:
        extra = read_dashboard_filters([entry], "query")
    except InvalidFilter as error:
        raise BadParameter(error.path.rpartition(".")[2] or "startDate", error.message) from None
    funnel = await funnels_of(request).get(funnel_id)
    result = await funnel_results.evaluate(request.state.warehouse, request.state.database, funnel.definition,
                                           extra, AllIds())
    return JSONResponse({"funnel": legacy_funnel_json(funnel), "results": funnel_results.legacy_results(result)})


async def funnel_options(request: Request) -> Response:
    event_type = request.query_params.get("eventType")
    if event_type not in ("click", "custom"):
        raise BadParameter("eventType", f"must be click or custom, got {event_type!r}")
    return JSONResponse(await conversion_labels(request.state.warehouse, event_type))


async def filter_options(request: Request) -> Response:
    filter_type = request.query_params.get("filterType")
    if filter_type != "appName":
        raise BadParameter("filterType", f"must be appName, got {filter_type!r}")
    return JSONResponse(await sessions.distinct_apps(request.state.warehouse))


ROUTES = [
    Route("/api/sessions", list_sessions, methods=["GET"]),
    Route("/api/sessions/{session_id}", session_events, methods=["GET"]),
    Route("/api/funnels", list_funnels, methods=["GET"]),
    Route("/api/funnels", create_funnel, methods=["POST"]),
    Route("/api/funnels/{funnel_id}", funnel_results_handler, methods=["GET"]),
    Route("/api/funnels/{funnel_id}", update_funnel, methods=["PUT"]),
    Route("/api/funnels/{funnel_id}", delete_funnel, methods=["DELETE"]),
    Route("/api/funnel/{funnel_id}", get_funnel, methods=["GET"]),
    Route("/api/options/funnel", funnel_options, methods=["GET"]),
    Route("/api/options/filter", filter_options, methods=["GET"]),
]
