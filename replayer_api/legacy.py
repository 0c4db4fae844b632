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
from collections.abc import Collection, Mapping
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
    warehouse = request.state.warehouse
    # Two queries on two ClickHouse clients at once.
    page, count = await asyncio.gather(
        sessions.legacy_session_page(warehouse, session_filter, sessions.LEGACY_SORT_COLUMNS[sort_by],
                                     LEGACY_DIRECTIONS[sort_order], per_page, per_page * page_number),
        sessions.count_sessions(warehouse, session_filter),
    )
    return JSONResponse({"count": count, "sessions": [legacy_session_json(s) for s in page]})


async def session_events(request: Request) -> Response:
    return await stream_events(request, parse_uuid(request.path_params["session_id"], "sessionId"))


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
