"""The documented API, ``/v1`` (described by :mod:`replayer_api.openapi`).

Every query parameter is known by name: an unknown one is a 400 (a typo must not silently drop a filter).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from clickhouse.session_filters import (
    MAX_TEXT_LENGTH,
    AppNameFilter,
    BrowserFilter,
    CountryFilter,
    DeviceTypeFilter,
    DurationFilter,
    EntryPathFilter,
    ErrorsFilter,
    Filters,
    IdPrefixFilter,
    InvalidFilter,
    OsFilter,
    PagesFilter,
    SessionFilter,
    SignalFilter,
    StartedAtFilter,
    StartedFilter,
    validate_filters,
)
from funnels import FunnelDefinition, IdPage, InvalidFunnel, from_clean
from replayer_api import active_sessions, funnel_results, markers, sessions
from replayer_api.cursors import Cursor, decode_cursor
from replayer_api.errors import BadParameter, NotFound, UnsupportedMediaType
from replayer_api.funnel_store import MAX_FUNNEL_ID, FunnelStore, clean_json
from replayer_api.options import CONVERSION_KINDS, conversion_labels
from replayer_api.parameters import (
    MAX_INT,
    int_param,
    iso_ms,
    limited_body,
    optional_int,
    parse_bool,
    parse_day,
    parse_instant,
    parse_int,
    parse_uuid,
)
from replayer_api.replay import NDJSON, event_chunks, json_array, ndjson_lines
from replayer_api.warehouse import Warehouse

DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_BODY = 1024 * 1024
MISSING_OR_UNKNOWN = re.compile(r"(?:missing required|unknown) field `([^`]+)`")


def check_known(request: Request, known: Collection[str]) -> None:
    for name in request.query_params:
        if name not in known:
            raise BadParameter(name, f"unknown parameter; this endpoint takes {', '.join(sorted(known)) or 'none'}")


def session_json(session: sessions.Session) -> dict[str, Any]:
    return {
        "session_id": str(session.session_id),
        "app_name": session.app_name,
        "started_at": iso_ms(session.started_at_ms),
        "ended_at": iso_ms(session.ended_at_ms),
        "duration_ms": session.duration_ms,
        "event_count": session.event_count,
        "error_count": session.error_count,
        "browser": session.browser,
        "browser_major": session.browser_major,
        "os": session.os,
        "device_type": session.device_type,
        "country": session.country,
        "viewport": {"width": session.viewport_width, "height": session.viewport_height},
        "entry_url": session.entry_url,
        "entry_path": session.entry_path,
        "exit_path": session.exit_path,
        "page_count": session.page_count,
        "click_count": session.click_count,
        "rage_click_count": session.rage_click_count,
        "dead_click_count": session.dead_click_count,
        "error_click_count": session.error_click_count,
    }


def cursor_text(cursor: Cursor | None) -> str | None:
    return cursor.encode() if cursor is not None else None


SESSION_PARAMETERS = ("app", "started_after", "started_before", "min_duration_ms", "max_duration_ms", "has_errors",
                      "id_prefix", "browser", "os", "device_type", "country", "entry_path", "min_pages", "max_pages",
                      "has_rage_clicks", "has_dead_clicks", "has_error_clicks", "sort", "order", "limit", "cursor",
                      "before")
# has_<signal>s: the signal filter each such parameter sets.
SIGNAL_PARAMETERS = {"has_rage_clicks": "rage_click", "has_dead_clicks": "dead_click",
                     "has_error_clicks": "error_click"}


def session_filter_from(request: Request) -> Filters:
    """The ``/v1`` list's filter parameters as the one filter model's conditions (checked by its validation, so
    the rules are those of a stored funnel's filters); an error names the query parameter."""
    params = request.query_params
    filters: list[SessionFilter] = []
    apps = tuple(params.getlist("app"))
    if apps:
        if any(not app for app in apps):
            raise BadParameter("app", "must not be empty")
        filters.append(AppNameFilter(names=apps))
    started_from = parse_instant(params["started_after"], "started_after") if params.get("started_after") else None
    started_before = (parse_instant(params["started_before"], "started_before")
                      if params.get("started_before") else None)
    if started_from is not None or started_before is not None:
        filters.append(StartedAtFilter(after_ms=started_from, before_ms=started_before))
    min_duration = optional_int(params, "min_duration_ms")
    max_duration = optional_int(params, "max_duration_ms")
    if min_duration is not None or max_duration is not None:
        filters.append(DurationFilter(min_ms=min_duration, max_ms=max_duration))
    if params.get("has_errors"):
        filters.append(ErrorsFilter(has_errors=parse_bool(params["has_errors"], "has_errors")))
    prefix = params.get("id_prefix")
    if prefix is not None:
        filters.append(IdPrefixFilter(prefix=prefix.lower()))
    for name, kind in (("browser", BrowserFilter), ("os", OsFilter)):
        if params.getlist(name):
            filters.append(kind(names=tuple(params.getlist(name))))
    if params.getlist("device_type"):
        filters.append(DeviceTypeFilter(types=tuple(params.getlist("device_type"))))
    if params.getlist("country"):
        filters.append(CountryFilter(codes=tuple(params.getlist("country"))))
    if params.get("entry_path") is not None:
        filters.append(EntryPathFilter(prefix=params["entry_path"]))
    min_pages, max_pages = optional_int(params, "min_pages"), optional_int(params, "max_pages")
    if min_pages is not None or max_pages is not None:
        filters.append(PagesFilter(min_pages=min_pages, max_pages=max_pages))
    for name, signal in SIGNAL_PARAMETERS.items():
        if params.get(name):
            filters.append(SignalFilter(signal=signal, present=parse_bool(params[name], name)))
    try:
        validate_filters(filters, "filters")
    except InvalidFilter as error:
        raise BadParameter(query_parameter_of(filters, error.path), error.message) from None
    return tuple(filters)


# The query parameter each field of a condition comes from; "" (the condition as a whole, e.g. an inverted range)
# names its first.
QUERY_PARAMETERS: dict[type, dict[str, str]] = {
    AppNameFilter: {"": "app"},
    StartedAtFilter: {"": "started_after", "after_ms": "started_after", "before_ms": "started_before"},
    DurationFilter: {"": "min_duration_ms", "min_ms": "min_duration_ms", "max_ms": "max_duration_ms"},
    ErrorsFilter: {"": "has_errors"},
    IdPrefixFilter: {"": "id_prefix"},
    BrowserFilter: {"": "browser"},
    OsFilter: {"": "os"},
    DeviceTypeFilter: {"": "device_type"},
    CountryFilter: {"": "country"},
    EntryPathFilter: {"": "entry_path"},
    PagesFilter: {"": "min_pages", "min_pages": "min_pages", "max_pages": "max_pages"},
}


def query_parameter_of(filters: Sequence[SessionFilter], path: str) -> str:
    """The query parameter behind an error at ``path`` (``filters[2].min_ms``, ``filters[0].names[1]``)."""
    index_text, _, field = path.removeprefix("filters[").partition("]")
    item = filters[int(index_text)]
    if isinstance(item, SignalFilter):
        return next(name for name, signal in SIGNAL_PARAMETERS.items() if signal == item.signal)
    names = QUERY_PARAMETERS[type(item)]
    return names.get(field.lstrip(".").split("[")[0], names[""])


async def list_sessions(request: Request) -> Response:
    check_known(request, SESSION_PARAMETERS)
    params = request.query_params
    session_filter = session_filter_from(request)
    sort_name = params.get("sort", "start")
    if sort_name not in sessions.SORT_KEYS:
        raise BadParameter("sort", f"must be one of {', '.join(sessions.SORT_KEYS)}, got {sort_name!r}")
    sort = sessions.SORT_KEYS[sort_name]
    order = params.get("order", "desc")
    if order not in sessions.DIRECTIONS:
        raise BadParameter("order", f"must be asc or desc, got {order!r}")
    limit = int_param(params, "limit", DEFAULT_PAGE, minimum=1, maximum=MAX_PAGE)
    if params.get("cursor") and params.get("before"):
        raise BadParameter("before", "give either cursor (the page after) or before (the page before), not both")
    after = (decode_cursor(params["cursor"], sort=sort_name, order=order, key_type=sort.key_type)
             if params.get("cursor") else None)
    before = (decode_cursor(params["before"], sort=sort_name, order=order, key_type=sort.key_type, name="before")
              if params.get("before") else None)
    page = await sessions.session_page(request.state.warehouse, session_filter, sort, order, limit, after, before)
    return JSONResponse({"sessions": [session_json(s) for s in page.sessions],
                         "next_cursor": cursor_text(page.next_cursor),
                         "prev_cursor": cursor_text(page.prev_cursor)})


async def get_session(request: Request) -> Response:
    check_known(request, ())
    session_id = parse_uuid(request.path_params["session_id"], "session_id")
    ended = await sessions.find_session(request.state.warehouse, session_id)
    if ended is not None:
        return JSONResponse({**session_json(ended), "status": "ended"})
    active = await active_sessions.find_active(request.state.pg, session_id)
    if active is not None:
        return JSONResponse({**active, "status": "active"})
    raise NotFound("session", session_id)


async def session_events(request: Request) -> Response:
    check_known(request, ())
    session_id = parse_uuid(request.path_params["session_id"], "session_id")
    ndjson = NDJSON in request.headers.get("accept", "")
    return await stream_events(request, session_id, ndjson=ndjson)


async def stream_events(request: Request, session_id: uuid.UUID, *, ndjson: bool = False) -> Response:
    """The session's events as one JSON array, streamed (the gzip middleware compresses it on the way); or, when
    the client asks for ``application/x-ndjson``, one event per line, which a browser can parse as it arrives."""
    warehouse: Warehouse = request.state.warehouse
    chunks = event_chunks(warehouse, session_id)
    first = await anext(chunks, None)
    if first is None:
        await require_known_session(request, session_id)  # no events: an empty replay, if the session exists
        return Response(b"", media_type=NDJSON) if ndjson else JSONResponse([])
    if ndjson:
        return StreamingResponse(ndjson_lines(first, chunks), media_type=NDJSON)
    return StreamingResponse(json_array(first, chunks), media_type="application/json")


async def require_known_session(request: Request, session_id: uuid.UUID) -> None:
    """A 404 unless the session has ended (ClickHouse) or is active (PostgreSQL)."""
    if await sessions.find_session(request.state.warehouse, session_id) is None and \
            await active_sessions.find_active(request.state.pg, session_id) is None:
        raise NotFound("session", session_id)


async def session_markers(request: Request) -> Response:
    """Clicks, custom events and console errors, for a timeline beside the replay (see :mod:`replayer_api.markers`)."""
    check_known(request, ())
    session_id = parse_uuid(request.path_params["session_id"], "session_id")
    warehouse: Warehouse = request.state.warehouse
    found = await markers.session_markers(warehouse, session_id)
    if found is None:
        await require_known_session(request, session_id)  # no events: no markers, if the session exists
        return JSONResponse({"session_id": str(session_id), "first_event_at": None, "markers": [],
                             "truncated": False})
    first = found.first_event_ms
    return JSONResponse({
        "session_id": str(session_id),
        "first_event_at": iso_ms(first),
        "markers": [{"kind": m.kind, "at": iso_ms(m.at_ms), "at_ms": m.at_ms, "offset_ms": m.at_ms - first,
                     "label": m.label, "x": m.x, "y": m.y} for m in found.markers],
        "truncated": found.truncated,
    })


async def list_active_sessions(request: Request) -> Response:
    check_known(request, ("app", "limit", "cursor"))
    params = request.query_params
    apps = tuple(params.getlist("app"))
    limit = int_param(params, "limit", DEFAULT_PAGE, minimum=1, maximum=MAX_PAGE)
    # Keys are client milliseconds, which PostgreSQL keeps as they came (any bigint).
    after = (decode_cursor(params["cursor"], sort=active_sessions.SORT, order=active_sessions.ORDER, key_type=int,
                           minimum=-MAX_INT) if params.get("cursor") else None)
    page = await active_sessions.active_page(request.state.pg, apps, limit, after)
    return JSONResponse({"sessions": page.sessions, "next_cursor": cursor_text(page.next_cursor)})


async def list_apps(request: Request) -> Response:
    check_known(request, ())
    return JSONResponse({"apps": await sessions.distinct_apps(request.state.warehouse)})


async def list_options(request: Request) -> Response:
    """The values a session property takes (for autocomplete): ``{property, values: [{value, sessions}]}``, the
    most common first, those starting with ``prefix``."""
    check_known(request, ("prefix", "limit"))
    property_name = request.path_params["property"]
    if property_name not in sessions.OPTION_COLUMNS:
        raise BadParameter("property", f"must be one of {', '.join(sessions.OPTION_COLUMNS)}, got {property_name!r}")
    params = request.query_params
    prefix = params.get("prefix", "")
    if len(prefix) > MAX_TEXT_LENGTH:
        raise BadParameter("prefix", f"must be at most {MAX_TEXT_LENGTH} characters")
    limit = int_param(params, "limit", 100, minimum=1, maximum=1000)
    found = await sessions.distinct_values(request.state.warehouse, property_name, prefix, limit)
    return JSONResponse({"property": property_name,
                         "values": [{"value": value, "sessions": count} for value, count in found]})


async def list_conversion_labels(request: Request) -> Response:
    check_known(request, ("kind", "prefix", "limit"))
    params = request.query_params
    kind = params.get("kind")
    if kind not in CONVERSION_KINDS:
        raise BadParameter("kind", f"must be one of {', '.join(CONVERSION_KINDS)}, got {kind!r}")
    limit = int_param(params, "limit", 1000, minimum=1, maximum=10_000)
    labels = await conversion_labels(request.state.warehouse, kind, params.get("prefix", ""), limit)
    return JSONResponse({"kind": kind, "labels": labels})


# --- funnels ---------------------------------------------------------------------------------------------------


def funnel_id_from(request: Request) -> int:
    return parse_int(request.path_params["funnel_id"], "funnel_id", minimum=1, maximum=MAX_FUNNEL_ID)


async def definition_from_body(request: Request) -> FunnelDefinition:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(media_type)
    body = await limited_body(request, MAX_BODY)
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise BadParameter("body", "must be a JSON object") from None
    if not isinstance(document, dict):
        raise BadParameter("body", "must be a JSON object")
    try:
        return from_clean(document)
    except InvalidFunnel as error:
        raise BadParameter(field_of(error), error.message) from None


def field_of(error: InvalidFunnel) -> str:
    """The field an invalid definition names; for a missing or unknown top-level field the engine says the
    document as a whole, and the message names the field in backticks (msgspec's wording)."""
    if error.path:
        return error.path
    match = MISSING_OR_UNKNOWN.search(error.message)
    return match.group(1) if match else "body"


def funnels_of(request: Request) -> FunnelStore:
    store: FunnelStore = request.state.funnels
    return store


async def list_funnels(request: Request) -> Response:
    check_known(request, ())
    return JSONResponse({"funnels": [clean_json(f) for f in await funnels_of(request).list()]})


async def create_funnel(request: Request) -> Response:
    check_known(request, ())
    definition = await definition_from_body(request)
    funnel = await funnels_of(request).create(definition)
    return JSONResponse(clean_json(funnel), status_code=201, headers={"Location": f"/v1/funnels/{funnel.id}"})


async def get_funnel(request: Request) -> Response:
    check_known(request, ())
    return JSONResponse(clean_json(await funnels_of(request).get(funnel_id_from(request))))


async def update_funnel(request: Request) -> Response:
    check_known(request, ())
    funnel_id = funnel_id_from(request)
    definition = await definition_from_body(request)
    return JSONResponse(clean_json(await funnels_of(request).update(funnel_id, definition)))


async def delete_funnel(request: Request) -> Response:
    check_known(request, ())
    await funnels_of(request).delete(funnel_id_from(request))
    return Response(status_code=204)


def started_filter_from(request: Request) -> tuple[StartedFilter, ...]:
    """``start``/``end`` (UTC days, inclusive) added to the funnel's own filters at evaluation time."""
    params = request.query_params
    start = parse_day(params["start"], "start") if params.get("start") else None
    end = parse_day(params["end"], "end") if params.get("end") else None
    if start is not None and end is not None and start > end:
        raise BadParameter("start", f"{start} is after end {end}")
    if start is None and end is None:
        return ()
    return (StartedFilter(start=start, end=end),)


async def funnel_results_handler(request: Request) -> Response:
    check_known(request, ("start", "end", "ids_limit"))
    funnel_id = funnel_id_from(request)
    extra = started_filter_from(request)
    ids_limit = int_param(request.query_params, "ids_limit", 100, minimum=0, maximum=MAX_PAGE)
    funnel = await funnels_of(request).get(funnel_id)
    result = await funnel_results.evaluate(request.state.warehouse, request.state.database, funnel.definition,
                                           extra, IdPage(limit=ids_limit))
    return JSONResponse({"funnel": clean_json(funnel), **funnel_results.clean_results(result),
                         "ids_limit": ids_limit})


async def funnel_step_sessions(request: Request) -> Response:
    check_known(request, ("start", "end", "limit", "after", "breakdown_value", "breakdown_other"))
    funnel_id = funnel_id_from(request)
    outcome = request.path_params["outcome"]
    if outcome not in ("completed", "dropped"):
        raise BadParameter("outcome", f"must be completed or dropped, got {outcome!r}")
    extra = started_filter_from(request)
    params = request.query_params
    limit = int_param(params, "limit", 100, minimum=1, maximum=MAX_PAGE)
    after = parse_uuid(params["after"], "after") if params.get("after") else None
    funnel = await funnels_of(request).get(funnel_id)
    step_number = parse_int(request.path_params["step"], "step", minimum=1, maximum=len(funnel.definition.steps))
    breakdown = _breakdown_row(params, funnel.definition)
    page = await funnel_results.one_step_sessions(request.state.warehouse, request.state.database,
                                                  funnel.definition, step_number, _outcome(outcome), extra, limit,
                                                  after, breakdown)
    ids = [str(session.session_id) for session in page]
    return JSONResponse({"session_ids": ids, "next_after": ids[-1] if len(ids) == limit else None,
                         "sessions": [funnel_results.reached_json(session) for session in page]})


def _breakdown_row(params: Any, definition: FunnelDefinition) -> str | None | Literal[False]:
    """``breakdown_value=V`` (the sessions whose breakdown property is V) or ``breakdown_other=true`` (the "other"
    row): which breakdown row to list, ``False`` for every session."""
    value, other = params.get("breakdown_value"), params.get("breakdown_other")
    if value is None and other is None:
        return False
    if definition.breakdown is None:
        raise BadParameter("breakdown_value" if value is not None else "breakdown_other",
                           "this funnel has no breakdown")
    if value is not None and other is not None:
        raise BadParameter("breakdown_other", "give breakdown_value or breakdown_other, not both")
    if other is not None:
        if other != "true":
            raise BadParameter("breakdown_other", f"must be true, got {other!r}")
        return None
    if len(value) > MAX_BREAKDOWN_VALUE:
        raise BadParameter("breakdown_value", f"must be at most {MAX_BREAKDOWN_VALUE} characters")
    return str(value)


MAX_BREAKDOWN_VALUE = 16_384


def _outcome(value: str) -> Literal["completed", "dropped"]:
    return "completed" if value == "completed" else "dropped"


ROUTES = [
    Route("/v1/sessions", list_sessions, methods=["GET"]),
    Route("/v1/sessions/{session_id}", get_session, methods=["GET"]),
    Route("/v1/sessions/{session_id}/events", session_events, methods=["GET"]),
    Route("/v1/sessions/{session_id}/markers", session_markers, methods=["GET"]),
    Route("/v1/active-sessions", list_active_sessions, methods=["GET"]),
    Route("/v1/apps", list_apps, methods=["GET"]),
    Route("/v1/options/{property}", list_options, methods=["GET"]),
    Route("/v1/conversion-labels", list_conversion_labels, methods=["GET"]),
    Route("/v1/funnels", list_funnels, methods=["GET"]),
    Route("/v1/funnels", create_funnel, methods=["POST"]),
    Route("/v1/funnels/{funnel_id}", get_funnel, methods=["GET"]),
    Route("/v1/funnels/{funnel_id}", update_funnel, methods=["PUT"]),
    Route("/v1/funnels/{funnel_id}", delete_funnel, methods=["DELETE"]),
    Route("/v1/funnels/{funnel_id}/results", funnel_results_handler, methods=["GET"]),
    Route("/v1/funnels/{funnel_id}/steps/{step}/{outcome}", funnel_step_sessions, methods=["GET"]),
]
