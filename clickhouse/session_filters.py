"""Which ended sessions match: the one filter model of Bard, its two written forms, and its one query builder.

A filter is a tuple of conditions, ANDed; every reader of sessions uses it: the ``/v1`` session list, the
``/api`` session list, stored funnels and funnel evaluation. Each condition is a small frozen struct:

==================  ==========================================================================================
``app_name``        the app name is one of ``names`` (exact)
``started``         the UTC day the session started on is within ``start`` .. ``end`` (days, both inclusive)
``started_at``      the session started at or after ``after`` and before ``before`` (instants, ms)
``duration``        the session lasted ``min_ms`` .. ``max_ms`` (both inclusive)
``errors``          the session recorded at least one error (``has_errors``), or none
``id_prefix``       the session id, as text, starts with ``prefix`` (lowercase hex digits and ``-``)
``browser``         the browser (its family, as the User-Agent parser names it: ``Chrome``) is one of ``names``
``os``              the operating system (``Windows``, ``iOS``) is one of ``names``
``device_type``     the device type is one of ``types``: ``desktop``, ``mobile``, ``tablet``, ``bot``
``country``         the country of the client address is one of ``codes`` (ISO 3166-1 alpha-2: ``DE``, ``US``)
``entry_path``      the path of the session's first page starts with ``prefix``
``pages``           the session saw ``min_pages`` .. ``max_pages`` pages (both inclusive)
``signal``          the session has (``present``) or has not a ``rage_click``, ``dead_click`` or ``error_click``
==================  ==========================================================================================

Sessions recorded before their metadata was captured have empty strings and zero counts: they match no
``browser``, ``os``, ``device_type``, ``country`` or ``entry_path`` filter (other than a prefix of ``""``),
``pages`` with a minimum of 0 and ``signal`` filters with ``present`` false.

**The one rule for a missing bound: it is open.** A range with only a start has no end, with only an end no
start, with neither it keeps every session. (Before this module, ``/api``'s session list read a date filter
without ``endDate`` as "until today" while its funnels read it as "no end"; both now read it as no end. They
differ only for sessions whose client clock put their start after today.)

Two written forms read into it: the clean form (``/v1``, stored funnels: ``{"type": "app_name", "names":
[...]}``, :func:`filters_from_clean`) and the original dashboard's (``{"filterType": "appName", "textContent":
...}``, :func:`dashboard_filters`, written back by :func:`to_dashboard_filters`). The dashboard form says only
``app_name`` with one name, ``started``, ``duration`` and ``errors``.

:func:`condition` is the one builder: each condition becomes a sqlglot expression over the columns of
``sessions`` (``app_name``, ``started_at``, ``duration_ms``, ``error_count``, ``session_id``, and the metadata
columns ``browser``, ``os``, ``device_type``, ``country``, ``entry_path``, ``page_count``, ``*_click_count``),
every value a bound placeholder; a column a value picks (a signal's count) comes from an allow-list. Its text
depends on the kinds of conditions and which bounds they have, never on their values.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from sqlglot import exp

from clickhouse.sql import QueryParameters, and_, call, column, number

MAX_FILTERS = 32
MAX_APP_NAMES = 100
MAX_TEXT_LENGTH = 16_384
"""Characters in an app name (and a funnel step's label). Button texts can be long; 16 k keeps hostile 10 kB
values legal."""
MAX_DURATION_MS = 2**62
MIN_YEAR, MAX_YEAR = 1970, 2299
MAX_PATH_LENGTH = 2_048
ID_PREFIX = re.compile(r"[0-9a-f-]{1,36}")
COUNTRY_CODE = re.compile(r"[A-Z]{2}")


class InvalidFilter(ValueError):
    """A filter is not acceptable. ``path`` names the offending field in the form the caller sent
    (``filters[1].min_ms``, ``sessionFilters[0].startDate``); ``""`` means the document as a whole."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)

    def to_dict(self) -> dict[str, str]:
        return {"field": self.path, "message": self.message}


# --- the conditions -----------------------------------------------------------------------------------------------


class AppNameFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="app_name"):
    """The session's app name is one of ``names`` (exact match)."""

    names: tuple[str, ...]


class StartedFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="started"):
    """The UTC date the session started on is within ``start`` .. ``end`` (inclusive; ``None`` is open)."""

    start: dt.date | None = None
    end: dt.date | None = None


class StartedAtFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="started_at"):
    """The session started at or after ``after_ms`` and before ``before_ms`` (ms since the epoch; ``None`` is
    open)."""

    after_ms: int | None = None
    before_ms: int | None = None


class DurationFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="duration"):
    """The session lasted ``min_ms`` .. ``max_ms`` milliseconds (inclusive; ``None`` is open)."""

    min_ms: int | None = None
    max_ms: int | None = None


class ErrorsFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="errors"):
    """The session recorded at least one error (``has_errors``) or none (``not has_errors``)."""

    has_errors: bool


class IdPrefixFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="id_prefix"):
    """The session id's text starts with ``prefix`` (1 to 36 lowercase hex digits and ``-``)."""

    prefix: str


class BrowserFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="browser"):
    """The session's browser family is one of ``names`` (exact match)."""

    names: tuple[str, ...]


class OsFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="os"):
    """The session's operating system is one of ``names`` (exact match)."""

    names: tuple[str, ...]


DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot")


class DeviceTypeFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type",
                       tag="device_type"):
    """The session's device type is one of ``types`` (of :data:`DEVICE_TYPES`)."""

    types: tuple[str, ...]


class CountryFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="country"):
    """The country of the session's client address is one of ``codes`` (ISO 3166-1 alpha-2, two capital letters;
    exact match, as agent_api.countries stores them)."""

    codes: tuple[str, ...]


class EntryPathFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="entry_path"):
    """The path of the session's first page starts with ``prefix`` (``/checkout`` matches ``/checkout/pay``)."""

    prefix: str


class PagesFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="pages"):
    """The session saw ``min_pages`` .. ``max_pages`` pages, counted by rrweb Meta events (inclusive; ``None`` is
    open)."""

    min_pages: int | None = None
    max_pages: int | None = None


SIGNALS = ("rage_click", "dead_click", "error_click")
SIGNAL_COLUMNS = {"rage_click": "rage_click_count", "dead_click": "dead_click_count",
                  "error_click": "error_click_count"}


class SignalFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="signal"):
    """The session has at least one ``signal`` (``present``), or none (of :data:`SIGNALS`)."""

    signal: str
    present: bool = True


SessionFilter = (AppNameFilter | StartedFilter | StartedAtFilter | DurationFilter | ErrorsFilter | IdPrefixFilter
                 | BrowserFilter | OsFilter | DeviceTypeFilter | CountryFilter | EntryPathFilter | PagesFilter
                 | SignalFilter)
Filters = tuple[SessionFilter, ...]


# --- validation ----------------------------------------------------------------------------------------------------


def validate_filters(filters: Sequence[SessionFilter], path: str = "filters") -> None:
    """Check every rule a filter must meet; raise :class:`InvalidFilter` naming the field (under ``path``)."""
    if len(filters) > MAX_FILTERS:
        raise InvalidFilter(path, f"at most {MAX_FILTERS} filters, got {len(filters)}")
    for index, item in enumerate(filters):
        where = f"{path}[{index}]"
        if isinstance(item, AppNameFilter):
            if not item.names:
                raise InvalidFilter(f"{where}.names", "must name at least one app")
            if len(item.names) > MAX_APP_NAMES:
                raise InvalidFilter(f"{where}.names", f"at most {MAX_APP_NAMES} app names")
            for position, name in enumerate(item.names):
                check_text(f"{where}.names[{position}]", name)
        elif isinstance(item, StartedFilter):
            for name, day in (("start", item.start), ("end", item.end)):
                if day is not None:
                    _check_year(f"{where}.{name}", day)
            if item.start is not None and item.end is not None and item.start > item.end:
                raise InvalidFilter(where, f"start {item.start} is after end {item.end}")
        elif isinstance(item, StartedAtFilter):
            _check_range(where, item.after_ms, item.before_ms, ("after_ms", "before_ms"), -(2**62), 2**62,
                         "a moment in milliseconds since the epoch")
        elif isinstance(item, DurationFilter):
            _check_range(where, item.min_ms, item.max_ms, ("min_ms", "max_ms"), 0, MAX_DURATION_MS,
                         "a whole number of milliseconds, 0 or more")
        elif isinstance(item, ErrorsFilter):
            if not isinstance(item.has_errors, bool):
                raise InvalidFilter(f"{where}.has_errors", "must be true or false")
        elif isinstance(item, IdPrefixFilter):
            if not isinstance(item.prefix, str) or not ID_PREFIX.fullmatch(item.prefix):
                raise InvalidFilter(f"{where}.prefix",
                                    "must be 1 to 36 characters of a session id (lowercase hex digits and '-')")
        elif isinstance(item, BrowserFilter | OsFilter):
            _check_names(f"{where}.names", item.names)
        elif isinstance(item, DeviceTypeFilter):
            if not item.types:
                raise InvalidFilter(f"{where}.types", "must name at least one device type")
            for position, device in enumerate(item.types):
                if device not in DEVICE_TYPES:
                    raise InvalidFilter(f"{where}.types[{position}]",
                                        f"must be one of {', '.join(DEVICE_TYPES)}, got {device!r}")
        elif isinstance(item, CountryFilter):
            if not item.codes:
                raise InvalidFilter(f"{where}.codes", "must name at least one country")
            if len(item.codes) > MAX_APP_NAMES:
                raise InvalidFilter(f"{where}.codes", f"at most {MAX_APP_NAMES} countries")
            for position, code in enumerate(item.codes):
                if not isinstance(code, str) or not COUNTRY_CODE.fullmatch(code):
                    raise InvalidFilter(f"{where}.codes[{position}]",
                                        f"must be a country code of two capital letters (ISO 3166-1 alpha-2, such "
                                        f"as DE), got {code!r}")
        elif isinstance(item, EntryPathFilter):
            if not isinstance(item.prefix, str) or len(item.prefix) > MAX_PATH_LENGTH:
                raise InvalidFilter(f"{where}.prefix", f"must be a path of at most {MAX_PATH_LENGTH} characters")
        elif isinstance(item, PagesFilter):
            _check_range(where, item.min_pages, item.max_pages, ("min_pages", "max_pages"), 0, 2**32,
                         "a whole number of pages, 0 or more")
        elif isinstance(item, SignalFilter):
            if item.signal not in SIGNALS:
                raise InvalidFilter(f"{where}.signal", f"must be one of {', '.join(SIGNALS)}, got {item.signal!r}")
            if not isinstance(item.present, bool):
                raise InvalidFilter(f"{where}.present", "must be true or false")
        else:
            raise InvalidFilter(where, f"unknown filter {type(item).__name__}")


def _check_names(path: str, names: tuple[str, ...]) -> None:
    if not names:
        raise InvalidFilter(path, "must name at least one")
    if len(names) > MAX_APP_NAMES:
        raise InvalidFilter(path, f"at most {MAX_APP_NAMES} names")
    for position, name in enumerate(names):
        check_text(f"{path}[{position}]", name)


def _check_range(where: str, low: int | None, high: int | None, names: tuple[str, str], minimum: int,
                 maximum: int, what: str) -> None:
    for name, value in zip(names, (low, high), strict=True):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not minimum <= value <= maximum):
            raise InvalidFilter(f"{where}.{name}", f"must be {what}")
    if low is not None and high is not None and low > high:
        raise InvalidFilter(where, f"{names[0]} {low} is greater than {names[1]} {high}")


def check_text(path: str, value: object) -> None:
    """A name or label a filter or a funnel step matches exactly: a non-empty string of bounded length."""
    if not isinstance(value, str):
        raise InvalidFilter(path, "must be a string")
    if value == "":
        raise InvalidFilter(path, "must not be empty")
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidFilter(path, f"must be at most {MAX_TEXT_LENGTH} characters, got {len(value)}")


# --- the clean form ------------------------------------------------------------------------------------------------

_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def filters_from_clean(documents: Sequence[Mapping[str, Any]], path: str = "filters") -> Filters:
    """Read and validate a list of clean-form filters."""
    try:
        filters = msgspec.convert(list(documents), Filters)
    except msgspec.ValidationError as error:
        raise invalid_from_msgspec(error, root=path) from None
    validate_filters(filters, path)
    return filters


def invalid_from_msgspec(error: msgspec.ValidationError, root: str = "") -> InvalidFilter:
    """msgspec's "Expected `int`, got `str` - at `$[0].min_ms`" as an :class:`InvalidFilter` at ``filters[0].min_ms``
    (under ``root``)."""
    match = _MSGSPEC_PATH.match(str(error))
    assert match is not None  # the pattern matches every string
    path = (match.group("path") or "").lstrip(".")
    if root:
        path = f"{root}{path}" if path.startswith("[") else ".".join(p for p in (root, path) if p)
    return InvalidFilter(path, match.group("message"))


# --- the dashboard form --------------------------------------------------------------------------------------------

DASHBOARD_FILTER_TYPES = ("appName", "date", "length", "Has Errors?")


def dashboard_filters(raw: Any, path: str = "sessionFilters") -> Filters:
    """Read dashboard-form session filters (``[{}]`` and ``[]`` both mean none); errors name the dashboard's fields
    under ``path`` (``sessionFilters[0].startDate``)."""
    if not isinstance(raw, list):
        raise InvalidFilter(path, "must be a list of filters")
    filters: list[SessionFilter] = []
    for index, entry in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(entry, Mapping):
            raise InvalidFilter(where, "a filter is a JSON object")
        if not entry:
            continue  # the original's placeholder for "no filter"
        filters.append(_dashboard_filter(where, entry))
    if len(filters) > MAX_FILTERS:
        raise InvalidFilter(path, f"at most {MAX_FILTERS} filters, got {len(filters)}")
    return tuple(filters)


def _dashboard_filter(where: str, entry: Mapping[str, Any]) -> SessionFilter:
    kind = entry.get("filterType")
    if kind == "appName":
        _only(where, entry, {"filterType", "textContent"})
        name = entry.get("textContent")
        if name is None:
            raise InvalidFilter(f"{where}.textContent", "is missing: the appName filter needs the app name")
        check_text(f"{where}.textContent", name)
        return AppNameFilter(names=(name,))
    if kind == "date":
        _only(where, entry, {"filterType", "startDate", "endDate"})
        start = _dashboard_date(f"{where}.startDate", entry.get("startDate"))
        end = _dashboard_date(f"{where}.endDate", entry.get("endDate"))
        if start is not None and end is not None and start > end:
            raise InvalidFilter(f"{where}.startDate", f"{start} is after endDate {end}")
        return StartedFilter(start=start, end=end)
    if kind == "length":
        _only(where, entry, {"filterType", "minLength", "maxLength"})
        low = _dashboard_int(f"{where}.minLength", entry.get("minLength"))
        high = _dashboard_int(f"{where}.maxLength", entry.get("maxLength"))
        if low is not None and high is not None and low > high:
            raise InvalidFilter(f"{where}.minLength", f"{low} is greater than maxLength {high}")
        return DurationFilter(min_ms=low, max_ms=high)
    if kind == "Has Errors?":
        _only(where, entry, {"filterType", "yesOrNo"})
        answer = entry.get("yesOrNo")
        if answer not in ("yes", "no"):
            raise InvalidFilter(f"{where}.yesOrNo", f"must be 'yes' or 'no', got {answer!r}")
        return ErrorsFilter(has_errors=answer == "yes")
    types = ", ".join(repr(name) for name in DASHBOARD_FILTER_TYPES)
    raise InvalidFilter(f"{where}.filterType", f"must be one of {types}, got {kind!r}")


def to_dashboard_filters(filters: Iterable[SessionFilter], path: str = "filters") -> list[dict[str, Any]]:
    """The dashboard form of ``filters``; :class:`InvalidFilter` for one it cannot say (an app filter with several
    names, ``started_at``, ``id_prefix``)."""
    written: list[dict[str, Any]] = []
    for index, item in enumerate(filters):
        if isinstance(item, AppNameFilter) and len(item.names) == 1:
            written.append({"filterType": "appName", "textContent": item.names[0]})
        elif isinstance(item, StartedFilter):
            entry: dict[str, Any] = {"filterType": "date"}
            if item.start is not None:
                entry["startDate"] = item.start.isoformat()
            if item.end is not None:
                entry["endDate"] = item.end.isoformat()
            written.append(entry)
        elif isinstance(item, DurationFilter):
            entry = {"filterType": "length"}
            if item.min_ms is not None:
                entry["minLength"] = item.min_ms
            if item.max_ms is not None:
                entry["maxLength"] = item.max_ms
            written.append(entry)
        elif isinstance(item, ErrorsFilter):
            written.append({"filterType": "Has Errors?", "yesOrNo": "yes" if item.has_errors else "no"})
        elif isinstance(item, AppNameFilter):
            raise InvalidFilter(f"{path}[{index}].names", "the dashboard form holds one app name per filter")
        else:
            raise InvalidFilter(f"{path}[{index}]", f"the dashboard form has no {type(item).__name__}")
    return written


def _only(path: str, entry: Mapping[str, Any], allowed: set[str]) -> None:
    for key in entry:
        if key not in allowed:
            raise InvalidFilter(f"{path}.{key}", "unknown field")


def _dashboard_date(path: str, raw: Any) -> dt.date | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise InvalidFilter(path, "must be a date written YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidFilter(path, f"{raw!r} is not a calendar date") from None
    _check_year(path, day)
    return day


def _check_year(path: str, day: dt.date) -> None:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidFilter(path, f"must be from {MIN_YEAR} to {MAX_YEAR} (what ClickHouse's DateTime64 holds)")


def _dashboard_int(path: str, raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and re.fullmatch(r"\d{1,19}", raw):
        value = int(raw)
    if value is None or not 0 <= value <= MAX_DURATION_MS:
        raise InvalidFilter(path, "must be a whole number of milliseconds, 0 or more")
    return value


# --- the query builder ---------------------------------------------------------------------------------------------


def day_start_ms(day: dt.date) -> int:
    """The first millisecond of a UTC day."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def instant(params: QueryParameters, ms: int) -> exp.Expr:
    """A bound moment, as ``started_at``'s type: ``fromUnixTimestamp64Milli({p: Int64}, 'UTC')``."""
    return call("fromUnixTimestamp64Milli", params.bind(ms, "Int64"), exp.Literal.string("UTC"))


def condition(item: SessionFilter, params: QueryParameters) -> exp.Expr:
    """The condition on a row of ``sessions`` (or of a projection with its columns) that ``item`` means."""
    if isinstance(item, AppNameFilter):
        # One array parameter: the text does not change with the number of names.
        return exp.In(this=column("app_name"), field=params.bind(list(item.names), "Array(String)"))
    if isinstance(item, StartedFilter):
        start = day_start_ms(item.start) if item.start is not None else None
        end = day_start_ms(item.end + dt.timedelta(days=1)) if item.end is not None else None
        return _started_between(params, start, end)
    if isinstance(item, StartedAtFilter):
        return _started_between(params, item.after_ms, item.before_ms)
    if isinstance(item, DurationFilter):
        return _count_between(params, "duration_ms", item.min_ms, item.max_ms)
    if isinstance(item, ErrorsFilter):
        # The flag is bound too, so "has errors" and "has none" are the same text.
        has_errors = exp.Paren(this=exp.GT(this=column("error_count"), expression=number(0)))
        return exp.EQ(this=has_errors, expression=params.bind(item.has_errors, "Bool"))
    if isinstance(item, IdPrefixFilter):
        return call("startsWith", call("toString", column("session_id")), params.bind(item.prefix, "String"))
    if isinstance(item, BrowserFilter):
        return exp.In(this=column("browser"), field=params.bind(list(item.names), "Array(String)"))
    if isinstance(item, OsFilter):
        return exp.In(this=column("os"), field=params.bind(list(item.names), "Array(String)"))
    if isinstance(item, DeviceTypeFilter):
        return exp.In(this=column("device_type"), field=params.bind(list(item.types), "Array(String)"))
    if isinstance(item, CountryFilter):
        return exp.In(this=column("country"), field=params.bind(list(item.codes), "Array(String)"))
    if isinstance(item, EntryPathFilter):
        return call("startsWith", column("entry_path"), params.bind(item.prefix, "String"))
    if isinstance(item, PagesFilter):
        return _count_between(params, "page_count", item.min_pages, item.max_pages)
    if isinstance(item, SignalFilter):
        # The column from the allow-list, the wish bound: "has" and "has not" are the same text.
        present = exp.Paren(this=exp.GT(this=column(SIGNAL_COLUMNS[item.signal]), expression=number(0)))
        return exp.EQ(this=present, expression=params.bind(item.present, "Bool"))
    raise InvalidFilter("filters", f"unknown filter {type(item).__name__}")


def _count_between(params: QueryParameters, name: str, low: int | None, high: int | None) -> exp.Expr:
    """``low <= name <= high`` on a UInt64 column (``name`` a constant of this module); a missing bound is open."""
    bounds: list[exp.Expr] = []
    if low is not None:
        bounds.append(exp.GTE(this=column(name), expression=params.bind(low, "UInt64")))
    if high is not None:
        bounds.append(exp.LTE(this=column(name), expression=params.bind(high, "UInt64")))
    return and_(*bounds) if bounds else exp.true()


def _started_between(params: QueryParameters, start_ms: int | None, before_ms: int | None) -> exp.Expr:
    bounds: list[exp.Expr] = []
    if start_ms is not None:
        bounds.append(exp.GTE(this=column("started_at"), expression=instant(params, start_ms)))
    if before_ms is not None:
        bounds.append(exp.LT(this=column("started_at"), expression=instant(params, before_ms)))
    # An open range on both ends keeps everything.
    return and_(*bounds) if bounds else exp.true()


def conditions(filters: Iterable[SessionFilter], params: QueryParameters) -> list[exp.Expr]:
    """:func:`condition` of each filter, in order."""
    return [condition(item, params) for item in filters]


def where(conditions_: Sequence[exp.Expr]) -> exp.Expr | None:
    """The AND of ``conditions_``, ``None`` when there are none."""
    return and_(*conditions_) if conditions_ else None
