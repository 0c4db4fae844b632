"""A funnel definition: its clean form, the original dashboard's stored form, and their validation.

The clean form (what ``/v1`` speaks and :func:`to_clean` writes)::

    {"name": "Checkout",
     "filters": [{"type": "app_name", "names": ["shop"]},
                 {"type": "started", "start": "2026-01-01", "end": "2026-01-31"},
                 {"type": "duration", "min_ms": 1000, "max_ms": 600000},
                 {"type": "errors", "has_errors": false}],
     "steps": [{"kind": "click", "label": "Add to cart"}, {"kind": "custom", "label": "paid"}],
     "window_seconds": 3600}

The filters are Bard's one session filter model (:mod:`clickhouse.session_filters`: its kinds, their meaning, the
rule that a missing bound is open), the same the session lists use. ``window_seconds`` (optional) is counted from
the moment step 1 was reached. Optional too (their meaning is in :mod:`funnels`)::

     "order": "ordered" | "strict" | "any",                         (default "ordered")
     "exclusions": [{"kind": "custom", "label": "cancelled", "from_step": 1, "to_step": 3}],
     "breakdown": {"property": "browser", "limit": 10}

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
dashboard may have sent numeric strings, the empty filter list written ``[{}]`` as the original did). What only
the clean form can say: an ``app_name`` filter with several names (the dashboard has one name per filter),
``started_at`` and ``id_prefix`` filters (:func:`to_dashboard` refuses them all), the order, exclusions and
breakdown (refused likewise unless they are the defaults), and the window, which the dashboard form carries in an
extra key ``conversionWindowSeconds`` that the original dashboard ignores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from clickhouse.session_filters import (
    MAX_TEXT_LENGTH,
    SIGNALS,
    AppNameFilter,
    DurationFilter,
    ErrorsFilter,
    IdPrefixFilter,
    InvalidFilter,
    SessionFilter,
    StartedAtFilter,
    StartedFilter,
    check_text,
    invalid_from_msgspec,
    to_dashboard_filters,
)
from clickhouse.session_filters import dashboard_filters as read_dashboard_filters
from clickhouse.session_filters import validate_filters as check_filters
from funnels.errors import InvalidFunnel

__all__ = [
    "BREAKDOWN_PROPERTIES",
    "ORDERS",
    "AppNameFilter",
    "Breakdown",
    "Exclusion",
    "DurationFilter",
    "ErrorsFilter",
    "FunnelDefinition",
    "IdPrefixFilter",
    "SessionFilter",
    "StartedAtFilter",
    "StartedFilter",
    "Step",
    "dashboard_filters",
    "filters_from_clean",
    "from_clean",
    "from_dashboard",
    "to_clean",
    "to_dashboard",
    "validate",
    "validate_filters",
]

MAX_STEPS = 30
MAX_EXCLUSIONS = 10
MAX_BREAKDOWN_LIMIT = 100
MAX_LABEL_LENGTH = MAX_TEXT_LENGTH
MAX_NAME_LENGTH = 1_000
MAX_WINDOW_SECONDS = 10 * 366 * 86_400

StepKind = Literal["click", "custom", "page", "input", "rage_click", "dead_click", "error_click"]
STEP_KINDS: tuple[str, ...] = ("click", "custom", "page", "input", *SIGNALS)
"""A step is a conversion event: a click on a link or button, a custom event, a page the session loaded (the path
of its URL: exact, or a prefix when the label ends in ``*``), typing in a text field (labelled by its
``<label>``, ``aria-label``, ``name`` or ``placeholder``, never the value: agent_api.click_targets), or a
behaviour signal (a rage, dead or error click, labelled with the clicked element's text; see
session_ender.signals)."""

PAGE_WILDCARD = "*"


def page_prefix(step: Step | Exclusion) -> str | None:
    """The path prefix a ``page`` step or exclusion matches when its label ends in ``*``; ``None`` otherwise
    (an exact match)."""
    if step.kind == "page" and step.label.endswith(PAGE_WILDCARD):
        return step.label[: -len(PAGE_WILDCARD)]
    return None


def _check_page_label(path: str, step: Step | Exclusion) -> None:
    if step.kind == "page" and not step.label.startswith("/"):
        raise InvalidFunnel(path, "a page is a URL path, such as /checkout or /blog/* (every page under /blog/)")


class Step(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One step: a click on a button whose text is ``label``, a custom event whose tag is ``label``, or a behaviour
    signal on an element whose text is ``label``."""

    kind: StepKind
    label: str


Order = Literal["ordered", "strict", "any"]
ORDERS: tuple[str, ...] = ("ordered", "strict", "any")

BreakdownProperty = Literal["app_name", "browser", "os", "device_type", "entry_path"]
BREAKDOWN_PROPERTIES: tuple[str, ...] = ("app_name", "browser", "os", "device_type", "entry_path")
"""Columns of ``sessions`` a funnel may be broken down by (identifiers come from this list only)."""


class Exclusion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An event (``kind`` and ``label``, as a step names one) that takes a session out of the funnel when it is
    done after the session reached step ``from_step`` and before it reached ``to_step`` (1-based)."""

    kind: StepKind
    label: str
    from_step: int
    to_step: int


class Breakdown(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Counts per value of a session ``property``: the ``limit`` values with the most entered sessions (ties by
    value), and one row for all the others."""

    property: BreakdownProperty
    limit: int = 10


class FunnelDefinition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A validated funnel. Build it with :func:`from_clean` or :func:`from_dashboard` (both validate), or
    construct it and call :func:`validate`."""

    name: str
    steps: tuple[Step, ...]
    filters: tuple[SessionFilter, ...] = ()
    window_seconds: int | None = None
    order: Order = "ordered"
    exclusions: tuple[Exclusion, ...] = ()
    breakdown: Breakdown | None = None


# --- validation -------------------------------------------------------------------------------------------------


def as_invalid_funnel(error: InvalidFilter) -> InvalidFunnel:
    return error if isinstance(error, InvalidFunnel) else InvalidFunnel(error.path, error.message)


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
    try:
        for index, step in enumerate(definition.steps):
            if step.kind not in STEP_KINDS:
                raise InvalidFunnel(f"steps[{index}].kind",
                                    f"must be one of {', '.join(STEP_KINDS)}, got {step.kind!r}")
            check_text(f"steps[{index}].label", step.label)
            _check_page_label(f"steps[{index}].label", step)
        check_filters(definition.filters, "filters")
    except InvalidFilter as error:
        raise as_invalid_funnel(error) from None
    window = definition.window_seconds
    if window is not None and (isinstance(window, bool) or not 1 <= window <= MAX_WINDOW_SECONDS):
        raise InvalidFunnel("window_seconds", f"must be a whole number of seconds from 1 to {MAX_WINDOW_SECONDS}")
    if definition.order not in ORDERS:
        raise InvalidFunnel("order", f"must be one of {', '.join(ORDERS)}, got {definition.order!r}")
    if definition.order == "any":
        seen: dict[Step, int] = {}
        for index, step in enumerate(definition.steps):
            if step in seen:
                # In any order, "reached step k" means "did k of the steps": one event per step, so two equal
                # steps would ask one event to count twice or a matching of events to steps. (Two overlapping
                # page steps, /blog/* and /blog/a, may both be done by one visit of /blog/a: it did both.)
                raise InvalidFunnel(f"steps[{index}]",
                                    f"in any order, steps must differ: the same as steps[{seen[step]}]")
            seen[step] = index
    _validate_exclusions(definition)
    breakdown = definition.breakdown
    if breakdown is not None:
        if breakdown.property not in BREAKDOWN_PROPERTIES:
            raise InvalidFunnel("breakdown.property",
                                f"must be one of {', '.join(BREAKDOWN_PROPERTIES)}, got {breakdown.property!r}")
        if isinstance(breakdown.limit, bool) or not 1 <= breakdown.limit <= MAX_BREAKDOWN_LIMIT:
            raise InvalidFunnel("breakdown.limit", f"must be a whole number from 1 to {MAX_BREAKDOWN_LIMIT}")
    return definition


def _validate_exclusions(definition: FunnelDefinition) -> None:
    n = len(definition.steps)
    if len(definition.exclusions) > MAX_EXCLUSIONS:
        raise InvalidFunnel("exclusions", f"a funnel has at most {MAX_EXCLUSIONS} exclusions")
    for index, exclusion in enumerate(definition.exclusions):
        where = f"exclusions[{index}]"
        if exclusion.kind not in STEP_KINDS:
            raise InvalidFunnel(f"{where}.kind", f"must be one of {', '.join(STEP_KINDS)}, got {exclusion.kind!r}")
        try:
            check_text(f"{where}.label", exclusion.label)
        except InvalidFilter as error:
            raise as_invalid_funnel(error) from None
        _check_page_label(f"{where}.label", exclusion)
        for name in ("from_step", "to_step"):
            value = getattr(exclusion, name)
            if isinstance(value, bool) or not 1 <= value <= n:
                raise InvalidFunnel(f"{where}.{name}", f"must be a step number from 1 to {n}, got {value}")
        if exclusion.from_step >= exclusion.to_step:
            raise InvalidFunnel(f"{where}.to_step", f"must come after from_step {exclusion.from_step}")
        if Step(exclusion.kind, exclusion.label) in definition.steps[exclusion.from_step - 1:exclusion.to_step]:
            # The same event would be both a step of the range and what leaves it: say which one it is instead.
            raise InvalidFunnel(f"{where}.label", "must differ from the steps it lies between")


def validate_filters(filters: Sequence[SessionFilter], path: str) -> None:
    """Check session filters (a definition's, or extra ones given at evaluation time), as :class:`InvalidFunnel`."""
    try:
        check_filters(filters, path)
    except InvalidFilter as error:
        raise as_invalid_funnel(error) from None


# --- the clean form ---------------------------------------------------------------------------------------------


def from_clean(document: Mapping[str, Any] | bytes | str) -> FunnelDefinition:
    """Read and validate the clean form, from a decoded JSON object or from JSON text."""
    try:
        if isinstance(document, bytes | str):
            definition = msgspec.json.decode(document, type=FunnelDefinition)
        else:
            definition = msgspec.convert(document, FunnelDefinition)
    except msgspec.ValidationError as error:
        raise as_invalid_funnel(invalid_from_msgspec(error)) from None
    except msgspec.DecodeError as error:
        raise InvalidFunnel("", f"not valid JSON: {error}") from None
    return validate(definition)


def to_clean(definition: FunnelDefinition) -> dict[str, Any]:
    """The clean form as plain JSON-ready builtins (dates as ISO strings). The order, exclusions and breakdown
    are left out at their defaults, so a funnel that does not use them reads as it did before they existed."""
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(definition))
    for key, default in (("order", "ordered"), ("exclusions", []), ("breakdown", None)):
        if document[key] == default:
            del document[key]
    return document


def filters_from_clean(documents: Sequence[Mapping[str, Any]], path: str = "filters") -> tuple[SessionFilter, ...]:
    """Read and validate a list of clean-form filters (for extra filters given at evaluation time)."""
    try:
        filters = msgspec.convert(list(documents), tuple[SessionFilter, ...])
    except msgspec.ValidationError as error:
        raise as_invalid_funnel(invalid_from_msgspec(error, root=path)) from None
    validate_filters(filters, path)
    return filters


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
    """The dashboard's stored form. Raises :class:`InvalidFunnel` for a filter the dashboard form cannot say (an
    app filter with several names, or a kind the original did not have). A behaviour-signal step, which the
    original did not have either, is written ``{"eventType": "rage_click", "textContent": label}`` (the original
    dashboard shows ``textContent``); :func:`from_dashboard` reads only the original's two kinds back."""
    try:
        filters = to_dashboard_filters(definition.filters)
    except InvalidFilter as error:
        raise as_invalid_funnel(error) from None
    if definition.order != "ordered":
        raise InvalidFunnel("order", "the dashboard form has ordered funnels only")
    if definition.exclusions:
        raise InvalidFunnel("exclusions", "the dashboard form has no exclusions")
    if definition.breakdown is not None:
        raise InvalidFunnel("breakdown", "the dashboard form has no breakdown")
    document: dict[str, Any] = {
        "funnelName": definition.name,
        # The original dashboard stored an empty filter list as one empty object.
        "sessionFilters": filters or [{}],
        "eventSequence": [
            {"eventType": "custom", "customEventType": step.label}
            if step.kind == "custom"
            else {"eventType": step.kind, "textContent": step.label}
            for step in definition.steps
        ],
    }
    if definition.window_seconds is not None:
        document[DASHBOARD_WINDOW_KEY] = definition.window_seconds
    return document


def dashboard_filters(raw: Any, path: str = "sessionFilters") -> tuple[SessionFilter, ...]:
    """Read dashboard-form session filters (``[{}]`` and ``[]`` both mean none), as :class:`InvalidFunnel`. Also
    used for the date filter ``GET /api/funnels/:id?startDate&endDate`` adds at evaluation time."""
    try:
        return read_dashboard_filters(raw, path)
    except InvalidFilter as error:
        raise as_invalid_funnel(error) from None


def _dashboard_step(path: str, raw: Any) -> Step:
    if not isinstance(raw, Mapping):
        raise InvalidFunnel(path, "an event is a JSON object")
    kind = raw.get("eventType")
    if kind == "click":
        allowed = {"eventType", "textContent"}
        field = "textContent"
    elif kind == "custom":
        allowed = {"eventType", "customEventType"}
        field = "customEventType"
    else:
        raise InvalidFunnel(f"{path}.eventType", f"must be 'click' or 'custom', got {kind!r}")
    for key in raw:
        if key not in allowed:
            raise InvalidFunnel(f"{path}.{key}", "unknown field")
    label = raw.get(field)
    if not isinstance(label, str):
        raise InvalidFunnel(f"{path}.{field}", "must be a string")
    return Step(kind=kind, label=label)


_CLEAN_TO_DASHBOARD = {
    "name": "funnelName",
    "steps": "eventSequence",
    "filters": "sessionFilters",
    "window_seconds": DASHBOARD_WINDOW_KEY,
    "label": "textContent",
    "kind": "eventType",
}


def _dashboard_path(path: str) -> str:
    """Translate a clean-form path of a validation error into the dashboard's names."""
    parts = path.split(".")
    head = parts[0]
    bracket = head.find("[")
    base, index = (head[:bracket], head[bracket:]) if bracket >= 0 else (head, "")
    translated = [_CLEAN_TO_DASHBOARD.get(base, base) + index] + [_CLEAN_TO_DASHBOARD.get(p, p) for p in parts[1:]]
    return ".".join(translated)
