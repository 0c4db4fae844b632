"""The ``/v1`` API described as OpenAPI 3.1, written by hand so that it says what the handlers mean.

A test checks that every ``/v1`` route and method is described here, and every parameter the handlers accept.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clickhouse.session_filters import DEVICE_TYPES, SIGNALS
from funnels.definition import BREAKDOWN_PROPERTIES
from replayer_api.errors import BadParameter


def _query(name: str, description: str, schema: dict[str, Any], *, required: bool = False,
           explode: bool | None = None) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required, "description": description,
                                 "schema": schema}
    if explode is not None:
        parameter["explode"] = explode
    return parameter


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}


ERRORS = {
    "400": _json("Error", "A bad parameter; `field` names it"),
    "401": _json("Error", "No valid credential"),
}
NOT_FOUND = {"404": _json("Error", "No such id")}
NOT_JSON = {"415": _json("Error", "The body is not declared `Content-Type: application/json`")}
UUID = {"type": "string", "format": "uuid"}
COUNTRY_CODE = {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2, such as DE"}
SESSION_ID = _path("session_id", "The session's id", UUID)
FUNNEL_ID = _path("funnel_id", "The funnel's id", {"type": "integer", "minimum": 1})
LIMIT = _query("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50})
CURSOR = _query("cursor", "`next_cursor` of the previous page, made under the same sort and order (else 400): "
                          "the page after it", {"type": "string"})
BEFORE = _query("before", "`prev_cursor` of a page, made under the same sort and order (else 400): the `limit` "
                          "sessions just before it, still in the list's order; not with `cursor` (400)",
                {"type": "string"})
APP = _query("app", "Only these apps (repeat the parameter for several)",
             {"type": "array", "items": {"type": "string", "minLength": 1}}, explode=True)
START_DAY = _query("start", "Only sessions started on or after this UTC day", {"type": "string", "format": "date"})
END_DAY = _query("end", "Only sessions started on or before this UTC day", {"type": "string", "format": "date"})
INSTANT = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "minimum": 0}],
           "description": "ISO 8601 (UTC when no offset) or milliseconds since the epoch"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error", "message"],
        "description": "Bard's one error shape, the same in every service: a stable code, a message for a person, "
                       "the input at fault (field) or the service that failed (dependency).",
        "properties": {"error": {"type": "string", "description": "a stable code, e.g. invalid_request"},
                       "message": {"type": "string"},
                       "field": {"type": "string", "description": "the query parameter, body field, header or "
                                                                  "path segment at fault"},
                       "dependency": {"type": "string"}},
    },
    "Session": {
        "type": "object",
        "required": ["session_id", "app_name", "started_at", "ended_at", "duration_ms", "event_count",
                     "error_count"],
        "properties": {
            "session_id": UUID, "app_name": {"type": "string"},
            "started_at": {"type": "string", "format": "date-time"},
            "ended_at": {"type": "string", "format": "date-time"},
            "duration_ms": {"type": "integer"}, "event_count": {"type": "integer"},
            "error_count": {"type": "integer"},
            "status": {"type": "string", "enum": ["ended", "active"]},
            "browser": {"type": "string", "description": "The browser family from the User-Agent ('' unknown)"},
            "browser_major": {"type": "integer", "description": "Its major version (0 unknown)"},
            "os": {"type": "string"},
            "device_type": {"type": "string", "enum": ["desktop", "mobile", "tablet", "bot", ""]},
            "country": {"type": "string", "pattern": "^([A-Z]{2})?$",
                        "description": "ISO 3166-1 alpha-2 code of the registry country of the client address, as "
                                       "first known ('' unknown, private or loopback); the address is not kept"},
            "viewport": {"type": "object", "properties": {"width": {"type": "integer"},
                                                          "height": {"type": "integer"}}},
            "entry_url": {"type": "string"}, "entry_path": {"type": "string"}, "exit_path": {"type": "string"},
            "page_count": {"type": "integer", "description": "Pages seen (rrweb Meta events)"},
            "click_count": {"type": "integer"},
            "rage_click_count": {"type": "integer"}, "dead_click_count": {"type": "integer"},
            "error_click_count": {"type": "integer"},
        },
    },
    "SessionPage": {
        "type": "object", "required": ["sessions", "next_cursor", "prev_cursor"],
        "properties": {"sessions": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}},
                       "next_cursor": {"type": ["string", "null"],
                                       "description": "Pass as `cursor` for the page after this one; null on the "
                                                      "last page and on an empty page (going back with `before`: "
                                                      "the last row's cursor)"},
                       "prev_cursor": {"type": ["string", "null"],
                                       "description": "Pass as `before` for the page before this one; null on the "
                                                      "first page (no session precedes its first row) and on an "
                                                      "empty page"}},
    },
    "ActiveSession": {
        "type": "object",
        "properties": {
            "session_id": UUID, "app_name": {"type": "string"},
            "started_at": {"type": "string", "format": "date-time"},
            "last_event_at": {"type": "string", "format": "date-time"},
            "duration_ms": {"type": "integer"}, "event_count": {"type": "integer"},
            "error_count": {"type": "integer"},
            "last_seen_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
        },
    },
    "ActiveSessionPage": {
        "type": "object", "required": ["sessions", "next_cursor"],
        "properties": {"sessions": {"type": "array", "items": {"$ref": "#/components/schemas/ActiveSession"}},
                       "next_cursor": {"type": ["string", "null"]}},
    },
    "RrwebEvent": {
        "type": "object", "required": ["type", "timestamp"],
        "properties": {"type": {"type": "integer"}, "timestamp": {"type": "integer"}, "data": {}},
        "additionalProperties": True,
    },
    "Marker": {
        "type": "object", "required": ["kind", "at", "at_ms", "offset_ms", "label", "x", "y"],
        "properties": {
            "kind": {"type": "string", "enum": ["click", "custom", "error", *SIGNALS],
                     "description": "click: an rrweb mouse click, tagged or not; custom: an rrweb custom event; "
                                    "error: a console error; rage_click, dead_click, error_click: a behaviour "
                                    "signal at its click (ended sessions)"},
            "at": {"type": "string", "format": "date-time", "description": "ISO 8601 UTC with milliseconds"},
            "at_ms": {"type": "integer", "description": "Milliseconds since the epoch (client clock)"},
            "offset_ms": {"type": "integer", "description": "at_ms minus the session's first event's"},
            "label": {"type": ["string", "null"],
                      "description": "click: its conversion label when it was tagged, else null; custom: the "
                                     "event's tag; error: the logged message (arguments joined by spaces, at "
                                     "most 500 characters)"},
            "x": {"type": ["integer", "null"], "description": "click: where, in page pixels; else null"},
            "y": {"type": ["integer", "null"]},
        },
    },
    "SessionMarkers": {
        "type": "object", "required": ["session_id", "first_event_at", "markers", "truncated"],
        "properties": {
            "session_id": UUID,
            "first_event_at": {"type": ["string", "null"], "format": "date-time",
                               "description": "The earliest event's timestamp; null when there is no event yet"},
            "markers": {"type": "array", "items": {"$ref": "#/components/schemas/Marker"},
                        "description": "In time order, at most 10,000"},
            "truncated": {"type": "boolean", "description": "true when the session has more than 10,000"},
        },
    },
    "ReachedSession": {
        "type": "object", "required": ["session_id", "level", "reached_at", "reached_at_ms"],
        "properties": {
            "session_id": UUID,
            "level": {"type": "integer", "minimum": 0,
                      "description": "The last step the session reached (0: none); dropped at step k is k-1"},
            "reached_at": {"type": "array", "items": {"type": "string", "format": "date-time"},
                           "description": "When it reached steps 1..level (ISO 8601 UTC with milliseconds)"},
            "reached_at_ms": {"type": "array", "items": {"type": "integer"},
                              "description": "The same moments in milliseconds since the epoch"},
        },
    },
    "FunnelDefinition": {
        "type": "object", "required": ["name", "steps"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 1000},
            "steps": {"type": "array", "minItems": 1, "maxItems": 30, "items": {
                "type": "object", "required": ["kind", "label"],
                "properties": {"kind": {"type": "string", "enum": ["click", "custom", "page", "input", *SIGNALS]},
                               "label": {"type": "string", "minLength": 1}}}},
            "order": {"type": "string", "enum": ["ordered", "strict", "any"], "default": "ordered",
                      "description": "ordered: each step after the previous, other events allowed between; strict: "
                                     "no other conversion event between two steps; any: reaching step k is doing "
                                     "k of the steps, in any order (steps must differ)"},
            "exclusions": {"type": "array", "maxItems": 10, "items": {
                "type": "object", "required": ["kind", "label", "from_step", "to_step"],
                "description": "A session that does this event after reaching from_step and before reaching "
                               "to_step (before the window's end if it never does) leaves the funnel",
                "properties": {"kind": {"type": "string", "enum": ["click", "custom", "page", "input", *SIGNALS]},
                               "label": {"type": "string", "minLength": 1},
                               "from_step": {"type": "integer", "minimum": 1},
                               "to_step": {"type": "integer", "minimum": 2}}}},
            "breakdown": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["property"],
                "properties": {"property": {"type": "string", "enum": list(BREAKDOWN_PROPERTIES)},
                               "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}}}]},
            "filters": {"type": "array", "maxItems": 32, "items": {"oneOf": [
                {"type": "object", "required": ["type", "names"], "properties": {
                    "type": {"const": "app_name"}, "names": {"type": "array", "items": {"type": "string"}}}},
                {"type": "object", "required": ["type"], "properties": {
                    "type": {"const": "started"}, "start": {"type": ["string", "null"], "format": "date"},
                    "end": {"type": ["string", "null"], "format": "date"}}},
                {"type": "object", "required": ["type"], "properties": {
                    "type": {"const": "duration"}, "min_ms": {"type": ["integer", "null"]},
                    "max_ms": {"type": ["integer", "null"]}}},
                {"type": "object", "required": ["type", "has_errors"], "properties": {
                    "type": {"const": "errors"}, "has_errors": {"type": "boolean"}}},
                {"type": "object", "required": ["type"], "properties": {
                    "type": {"const": "started_at"}, "after_ms": {"type": ["integer", "null"]},
                    "before_ms": {"type": ["integer", "null"]}}},
                {"type": "object", "required": ["type", "prefix"], "properties": {
                    "type": {"const": "id_prefix"}, "prefix": {"type": "string", "pattern": "^[0-9a-f-]{1,36}$"}}},
                {"type": "object", "required": ["type", "names"], "properties": {
                    "type": {"const": "browser"}, "names": {"type": "array", "items": {"type": "string"}}}},
                {"type": "object", "required": ["type", "names"], "properties": {
                    "type": {"const": "os"}, "names": {"type": "array", "items": {"type": "string"}}}},
                {"type": "object", "required": ["type", "types"], "properties": {
                    "type": {"const": "device_type"},
                    "types": {"type": "array", "items": {"type": "string", "enum": list(DEVICE_TYPES)}}}},
                {"type": "object", "required": ["type", "codes"], "properties": {
                    "type": {"const": "country"},
                    "codes": {"type": "array", "minItems": 1, "items": COUNTRY_CODE}}},
                {"type": "object", "required": ["type", "prefix"], "properties": {
                    "type": {"const": "entry_path"}, "prefix": {"type": "string", "maxLength": 2048}}},
                {"type": "object", "required": ["type"], "properties": {
                    "type": {"const": "pages"}, "min_pages": {"type": ["integer", "null"]},
                    "max_pages": {"type": ["integer", "null"]}}},
                {"type": "object", "required": ["type", "signal"], "properties": {
                    "type": {"const": "signal"}, "signal": {"type": "string", "enum": list(SIGNALS)},
                    "present": {"type": "boolean", "default": True}}},
            ]}},
            "window_seconds": {"type": ["integer", "null"], "minimum": 1,
                               "description": "Every step within this many seconds of reaching step 1"},
        },
    },
    "Funnel": {
        "allOf": [{"$ref": "#/components/schemas/FunnelDefinition"}, {
            "type": "object", "required": ["id", "created_at", "updated_at"],
            "properties": {"id": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"},
                           "updated_at": {"type": "string", "format": "date-time"}}}],
    },
    "FunnelResults": {
        "type": "object",
        "properties": {
            "funnel": {"$ref": "#/components/schemas/Funnel"},
            "entered": {"type": "integer", "description": "Sessions matching the funnel's filters, not excluded"},
            "excluded": {"type": "integer", "description": "Sessions taken out by an exclusion"},
            "trend": {"type": "object", "properties": {
                "period": {"type": "string", "enum": ["day", "week"],
                           "description": "week when the first and last days are more than 90 days apart"},
                "points": {"type": "array", "items": {"type": "object", "properties": {
                    "start": {"type": "string", "format": "date"}, "entered": {"type": "integer"},
                    "completed": {"type": "integer", "description": "Reached every step"}}}}}},
            "breakdown": {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "object", "properties": {
                "value": {"type": ["string", "null"]}, "other": {"type": "boolean"},
                "entered": {"type": "integer"},
                "completed": {"type": "array", "items": {"type": "integer"}}}}}],
                "description": "The top values by entered sessions, then one row (other: true) for the rest"},
            "ids_limit": {"type": "integer"},
            "steps": {"type": "array", "items": {"type": "object", "properties": {
                "number": {"type": "integer"}, "kind": {"type": "string"}, "label": {"type": "string"},
                "completed": {"type": "integer"}, "dropped": {"type": "integer"},
                "conversion_from_start": {"type": ["number", "null"]},
                "conversion_from_previous": {"type": ["number", "null"]},
                "median_ms_from_previous": {"type": ["number", "null"]},
                "p90_ms_from_previous": {"type": ["number", "null"]},
                "median_ms_from_start": {"type": ["number", "null"]},
                "p90_ms_from_start": {"type": ["number", "null"]},
                "time_to_convert": {"oneOf": [{"type": "null"}, {
                    "type": "object", "description": "Bin i counts the sessions that took [lower_ms + i * bin_ms, "
                                                     "lower_ms + (i + 1) * bin_ms) ms from step 1",
                    "properties": {"lower_ms": {"type": "integer"}, "bin_ms": {"type": "integer"},
                                   "counts": {"type": "array", "items": {"type": "integer"}}}}]},
                "completed_ids": {"type": "array", "items": UUID,
                                  "description": "The first ids_limit, by id text; page on with "
                                                 ".../steps/{step}/completed"},
                "dropped_ids": {"type": "array", "items": UUID},
            }}},
        },
    },
}

PATHS: dict[str, Any] = {
    "/v1/sessions": {"get": {
        "summary": "Ended sessions, filtered and sorted, keyset-paged forward (`cursor`) and back (`before`)",
        "parameters": [
            APP,
            _query("started_after", "Only sessions started at or after", INSTANT),
            _query("started_before", "Only sessions started before", INSTANT),
            _query("min_duration_ms", "Only sessions at least this long", {"type": "integer", "minimum": 0}),
            _query("max_duration_ms", "Only sessions at most this long", {"type": "integer", "minimum": 0}),
            _query("has_errors", "Only sessions with (true) or without (false) errors", {"type": "boolean"}),
            _query("id_prefix", "Only sessions whose id starts with this", {"type": "string", "maxLength": 36}),
            _query("browser", "Only these browsers (repeat for several)",
                   {"type": "array", "items": {"type": "string", "minLength": 1}}, explode=True),
            _query("os", "Only these operating systems (repeat for several)",
                   {"type": "array", "items": {"type": "string", "minLength": 1}}, explode=True),
            _query("device_type", "Only these device types (repeat for several)",
                   {"type": "array", "items": {"type": "string", "enum": list(DEVICE_TYPES)}}, explode=True),
            _query("country", "Only sessions from these countries, ISO 3166-1 alpha-2 (repeat for several)",
                   {"type": "array", "items": COUNTRY_CODE}, explode=True),
            _query("entry_path", "Only sessions whose first page's path starts with this",
                   {"type": "string", "maxLength": 2048}),
            _query("min_pages", "Only sessions that saw at least this many pages", {"type": "integer", "minimum": 0}),
            _query("max_pages", "Only sessions that saw at most this many pages", {"type": "integer", "minimum": 0}),
            _query("has_rage_clicks", "Only sessions with (true) or without (false) rage clicks",
                   {"type": "boolean"}),
            _query("has_dead_clicks", "Only sessions with (true) or without (false) dead clicks",
                   {"type": "boolean"}),
            _query("has_error_clicks", "Only sessions with (true) or without (false) error clicks",
                   {"type": "boolean"}),
            _query("sort", "Sort key; ties broken by session id in the same direction",
                   {"type": "string", "enum": ["start", "duration", "app", "events", "errors", "pages", "clicks"],
                    "default": "start"}),
            _query("order", "Direction", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}),
            LIMIT, CURSOR, BEFORE,
        ],
        "responses": {"200": _json("SessionPage", "One page"), **ERRORS},
    }},
    "/v1/sessions/{session_id}": {"get": {
        "summary": "One session's metadata (ended, or active if it has not ended yet)",
        "parameters": [SESSION_ID],
        "responses": {"200": _json("Session", "The session"), **ERRORS, **NOT_FOUND},
    }},
    "/v1/sessions/{session_id}/events": {"get": {
        "summary": "The session's rrweb events in timestamp order, streamed (gzip when accepted); "
                   "pass the array to rrweb's Replayer. With `Accept: application/x-ndjson`, one event per line "
                   "instead, so a client can parse each event as it arrives",
        "parameters": [SESSION_ID],
        "responses": {"200": {"description": "A JSON array of rrweb events, or NDJSON when asked for", "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/RrwebEvent"}}},
            "application/x-ndjson": {
                "schema": {"$ref": "#/components/schemas/RrwebEvent"}}}},
            **ERRORS, **NOT_FOUND},
    }},
    "/v1/sessions/{session_id}/markers": {"get": {
        "summary": "The session's clicks, custom events and console errors in time order, without its replay "
                   "(ended or active sessions)",
        "parameters": [SESSION_ID],
        "responses": {"200": _json("SessionMarkers", "The markers"), **ERRORS, **NOT_FOUND},
    }},
    "/v1/active-sessions": {"get": {
        "summary": "Sessions still active (not yet ended), most recent activity first",
        "parameters": [APP, LIMIT, _query("cursor", "`next_cursor` of the previous page", {"type": "string"})],
        "responses": {"200": _json("ActiveSessionPage", "One page"), **ERRORS},
    }},
    "/v1/apps": {"get": {
        "summary": "Distinct app names of ended sessions",
        "responses": {"200": {"description": "Apps", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"apps": {"type": "array", "items": {"type": "string"}}}}}}},
            **ERRORS},
    }},
    "/v1/options/{property}": {"get": {
        "summary": "The values a session property takes, for autocomplete: the most common first",
        "parameters": [
            _path("property", "The property", {"type": "string", "enum": ["app", "browser", "os", "device_type",
                                                                           "country", "entry_path"]}),
            _query("prefix", "Only values starting with this", {"type": "string"}),
            _query("limit", "At most this many", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
        ],
        "responses": {"200": {"description": "Values", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "property": {"type": "string"},
                "values": {"type": "array", "items": {"type": "object", "properties": {
                    "value": {"type": "string"}, "sessions": {"type": "integer"}}}}}}}}},
            **ERRORS},
    }},
    "/v1/conversion-labels": {"get": {
        "summary": "Distinct labels of clicked buttons, custom events, pages (paths), text fields or signals, "
                   "for funnel steps",
        "parameters": [
            _query("kind", "Which labels", {"type": "string", "enum": ["click", "custom", "page", "input", *SIGNALS]},
                   required=True),
            _query("prefix", "Only labels starting with this", {"type": "string"}),
            _query("limit", "At most this many", {"type": "integer", "minimum": 1, "maximum": 10000,
                                                  "default": 1000}),
        ],
        "responses": {"200": {"description": "Labels", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"kind": {"type": "string"},
                                             "labels": {"type": "array", "items": {"type": "string"}}}}}}},
            **ERRORS},
    }},
    "/v1/funnels": {
        "get": {"summary": "Every funnel (deleted ones excluded)", "responses": {
            "200": {"description": "Funnels", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"funnels": {"type": "array", "items": {
                    "$ref": "#/components/schemas/Funnel"}}}}}}}, **ERRORS}},
        "post": {"summary": "Create a funnel",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "$ref": "#/components/schemas/FunnelDefinition"}}}},
                 "responses": {"201": _json("Funnel", "Created"), **ERRORS, **NOT_JSON}},
    },
    "/v1/funnels/{funnel_id}": {
        "get": {"summary": "One funnel", "parameters": [FUNNEL_ID],
                "responses": {"200": _json("Funnel", "The funnel"), **ERRORS, **NOT_FOUND}},
        "put": {"summary": "Replace a funnel's definition", "parameters": [FUNNEL_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/FunnelDefinition"}}}},
                "responses": {"200": _json("Funnel", "Updated"), **ERRORS, **NOT_FOUND, **NOT_JSON}},
        "delete": {"summary": "Delete a funnel (it is gone to every reader afterwards)", "parameters": [FUNNEL_ID],
                   "responses": {"204": {"description": "Deleted"}, **ERRORS, **NOT_FOUND}},
    },
    "/v1/funnels/{funnel_id}/results": {"get": {
        "summary": "Evaluate a funnel: sessions entered, and per step completed, dropped, conversion and timing",
        "parameters": [FUNNEL_ID, START_DAY, END_DAY,
                       _query("ids_limit", "Completed and dropped ids returned per step",
                              {"type": "integer", "minimum": 0, "maximum": 500, "default": 100})],
        "responses": {"200": _json("FunnelResults", "Results"), **ERRORS, **NOT_FOUND},
    }},
    "/v1/funnels/{funnel_id}/steps/{step}/{outcome}": {"get": {
        "summary": "One page of the sessions that completed or dropped at one step, by id text, each with the "
                   "moments it reached its steps",
        "parameters": [
            FUNNEL_ID, _path("step", "1-based step number", {"type": "integer", "minimum": 1}),
            _path("outcome", "Which sessions", {"type": "string", "enum": ["completed", "dropped"]}),
            START_DAY, END_DAY,
            _query("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}),
            _query("after", "`next_after` of the previous page", UUID),
            _query("breakdown_value", "Only the sessions of this breakdown value", {"type": "string"}),
            _query("breakdown_other", "Only the sessions of the breakdown's other row", {"const": "true"}),
        ],
        "responses": {"200": {"description": "One page", "content": {"application/json": {"schema": {
            "type": "object", "required": ["session_ids", "next_after", "sessions"],
            "properties": {"session_ids": {"type": "array", "items": UUID},
                           "next_after": {"oneOf": [UUID, {"type": "null"}],
                                          "description": "The last id when the page is full, else null"},
                           "sessions": {"type": "array", "items": {"$ref": "#/components/schemas/ReachedSession"},
                                        "description": "The same sessions in the same order, with how far "
                                                       "each got and when"}}}}}},
            **ERRORS, **NOT_FOUND},
    }},
    "/v1/openapi.json": {"get": {
        "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}, **ERRORS},
    }},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Bard replayer API",
        "version": "1",
        "description": "Session list, replay and funnels over Bard's warehouse. Authenticate with "
                       "`Authorization: Bearer <BARD_DASHBOARD_TOKEN>` or the cookie `POST /login` sets.",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}, {"cookie": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "bard_session"},
        },
    },
}


async def openapi_document(request: Request) -> Response:
    for name in request.query_params:
        raise BadParameter(name, "unknown parameter; this endpoint takes none")
    return JSONResponse(OPENAPI)
