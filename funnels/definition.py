"""A funnel definition: its clean form, the original dashboard's stored form, and their validation.

The clean form (what ``/v1`` speaks and :func:`to_clean` writes)::

    {"name": "Checkout",
     "filters": [{"type": "app_name", "names": ["shop"]},
                 {"type": "started", "start": "2026-01-01", "end": "2026-01-31"},
                 {"type": "duration", "min_ms": 1000, "max_ms": 600000},
                 {"type": "errors", "has_errors": false}],
     "steps": [{"kind": "click", "label": "Add to cart"}, {"kind": "custom", "label": "paid"}],
     "window_seconds": 3600}

Filters are ANDed, in order; an ``app_name`` filter matches any of its names. ``started`` bounds the UTC date the
session started on, both ends inclusive; ``duration`` bounds the session's length in ms, both ends inclusive; a
missing bound is open. ``window_seconds`` (optional) is counted from the moment step 1 was reached.

The dashboard form (what the original React dashboard stored and ``/api`` speaks)::

    {"funnelName": "Checkout",
     "sessionFilters": [{"filterType": "appName", "textContent": "shop"},
                        {"filterType": "date", "startDate": "2026-01-01", "endDate": "2026-01-31"},
                        {"filterType": "length", "minLength": 1000, "maxLength": 600000},
                        {"filterType": "Has Errors?", "yesOrNo": "no"}],
     "eventSequence": [{"eventType": "click", "textContent": "Add to cart"},
                       {"eventType": "custom", "customEventType": "paid"}]}

Conversion is lossless both ways for everything either form can say: clean -> dashboard -> clean is the
identity; dashboard -> clean -> dashboard is the identity up to spelling (numbers written as numbers where the
dashboard may have sent numeric strings, the empty filter list written ``[{}]`` as the original did). Two
things only one side can say: an ``app_name`` filter with several names (the dashboard has one name per filter;
:func:`to_dashboard` refuses it) and the window, which the dashboard form carries in an extra key
``conversionWindowSeconds`` that the original dashboard ignores.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from funnels.errors import InvalidFunnel

MAX_STEPS = 20
MAX_FILTERS = 32
MAX_APP_NAMES = 100
MAX_LABEL_LENGTH = 16_384
"""Characters in a step label or an app name. Button texts can be long; 16 k keeps hostile 10 kB values legal."""
MAX_NAME_LENGTH = 1_000
MAX_WINDOW_SECONDS = 10 * 366 * 86_400
MAX_DURATION_MS = 2**62

StepKind = Literal["click", "custom"]
STEP_KINDS: tuple[str, ...] = ("click", "custom")


class Step(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One step: a click on a button whose text is ``label``, or a custom event whose tag is ``label``."""

    kind: StepKind
    label: str


class AppNameFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="app_name"):
    """The session's app name is one of ``names`` (exact match)."""

    names: tuple[str, ...]


class StartedFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="started"):
    """The UTC date the session started on is within ``start`` .. ``end`` (inclusive; ``None`` is open)."""

    start: dt.date | None = None
    end: dt.date | None = None


class DurationFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="duration"):
    """The session lasted ``min_ms`` .. ``max_ms`` milliseconds (inclusive; ``None`` is open)."""

    min_ms: int | None = None
    max_ms: int | None = None


class ErrorsFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="errors"):
    """The session recorded at least one error (``has_errors``) or none (``not has_errors``)."""

    has_errors: bool


SessionFilter = AppNameFilter | StartedFilter | DurationFilter | ErrorsFilter


class FunnelDefinition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A validated funnel. Build it with :func:`from_clean` or :func:`from_dashboard` (both validate), or
    construct it and call :func:`validate`."""

    name: str
    steps: tuple[Step, ...]
    filters: tuple[SessionFilter, ...] = ()
    window_seconds: int | None = None


# --- validation -------------------------------------------------------------------------------------------------


def validate(definition: FunnelDefinition) -> FunnelDefinition:
    """Check every rule a definition must meet; return it unchanged or raise :class:`InvalidFunnel`
    (paths in the clean form's names)."""
    if not definition.name.strip():
        raise InvalidFunnel("name", "must not be empty")
    if len(definition.name) > MAX_NAME_LENGTH:
        raise InvalidFunnel("name", f"must be at most {MAX_NAME_LENGTH} characters")
    if not definition.steps:
        raise InvalidFunnel("steps", "a funnel needs at least one step")
    if len(definition.steps) > MAX_STEPS:
        raise InvalidFunnel("steps", f"a funnel has at most {MAX_STEPS} steps, got {len(definition.steps)}")
    for index, step in enumerate(definition.steps):
        if step.kind not in STEP_KINDS:
            raise InvalidFunnel(f"steps[{index}].kind", f"must be 'click' or 'custom', got {step.kind!r}")
        _check_value(f"steps[{index}].label", step.label)
    validate_filters(definition.filters, "filters")
    window = definition.window_seconds
    if window is not None and (isinstance(window, bool) or not 1 <= window <= MAX_WINDOW_SECONDS):
        raise InvalidFunnel("window_seconds", f"must be a whole number of seconds from 1 to {MAX_WINDOW_SECONDS}")
    return definition


def validate_filters(filters: Sequence[SessionFilter], path: str) -> None:
    """Check session filters (a definition's, or extra ones given at evaluation time)."""
    if len(filters) > MAX_FILTERS:
        raise InvalidFunnel(path, f"at most {MAX_FILTERS} filters, got {len(filters)}")
    for index, item in enumerate(filters):
        where = f"{path}[{index}]"
        if isinstance(item, AppNameFilter):
            if not item.names:
                raise InvalidFunnel(f"{where}.names", "must name at least one app")
            if len(item.names) > MAX_APP_NAMES:
                raise InvalidFunnel(f"{where}.names", f"at most {MAX_APP_NAMES} app names")
            for position, name in enumerate(item.names):
                _check_value(f"{where}.names[{position}]", name)
        elif isinstance(item, StartedFilter):
            if item.start is not None and item.end is not None and item.start > item.end:
                raise InvalidFunnel(where, f"start {item.start} is after end {item.end}")
        elif isinstance(item, DurationFilter):
            for field in ("min_ms", "max_ms"):
                value = getattr(item, field)
                if value is not None and (isinstance(value, bool) or not 0 <= value <= MAX_DURATION_MS):
                    raise InvalidFunnel(f"{where}.{field}", "must be a whole number of milliseconds, 0 or more")
            if item.min_ms is not None and item.max_ms is not None and item.min_ms > item.max_ms:
                raise InvalidFunnel(where, f"min_ms {item.min_ms} is greater than max_ms {item.max_ms}")
        elif isinstance(item, ErrorsFilter):
            if not isinstance(item.has_errors, bool):
                raise InvalidFunnel(f"{where}.has_errors", "must be true or false")
        else:
            raise InvalidFunnel(where, f"unknown filter {type(item).__name__}")


def _check_value(path: str, value: str) -> None:
    if not isinstance(value, str):
        raise InvalidFunnel(path, "must be a string")
    if value == "":
        raise InvalidFunnel(path, "must not be empty")
    if len(value) > MAX_LABEL_LENGTH:
        raise InvalidFunnel(path, f"must be at most {MAX_LABEL_LENGTH} characters, got {len(value)}")


# --- the clean form ---------------------------------------------------------------------------------------------

_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def from_clean(document: Mapping[str, Any] | bytes | str) -> FunnelDefinition:
    """Read and validate the clean form, from a decoded JSON object or from JSON text."""
    try:
        if isinstance(document, bytes | str):
            definition = msgspec.json.decode(document, type=FunnelDefinition)
        else:
            definition = msgspec.convert(document, FunnelDefinition)
    except msgspec.ValidationError as error:
        raise _invalid_from_msgspec(error) from None
    except msgspec.DecodeError as error:
        raise InvalidFunnel("", f"not valid JSON: {error}") from None
    return validate(definition)


def to_clean(definition: FunnelDefinition) -> dict[str, Any]:
    """The clean form as plain JSON-ready builtins (dates as ISO strings)."""
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(definition))
    return document


def filters_from_clean(documents: Sequence[Mapping[str, Any]], path: str = "filters") -> tuple[SessionFilter, ...]:
    """Read and validate a list of clean-form filters (for extra filters given at evaluation time)."""
    try:
        filters = msgspec.convert(list(documents), tuple[SessionFilter, ...])
    except msgspec.ValidationError as error:
        raise _invalid_from_msgspec(error, root=path) from None
    validate_filters(filters, path)
    return filters


def _invalid_from_msgspec(error: msgspec.ValidationError, root: str = "") -> InvalidFunnel:
    match = _MSGSPEC_PATH.match(str(error))
    assert match is not None  # the pattern matches every string
    path = (match.group("path") or "").lstrip(".")
    if root:
        path = f"{root}{path}" if path.startswith("[") else ".".join(p for p in (root, path) if p)
    return InvalidFunnel(path, match.group("message"))


# --- the dashboard form -----------------------------------------------------------------------------------------

DASHBOARD_WINDOW_KEY = "conversionWindowSeconds"


def from_dashboard(document: Mapping[str, Any]) -> FunnelDefinition:
    """Read and validate the original dashboard's stored form (paths in the dashboard's names)."""
    if not isinstance(document, Mapping):
        raise InvalidFunnel("", "a funnel is a JSON object")
    known = {"funnelName", "sessionFilters", "eventSequence", DASHBOARD_WINDOW_KEY}
    for key in document:
        if key not in known:
            raise InvalidFunnel(str(key), "unknown field")
    name = document.get("funnelName")
    if not isinstance(name, str):
        raise InvalidFunnel("funnelName", "must be a string")
    raw_steps = document.get("eventSequence")
    if not isinstance(raw_steps, list):
        raise InvalidFunnel("eventSequence", "must be a list of events")
    steps = tuple(_dashboard_step(f"eventSequence[{i}]", raw) for i, raw in enumerate(raw_steps))
    filters = dashboard_filters(document.get("sessionFilters", []), "sessionFilters")
    window = document.get(DASHBOARD_WINDOW_KEY)
    if window is not None and (isinstance(window, bool) or not isinstance(window, int)):
        raise InvalidFunnel(DASHBOARD_WINDOW_KEY, "must be a whole number of seconds")
    definition = FunnelDefinition(name=name, steps=steps, filters=filters, window_seconds=window)
    try:
        return validate(definition)
    except InvalidFunnel as error:
        path = _dashboard_path(error.path)
        step_label = re.fullmatch(r"steps\[(\d+)\]\.label", error.path)
        if step_label and steps[int(step_label.group(1))].kind == "custom":
            path = path.replace(".textContent", ".customEventType")
        raise InvalidFunnel(path, error.message) from None


def to_dashboard(definition: FunnelDefinition) -> dict[str, Any]:
    """The dashboard's stored form. Raises :class:`InvalidFunnel` for an app filter with several names."""
    filters: list[dict[str, Any]] = []
    for index, item in enumerate(definition.filters):
        if isinstance(item, AppNameFilter):
            if len(item.names) != 1:
                raise InvalidFunnel(f"filters[{index}].names", "the dashboard form holds one app name per filter")
            filters.append({"filterType": "appName", "textContent": item.names[0]})
        elif isinstance(item, StartedFilter):
            entry: dict[str, Any] = {"filterType": "date"}
            if item.start is not None:
                entry["startDate"] = item.start.isoformat()
            if item.end is not None:
                entry["endDate"] = item.end.isoformat()
            filters.append(entry)
        elif isinstance(item, DurationFilter):
            entry = {"filterType": "length"}
            if item.min_ms is not None:
                entry["minLength"] = item.min_ms
            if item.max_ms is not None:
                entry["maxLength"] = item.max_ms
            filters.append(entry)
        else:
            filters.append({"filterType": "Has Errors?", "yesOrNo": "yes" if item.has_errors else "no"})
    document: dict[str, Any] = {
        "funnelName": definition.name,
        # The original dashboard stored an empty filter list as one empty object.
        "sessionFilters": filters or [{}],
        "eventSequence": [
            {"eventType": "click", "textContent": step.label}
            if step.kind == "click"
            else {"eventType": "custom", "customEventType": step.label}
            for step in definition.steps
        ],
    }
    if definition.window_seconds is not None:
        document[DASHBOARD_WINDOW_KEY] = definition.window_seconds
    return document


def dashboard_filters(raw: Any, path: str = "sessionFilters") -> tuple[SessionFilter, ...]:
    """Read dashboard-form session filters (``[{}]`` and ``[]`` both mean none). Also used for the date filter
    ``GET /api/funnels/:id?startDate&endDate`` adds at evaluation time."""
    if not isinstance(raw, list):
        raise InvalidFunnel(path, "must be a list of filters")
    filters: list[SessionFilter] = []
    for index, entry in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(entry, Mapping):
            raise InvalidFunnel(where, "a filter is a JSON object")
        if not entry:
            continue  # the original's placeholder for "no filter"
        kind = entry.get("filterType")
        if kind == "appName":
            _only(where, entry, {"filterType", "textContent"})
            name = entry.get("textContent")
            if not isinstance(name, str):
                raise InvalidFunnel(f"{where}.textContent", "must be a string")
            filters.append(AppNameFilter(names=(name,)))
        elif kind == "date":
            _only(where, entry, {"filterType", "startDate", "endDate"})
            filters.append(
                StartedFilter(
                    start=_dashboard_date(f"{where}.startDate", entry.get("startDate")),
                    end=_dashboard_date(f"{where}.endDate", entry.get("endDate")),
                )
            )
        elif kind == "length":
            _only(where, entry, {"filterType", "minLength", "maxLength"})
            filters.append(
                DurationFilter(
                    min_ms=_dashboard_int(f"{where}.minLength", entry.get("minLength")),
                    max_ms=_dashboard_int(f"{where}.maxLength", entry.get("maxLength")),
                )
            )
        elif kind == "Has Errors?":
            _only(where, entry, {"filterType", "yesOrNo"})
            answer = entry.get("yesOrNo")
            if answer not in ("yes", "no"):
                raise InvalidFunnel(f"{where}.yesOrNo", "must be 'yes' or 'no'")
            filters.append(ErrorsFilter(has_errors=answer == "yes"))
        else:
            raise InvalidFunnel(
                f"{where}.filterType", f"must be one of 'appName', 'date', 'length', 'Has Errors?', got {kind!r}"
            )
    try:
        validate_filters(filters, "filters")
    except InvalidFunnel as error:
        raise InvalidFunnel(_dashboard_path(error.path, filters_root=path), error.message) from None
    return tuple(filters)


def _dashboard_step(path: str, raw: Any) -> Step:
    if not isinstance(raw, Mapping):
        raise InvalidFunnel(path, "an event is a JSON object")
    kind = raw.get("eventType")
    if kind == "click":
        _only(path, raw, {"eventType", "textContent"})
        label = raw.get("textContent")
        field = "textContent"
    elif kind == "custom":
        _only(path, raw, {"eventType", "customEventType"})
        label = raw.get("customEventType")
        field = "customEventType"
    else:
        raise InvalidFunnel(f"{path}.eventType", f"must be 'click' or 'custom', got {kind!r}")
    if not isinstance(label, str):
        raise InvalidFunnel(f"{path}.{field}", "must be a string")
    return Step(kind=kind, label=label)


def _only(path: str, entry: Mapping[str, Any], allowed: set[str]) -> None:
    for key in entry:
        if key not in allowed:
            raise InvalidFunnel(f"{path}.{key}", "unknown field")


def _dashboard_date(path: str, raw: Any) -> dt.date | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise InvalidFunnel(path, "must be a date written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidFunnel(path, f"{raw!r} is not a calendar date") from None


def _dashboard_int(path: str, raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise InvalidFunnel(path, "must be a whole number of milliseconds")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\d{1,19}", raw):
        return int(raw)
    raise InvalidFunnel(path, "must be a whole number of milliseconds")


_CLEAN_TO_DASHBOARD = {
    "name": "funnelName",
    "steps": "eventSequence",
    "filters": "sessionFilters",
    "window_seconds": DASHBOARD_WINDOW_KEY,
    "label": "textContent",
    "kind": "eventType",
    "min_ms": "minLength",
    "max_ms": "maxLength",
    "names[0]": "textContent",
    "start": "startDate",
    "end": "endDate",
}


def _dashboard_path(path: str, filters_root: str = "sessionFilters") -> str:
    """Translate a clean-form path of a validation error into the dashboard's names."""
    parts = path.split(".")
    head = parts[0]
    bracket = head.find("[")
    base, index = (head[:bracket], head[bracket:]) if bracket >= 0 else (head, "")
    if base == "filters":
        base = filters_root
    else:
        base = _CLEAN_TO_DASHBOARD.get(base, base)
    translated = [base + index] + [_CLEAN_TO_DASHBOARD.get(part, part) for part in parts[1:]]
    return ".".join(translated)
