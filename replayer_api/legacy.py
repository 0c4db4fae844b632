"""The original Bard dashboard's API, ``/api``, answered on its contract (see DESIGN.md and the notes on the
original backend): the same paths, parameters, shapes and status codes, with its plain bugs fixed.

Fixed, as the original obviously meant: an unknown filter is a 400 (the original silently filtered on "today");
an update or delete of a missing or deleted funnel is a 404 (the original answered 204); deleted funnels are
gone to every read; replay events come in timestamp order; an empty filter list (stored as ``[{}]``) means no
filter; the default end of a results date range is today (the original's was fixed in 2022).

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
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from funnels import AllIds, InvalidFunnel, dashboard_filters, from_dashboard, to_dashboard
from funnels.definition import AppNameFilter, FunnelDefinition
from replayer_api import funnel_results, sessions
from replayer_api.errors import BadParameter
from replayer_api.funnel_store import MAX_FUNNEL_ID, ORDER_COLUMNS, StoredFunnel, iso
from replayer_api.options import conversion_labels
from replayer_api.parameters import (
    day_start_ms,
    int_param,
    limited_body,
    optional_int,
    parse_day,
    parse_int,
    parse_uuid,
    today_utc,
)
from replayer_api.v1 import MAX_BODY, field_of, funnels_of, stream_events
from replayer_api.warehouse import Warehouse

log = logging.getLogger(__name__)

FILTER_TYPES = ("length", "date", "appName", "Has Errors?")
LEGACY_DIRECTIONS = {"ascending": "ASC", "descending": "DESC"}
DEFAULT_PER_PAGE = 5
MAX_PER_PAGE = 1000


def legacy_session_filter(params: Any) -> sessions.SessionFilter:
    """The ``filter_N`` parameters: each names a filter type whose values are in shared parameters."""
    types: set[str] = set()
    for key, value in params.multi_items():
        if key.startswith("filter"):
            if value not in FILTER_TYPES:
                raise BadParameter(key, f"must be one of {', '.join(FILTER_TYPES)}, got {value!r}")
            types.add(value)
    apps: tuple[str, ...] = ()
    started_from = started_before = min_length = max_length = None
    has_errors = None
    if "length" in types:
        min_length = optional_int(params, "minLength")
        max_length = optional_int(params, "maxLength")
        if min_length is not None and max_length is not None and min_length > max_length:
            raise BadParameter("minLength", f"{min_length} is greater than maxLength {max_length}")
    if "date" in types:
        start = parse_day(params["startDate"], "startDate") if params.get("startDate") else None
        end = parse_day(params["endDate"], "endDate") if params.get("endDate") else today_utc()
        if start is not None and start > end:
            raise BadParameter("startDate", f"{start} is after endDate {end}")
        started_from = day_start_ms(start) if start is not None else None
        started_before = day_start_ms(end + dt.timedelta(days=1))
    if "appName" in types:
        name = params.get("textContent")
        if not name:
            raise BadParameter("textContent", "the appName filter needs the app name in textContent")
        apps = (name,)
    if "Has Errors?" in types:
        answer = params.get("yesOrNo")
        if answer not in ("yes", "no"):
            raise BadParameter("yesOrNo", f"must be yes or no, got {answer!r}")
        has_errors = answer == "yes"
    return sessions.SessionFilter(apps=apps, started_from_ms=started_from, started_before_ms=started_before,
                                  min_duration_ms=min_length, max_duration_ms=max_length, has_errors=has_errors)


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
    session_filter = legacy_session_filter(params)
    sort_by, sort_order, per_page, page_number = legacy_paging(params, sessions.LEGACY_SORT_COLUMNS, "date")
    column, direction = sessions.LEGACY_SORT_COLUMNS[sort_by], LEGACY_DIRECTIONS[sort_order]
    offset = per_page * page_number
    warehouse = request.state.warehouse
    if offset > DEEP_OFFSET:
        page, count = await deep_session_page(warehouse, session_filter, column, direction, per_page, offset)
    else:
        # Two queries on two ClickHouse clients at once.
        page, count = await asyncio.gather(
            sessions.legacy_session_page(warehouse, session_filter, column, direction, per_page, offset),
            sessions.count_sessions(warehouse, session_filter),
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
SESSION_ID_NUMBER = sessions.Column("toUInt128(session_id)", "toUInt128(session_id)", "{v:UInt128}")


def numeric_ordering(column: sessions.Column, direction: str) -> sessions.Ordering:
    """:func:`sessions.legacy_ordering` with the session id's text compared as its number."""
    key = SESSION_ID_NUMBER if column == sessions.SESSION_ID_TEXT else column
    return sessions.Term(key, direction), sessions.Term(SESSION_ID_NUMBER, "ASC")


def position_test(conditions: sessions.Conditions, ordering: sessions.Ordering, row: tuple[Any, ...]) -> str:
    """Whether a session comes after ``row`` (its sort key and id number) in ``ordering``, as an expression to select:
    the ``OR`` of comparisons that :func:`sessions.add_after` writes, its values bound in ``conditions``. (Comparing
    tuples instead costs the same on numbers and a quarter more of the whole pass on the LowCardinality app name.)"""
    sessions.add_after(conditions, ordering, row)
    return conditions.fragments.pop()


def sample_ranks(offset: int, limit: int) -> tuple[int, int]:
    """The ranks in the sample of the rows that enclose positions ``offset`` to ``offset + limit`` (first 0: the
    window starts the list): the expected ranks, WINDOW_SIGMAS standard deviations (``sqrt`` of the rank) out."""
    expected = offset // SAMPLE_RATE
    expected_end = -(-(offset + limit) // SAMPLE_RATE)
    first = max(expected - math.ceil(WINDOW_SIGMAS * math.sqrt(expected)) - 1, 0)
    return first, expected_end + math.ceil(WINDOW_SIGMAS * math.sqrt(expected_end)) + 1


async def window_bounds(warehouse: Warehouse, session_filter: sessions.SessionFilter, ordering: sessions.Ordering,
                        first: int, last: int) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None] | None:
    """The sample's rows at ranks ``first`` and ``last`` as (sort key, id number), ``None`` for an end of the list
    (rank 0, or a sample too short); ``None`` for both if the sample ends before ``first``."""
    conditions = sessions.filter_conditions(session_filter)
    conditions.add("session_id >= {id:UUID}", id=str(uuid.UUID(int=2**63)))  # high 64 bits 0: a range of the low
    conditions.add("session_id < {id:UUID}", id=str(uuid.UUID(int=2**63 + 2**62 // SAMPLE_RATE)))
    conditions.parameters.update(count=last - first + 1, first=first)
    selected = ", ".join(term.column.selected for term in ordering)
    order_by = ", ".join(term.sql for term in ordering)
    sql = (
        f"SELECT {selected} FROM sessions FINAL{conditions.where()} "  # noqa: S608 - fragments are constants
        f"ORDER BY {order_by} LIMIT {{count:UInt64}} OFFSET {{first:UInt64}}"
    )
    rows = await warehouse.rows(sql, conditions.parameters)
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


async def read_window(warehouse: Warehouse, session_filter: sessions.SessionFilter, ordering: sessions.Ordering,
                      lower: tuple[Any, ...] | None, upper: tuple[Any, ...] | None, offset: int, limit: int
                      ) -> Window:
    """One pass of the table ``FINAL`` (every count is of newest versions) reading only the sort key and the
    filter's columns: the sessions that match, those at or before ``lower``, and those after it and at or before
    ``upper``, sorted and cut to the page."""
    conditions = sessions.filter_conditions(session_filter)
    tests = []
    if lower is not None:
        tests.append(position_test(conditions, ordering, lower))
    if upper is not None:
        tests.append(f"NOT {position_test(conditions, ordering, upper)}")
    at_or_before = f"NOT {tests[0]}" if lower is not None else "0"
    inside = " AND ".join(tests) or "1"
    key, number = (term.column.expression for term in ordering)
    # (key, id number) ascending; descending, sorted backwards on (key, bitNot(id number)): ties stay ascending.
    if ordering[0].direction == "ASC":
        sort = "arraySort(x -> (x.1, x.2), "
    else:
        sort = "arrayReverseSort(x -> (x.1, bitNot(x.2)), "
    window = f"groupArrayIf({{window:UInt64}})(({key}, {number}, session_id), {inside})"
    conditions.parameters.update(window=MAX_WINDOW, offset=offset, limit=limit)
    sql = (
        f"SELECT count() AS matching, countIf({at_or_before}) AS before, countIf({inside}) AS inside, "  # noqa: S608
        f"arraySlice({sort}{window}), "
        f"greatest(toInt64({{offset:UInt64}}) - toInt64(before), 0) + 1, {{limit:UInt64}}) "
        f"FROM sessions FINAL{conditions.where()}"
    )
    [(matching, before, inside_count, page)] = await warehouse.rows(sql, conditions.parameters)
    return Window(int(matching), int(before), int(inside_count), [row[2] for row in page])


async def sessions_by_id(warehouse: Warehouse, ids: list[uuid.UUID]) -> list[sessions.Session]:
    """The newest version of each session of ``ids``, in that order (read ``FINAL``, through the primary key)."""
    if not ids:
        return []
    sql = f"SELECT {sessions.COLUMNS} FROM sessions FINAL WHERE session_id IN {{ids:Array(UUID)}}"  # noqa: S608
    rows = await warehouse.rows(sql, {"ids": [str(i) for i in ids]})
    found = {row[0]: sessions.Session.from_row(row) for row in rows}
    return [found[i] for i in ids if i in found]


async def deep_session_page(warehouse: Warehouse, session_filter: sessions.SessionFilter, column: sessions.Column,
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
        return await asyncio.gather(plain_page(warehouse, session_filter, column, direction, limit, offset),
                                    sessions.count_sessions(warehouse, session_filter))
    ordering = numeric_ordering(column, direction)
    bounds = await window_bounds(warehouse, session_filter, ordering, first, last)
    if bounds is None:  # fewer sampled sessions than the offset asks: the list most likely ends before it
        count = await sessions.count_sessions(warehouse, session_filter)
        if count <= offset:
            return [], count
        return await plain_page(warehouse, session_filter, column, direction, limit, offset), count
    window = await read_window(warehouse, session_filter, ordering, *bounds, offset, limit)
    if not window.holds(offset, limit):
        log.info("deep page: the window (%d before, %d inside) misses offset %d; reading it FINAL",
                 window.before, window.inside, offset)
        return await plain_page(warehouse, session_filter, column, direction, limit, offset), window.matching
    return await sessions_by_id(warehouse, window.page), window.matching


async def plain_page(warehouse: Warehouse, session_filter: sessions.SessionFilter, column: sessions.Column,
                     direction: str, limit: int, offset: int) -> list[sessions.Session]:
    """The page read ``FINAL`` and sorted whole: the simple way, for what the window cannot answer."""
    return await sessions.final_sessions(warehouse, session_filter, sessions.legacy_ordering(column, direction),
                                         None, offset, limit)


# --- funnels ---------------------------------------------------------------------------------------------------


def dashboard_form(definition: FunnelDefinition) -> dict[str, Any]:
    try:
        return to_dashboard(definition)
    except InvalidFunnel:
        # A /v1 funnel whose app filter names several apps: the dashboard form has one app per filter. Shown
        # with the first name and every name in an extra key; saving it from the old dashboard narrows it.
        filters = tuple(AppNameFilter(names=f.names[:1]) if isinstance(f, AppNameFilter) else f
                        for f in definition.filters)
        document = to_dashboard(msgspec.structs.replace(definition, filters=filters))
        document["appNamesAnyOf"] = [list(f.names) for f in definition.filters if isinstance(f, AppNameFilter)]
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
    """The funnel over sessions started from ``startDate`` to ``endDate`` (inclusive; default: all until today)."""
    funnel_id = funnel_id_from(request)
    params = request.query_params
    start = parse_day(params["startDate"], "startDate") if params.get("startDate") else None
    end = parse_day(params["endDate"], "endDate") if params.get("endDate") else today_utc()
    if start is not None and start > end:
        raise BadParameter("startDate", f"{start} is after endDate {end}")
    date_filter: dict[str, Any] = {"filterType": "date", "endDate": end.isoformat()}
    if start is not None:
        date_filter["startDate"] = start.isoformat()
    try:
        extra = dashboard_filters([date_filter], "dateRange")
    except InvalidFunnel as error:
        raise BadParameter("startDate", error.message) from None
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
