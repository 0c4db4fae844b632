"""What an evaluated funnel answers, and how session ids are asked for."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from funnels.definition import Step


class NoIds(msgspec.Struct, frozen=True, tag="none"):
    """Counts only: every id list in the result is empty (cheapest)."""


class AllIds(msgspec.Struct, frozen=True, tag="all"):
    """Every completed and dropped id of every step (the original ``/api`` contract returns complete lists)."""


class IdPage(msgspec.Struct, frozen=True, tag="page"):
    """For every step, the completed and dropped ids from ``offset`` on, at most ``limit`` of each.

    Ids are ordered by their canonical text (``str(uuid)``), the same order in ClickHouse and in Python, so pages
    are stable while the data does not change. ``after`` (a cursor: the last id of the previous page) may be
    given instead of ``offset``: the page then starts with the first id greater than it. ``limit=0`` asks for
    counts only, like :class:`NoIds`.
    """

    limit: int = 100
    offset: int = 0
    after: uuid.UUID | None = None


IdSelection = NoIds | AllIds | IdPage


class StepResult(msgspec.Struct, frozen=True):
    """One step of an evaluated funnel.

    ``completed``: sessions that reached this step. ``dropped``: sessions that reached the previous step (for
    step 1: that entered the funnel) but not this one. ``conversion_from_start`` = completed / entered and
    ``conversion_from_previous`` = completed / completed of the previous step (entered for step 1); both are
    ``None`` when the denominator is 0. ``median_ms_from_previous``: the median, over sessions that completed
    this step, of the milliseconds between reaching the previous step and this one (the mean of the two middle
    values for an even count); ``None`` for step 1 and when no session completed the step.
    ``completed_ids`` / ``dropped_ids``: as the :data:`IdSelection` asked, ordered by ``str(id)``.
    ``p90_ms_from_previous``, and ``median_ms_from_start`` / ``p90_ms_from_start`` (from reaching step 1): the same
    kind of figure (a quantile with linear interpolation between the two nearest values, ClickHouse's
    ``quantileExactInclusive``). ``time_to_convert``: how long, from step 1, the sessions that completed this step
    took. All ``None`` for step 1 and when no session completed the step.
    """

    step: Step
    completed: int
    dropped: int
    conversion_from_start: float | None
    conversion_from_previous: float | None
    median_ms_from_previous: float | None
    completed_ids: list[uuid.UUID]
    dropped_ids: list[uuid.UUID]
    p90_ms_from_previous: float | None = None
    median_ms_from_start: float | None = None
    p90_ms_from_start: float | None = None
    time_to_convert: Histogram | None = None


HISTOGRAM_BINS = 10


class Histogram(msgspec.Struct, frozen=True):
    """:data:`HISTOGRAM_BINS` bins of equal width ``bin_ms`` from the smallest value, ``lower_ms``: bin ``i``
    counts the values in ``[lower_ms + i * bin_ms, lower_ms + (i + 1) * bin_ms)``. The width is the smallest
    whole number of ms that puts the largest value in the last bin or before."""

    lower_ms: int
    bin_ms: int
    counts: list[int]


class TrendPoint(msgspec.Struct, frozen=True):
    """The sessions that entered on ``start`` (a UTC day, or the Monday of a week) and those that completed every
    step."""

    start: dt.date
    entered: int
    completed: int


class BreakdownRow(msgspec.Struct, frozen=True):
    """The funnel's counts over the sessions whose breakdown property is ``value`` (``None``: the row of every
    value outside the top ones). ``completed[k]`` is how many reached step k+1."""

    value: str | None
    entered: int
    completed: list[int]


class FunnelResult(msgspec.Struct, frozen=True):
    """An evaluated funnel: how many sessions entered and what happened at each step.

    ``excluded``: sessions that matched the filters but did an exclusion event (counted nowhere else). ``trend``:
    per ``trend_period`` (``"day"``, or ``"week"`` when the sessions' first and last days are more than 90 days
    apart), every period from the first to the last. ``breakdown``: when the funnel has one, its top values (most
    entered first, ties by value) and, if any value is left, the row of the others; the rows add up to
    ``entered`` and each step's ``completed``.
    """

    entered: int
    steps: list[StepResult]
    excluded: int = 0
    trend_period: str = "day"
    trend: list[TrendPoint] = msgspec.field(default_factory=list)
    breakdown: list[BreakdownRow] | None = None


TREND_WEEKS_AFTER_DAYS = 90


def trend_points(per_day: dict[dt.date, tuple[int, int]]) -> tuple[str, list[TrendPoint]]:
    """Dense per-day (or per-week) points from counts per day: the days without a session are zeros."""
    if not per_day:
        return "day", []
    first, last = min(per_day), max(per_day)
    weekly = (last - first).days > TREND_WEEKS_AFTER_DAYS
    folded: dict[dt.date, list[int]] = {}
    day = first - dt.timedelta(days=first.weekday()) if weekly else first
    while day <= last:
        folded[day] = [0, 0]
        day += dt.timedelta(days=7 if weekly else 1)
    for day, (entered, completed) in per_day.items():
        start = day - dt.timedelta(days=day.weekday()) if weekly else day
        folded[start][0] += entered
        folded[start][1] += completed
    return ("week" if weekly else "day"), [TrendPoint(start, e, c) for start, (e, c) in folded.items()]


def breakdown_rows(per_value: dict[str, tuple[int, list[int]]], limit: int) -> list[BreakdownRow]:
    """The top ``limit`` values (most entered, ties by the value's UTF-8 bytes, as ClickHouse orders strings) and
    one row (value ``None``) adding up every other value."""
    ranked = sorted(per_value.items(), key=lambda item: (-item[1][0], item[0].encode()))
    rows = [BreakdownRow(value, entered, list(completed)) for value, (entered, completed) in ranked[:limit]]
    rest = ranked[limit:]
    if rest:
        steps = len(rest[0][1][1])
        rows.append(BreakdownRow(None, sum(e for _, (e, _) in rest),
                                 [sum(c[k] for _, (_, c) in rest) for k in range(steps)]))
    return rows


def top_values(rows: list[BreakdownRow] | None) -> list[str]:
    """The values of the rows that are not "other"."""
    return [row.value for row in rows or [] if row.value is not None]


class ReachedSession(msgspec.Struct, frozen=True):
    """A session of a step listing and how far it got: ``level`` is the last step it reached (0 to the number of
    steps; a session dropped at step k has level k-1) and ``reached_at_ms[i]`` the moment (ms since the epoch)
    it reached step i+1, for steps 1..level."""

    session_id: uuid.UUID
    level: int
    reached_at_ms: list[int]
