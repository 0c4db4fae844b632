"""A plain-Python evaluator of the funnel semantics in :mod:`funnels`, written for clarity, not speed.

It is the oracle the compiled queries are tested against: same inputs (ended sessions and conversion events as
plain rows), same :class:`~funnels.results.FunnelResult` with every id (ordered by ``str(id)``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

import msgspec
from clickhouse_connect.driver.client import Client

from funnels.definition import (
    AppNameFilter,
    DurationFilter,
    ErrorsFilter,
    Exclusion,
    FunnelDefinition,
    IdPrefixFilter,
    SessionFilter,
    StartedAtFilter,
    StartedFilter,
    Step,
    page_prefix,
    validate,
    validate_filters,
)
from funnels.results import (
    HISTOGRAM_BINS,
    FunnelResult,
    Histogram,
    ReachedSession,
    StepResult,
    breakdown_rows,
    trend_points,
)


class SessionRow(msgspec.Struct, frozen=True):
    """An ended session as readers see it (one row per session)."""

    session_id: uuid.UUID
    app_name: str
    started_at_ms: int
    ended_at_ms: int
    error_count: int = 0
    browser: str = ""
    os: str = ""
    device_type: str = ""
    entry_path: str = ""

    @property
    def duration_ms(self) -> int:
        return max(0, self.ended_at_ms - self.started_at_ms)

    @property
    def date(self) -> dt.date:
        return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=self.started_at_ms)).date()


class EventRow(msgspec.Struct, frozen=True):
    """A conversion event: a tagged click or custom event at ``ts_ms`` (ms since the epoch)."""

    session_id: uuid.UUID
    ts_ms: int
    kind: str
    label: str


def session_matches(session: SessionRow, filters: Iterable[SessionFilter]) -> bool:
    for item in filters:
        if isinstance(item, AppNameFilter):
            ok = session.app_name in item.names
        elif isinstance(item, StartedFilter):
            ok = (item.start is None or session.date >= item.start) and (item.end is None or session.date <= item.end)
        elif isinstance(item, StartedAtFilter):
            ok = (item.after_ms is None or session.started_at_ms >= item.after_ms) and (
                item.before_ms is None or session.started_at_ms < item.before_ms
            )
        elif isinstance(item, IdPrefixFilter):
            ok = str(session.session_id).startswith(item.prefix)
        elif isinstance(item, DurationFilter):
            ok = (item.min_ms is None or session.duration_ms >= item.min_ms) and (
                item.max_ms is None or session.duration_ms <= item.max_ms
            )
        elif isinstance(item, ErrorsFilter):
            ok = (session.error_count > 0) == item.has_errors
        else:
            raise TypeError(f"unknown filter {item!r}")
        if not ok:
            return False
    return True


def quantile(values: Sequence[int], level: float) -> float | None:
    """ClickHouse's ``quantileExactInclusive``: linear interpolation at position ``level * (n - 1)``."""
    if not values:
        return None
    ordered = sorted(values)
    h = level * (len(ordered) - 1) + 1
    n = int(h)
    if n >= len(ordered):
        return float(ordered[-1])
    if n < 1:
        return float(ordered[0])
    return float(ordered[n - 1] + (h - n) * (ordered[n] - ordered[n - 1]))


def histogram(values: Sequence[int]) -> Histogram | None:
    if not values:
        return None
    lower, upper = min(values), max(values)
    width = (upper - lower) // HISTOGRAM_BINS + 1
    counts = [0] * HISTOGRAM_BINS
    for value in values:
        counts[(value - lower) // width] += 1
    return Histogram(lower_ms=lower, bin_ms=width, counts=counts)


def _matches(step: Step | Exclusion, event: EventRow) -> bool:
    prefix = page_prefix(step)
    if prefix is not None:
        return event.kind == "page" and event.label.startswith(prefix)
    return event.kind == step.kind and event.label == step.label


def _deepest(chains: Iterable[list[int]]) -> list[int]:
    """The longest chain; among equals the first (the chains come by anchor, earliest first)."""
    best: list[int] = []
    for chain in chains:
        if len(chain) > len(best):
            best = chain
    return best


def ordered_chain(definition: FunnelDefinition, events: Sequence[EventRow], anchor: int) -> list[int]:
    """From a step-1 event at ``anchor``: each later step at its earliest match strictly after the previous one
    (and within the window of the anchor)."""
    window_ms = definition.window_seconds * 1000 if definition.window_seconds is not None else None
    times = [anchor]
    for step in definition.steps[1:]:
        candidates = [e.ts_ms for e in events if _matches(step, e) and e.ts_ms > times[-1]
                      and (window_ms is None or e.ts_ms <= anchor + window_ms)]
        if not candidates:
            break
        times.append(min(candidates))
    return times


def strict_chain(definition: FunnelDefinition, events: Sequence[EventRow], anchor: int) -> list[int]:
    """From a step-1 event at ``anchor``: each later step done at the session's next moment with any conversion
    event (nothing in between), strictly after the previous step."""
    window_ms = definition.window_seconds * 1000 if definition.window_seconds is not None else None
    moments = sorted({e.ts_ms for e in events})
    times = [anchor]
    for step in definition.steps[1:]:
        following = [m for m in moments if m > times[-1]]
        if not following:
            break
        moment = following[0]
        if window_ms is not None and moment > anchor + window_ms:
            break
        if not any(_matches(step, e) and e.ts_ms == moment for e in events):
            break
        times.append(moment)
    return times


def any_order_chain(definition: FunnelDefinition, events: Sequence[EventRow], anchor: int) -> list[int]:
    """From ``anchor``: every step done at or after it (within the window), each at its earliest match; the
    moments sorted (reaching step k = having done k of them)."""
    window_ms = definition.window_seconds * 1000 if definition.window_seconds is not None else None
    done = []
    for step in definition.steps:
        candidates = [e.ts_ms for e in events if _matches(step, e) and e.ts_ms >= anchor
                      and (window_ms is None or e.ts_ms <= anchor + window_ms)]
        if candidates:
            done.append(min(candidates))
    return sorted(done)


def step_times(definition: FunnelDefinition, events: Sequence[EventRow]) -> list[int]:
    """The moments one session reached steps 1, 2, ... (as many as it reached), straight from the semantics: the
    deepest chain over every anchor, the earliest anchor among equals."""
    if definition.order == "any":
        anchors = sorted(e.ts_ms for e in events if any(_matches(step, e) for step in definition.steps))
        return _deepest(any_order_chain(definition, events, anchor) for anchor in anchors)
    anchors = sorted(e.ts_ms for e in events if _matches(definition.steps[0], e))
    chain = strict_chain if definition.order == "strict" else ordered_chain
    return _deepest(chain(definition, events, anchor) for anchor in anchors)


def is_excluded(definition: FunnelDefinition, events: Sequence[EventRow], times: list[int]) -> bool:
    """An exclusion event strictly after reaching its ``from_step`` and strictly before reaching its ``to_step``
    (or, when the session never reached it, before the window's end, or at any later time without a window)."""
    for exclusion in definition.exclusions:
        if len(times) < exclusion.from_step:
            continue
        start = times[exclusion.from_step - 1]
        if len(times) >= exclusion.to_step:
            end = times[exclusion.to_step - 1]
        elif definition.window_seconds is not None:
            end = times[0] + definition.window_seconds * 1000
        else:
            end = 2**63 - 1
        if any(_matches(exclusion, e) and start < e.ts_ms < end for e in events):
            return True
    return False


def reached_moments(
    definition: FunnelDefinition,
    sessions: Iterable[SessionRow],
    events: Iterable[EventRow],
    extra_filters: Sequence[SessionFilter] = (),
) -> dict[uuid.UUID, list[int]]:
    """Every entered session that was not excluded (in ``str(id)`` order) and the moments it reached steps 1,
    2, ... (its level is the length)."""
    return _evaluated(definition, sessions, events, extra_filters)[0]


def _evaluated(
    definition: FunnelDefinition,
    sessions: Iterable[SessionRow],
    events: Iterable[EventRow],
    extra_filters: Sequence[SessionFilter],
) -> tuple[dict[uuid.UUID, list[int]], int, dict[uuid.UUID, SessionRow]]:
    validate(definition)
    validate_filters(extra_filters, "extra_filters")
    filters = (*definition.filters, *extra_filters)
    rows = {s.session_id: s for s in sessions if session_matches(s, filters)}
    entered = sorted(rows, key=str)
    by_session: dict[uuid.UUID, list[EventRow]] = {sid: [] for sid in entered}
    for event in events:
        if event.session_id in by_session:
            by_session[event.session_id].append(event)
    reached: dict[uuid.UUID, list[int]] = {}
    excluded = 0
    for sid in entered:
        times = step_times(definition, by_session[sid])
        if is_excluded(definition, by_session[sid], times):
            excluded += 1
        else:
            reached[sid] = times
    return reached, excluded, rows


def reference_step_sessions(
    definition: FunnelDefinition,
    sessions: Iterable[SessionRow],
    events: Iterable[EventRow],
    step_number: int,
    outcome: str,
    extra_filters: Sequence[SessionFilter] = (),
    breakdown_value: str | None = None,
    breakdown_other: Sequence[str] | None = None,
) -> list[ReachedSession]:
    """Every session that completed (``level >= step_number``) or dropped at (``level == step_number - 1``) one
    step, in ``str(id)`` order, with its level and moments: what the pages of ``step_sessions`` add up to; with a
    breakdown value (or the values the "other" row leaves out), only the sessions of that row."""
    reached, _, rows = _evaluated(definition, sessions, events, extra_filters)
    prop = definition.breakdown.property if definition.breakdown is not None else None
    listed = []
    for sid, times in reached.items():
        if not (len(times) >= step_number if outcome == "completed" else len(times) == step_number - 1):
            continue
        value = getattr(rows[sid], prop) if prop is not None else None
        if breakdown_value is not None and value != breakdown_value:
            continue
        if breakdown_other is not None and value in breakdown_other:
            continue
        listed.append(ReachedSession(session_id=sid, level=len(times), reached_at_ms=times))
    return listed


def evaluate_reference(
    definition: FunnelDefinition,
    sessions: Iterable[SessionRow],
    events: Iterable[EventRow],
    extra_filters: Sequence[SessionFilter] = (),
) -> FunnelResult:
    reached, excluded, rows = _evaluated(definition, sessions, events, extra_filters)
    entered = list(reached)
    n = len(definition.steps)

    steps: list[StepResult] = []
    previous_ids = entered
    for index, step in enumerate(definition.steps):
        completed_ids = [sid for sid in previous_ids if len(reached[sid]) > index]
        dropped_ids = [sid for sid in previous_ids if len(reached[sid]) == index]
        gaps = [reached[sid][index] - reached[sid][index - 1] for sid in completed_ids] if index else []
        from_start = [reached[sid][index] - reached[sid][0] for sid in completed_ids] if index else []
        steps.append(
            StepResult(
                step=step,
                completed=len(completed_ids),
                dropped=len(dropped_ids),
                conversion_from_start=len(completed_ids) / len(entered) if entered else None,
                conversion_from_previous=len(completed_ids) / len(previous_ids) if previous_ids else None,
                median_ms_from_previous=quantile(gaps, 0.5),
                completed_ids=completed_ids,
                dropped_ids=dropped_ids,
                p90_ms_from_previous=quantile(gaps, 0.9),
                median_ms_from_start=quantile(from_start, 0.5),
                p90_ms_from_start=quantile(from_start, 0.9),
                time_to_convert=histogram(from_start),
            )
        )
        previous_ids = completed_ids

    per_day: dict[dt.date, tuple[int, int]] = {}
    for sid in entered:
        day = rows[sid].date
        before = per_day.get(day, (0, 0))
        per_day[day] = (before[0] + 1, before[1] + (len(reached[sid]) == n))
    period, trend = trend_points(per_day)

    breakdown = None
    if definition.breakdown is not None:
        per_value: dict[str, tuple[int, list[int]]] = {}
        for sid in entered:
            value = getattr(rows[sid], definition.breakdown.property)
            count, completed = per_value.setdefault(value, (0, [0] * n))
            for k in range(len(reached[sid])):
                completed[k] += 1
            per_value[value] = (count + 1, completed)
        breakdown = breakdown_rows(per_value, definition.breakdown.limit)
    return FunnelResult(entered=len(entered), steps=steps, excluded=excluded, trend_period=period, trend=trend,
                        breakdown=breakdown)


def insert_rows(client: Client, database: str, sessions: Sequence[SessionRow], events: Sequence[EventRow]) -> None:
    """Load reference rows into ``database``'s ``sessions`` and ``conversion_events`` (one insert per table), for
    tests and examples. Events get a fresh ``batch_id`` each, so a repeated row is a distinct event."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def moment(ms: int) -> dt.datetime:
        return epoch + dt.timedelta(milliseconds=ms)

    if sessions:
        client.insert(
            "sessions",
            [
                [s.session_id, s.app_name, moment(s.started_at_ms), moment(s.ended_at_ms), 0, s.error_count, [], 1,
                 s.browser, s.os, s.device_type, s.entry_path]
                for s in sessions
            ],
            column_names=[
                "session_id",
                "app_name",
                "started_at",
                "ended_at",
                "event_count",
                "error_count",
                "segments",
                "version",
                "browser",
                "os",
                "device_type",
                "entry_path",
            ],
            database=database,
        )
    if events:
        client.insert(
            "conversion_events",
            [[e.session_id, "app", moment(e.ts_ms), e.kind, e.label, uuid.uuid4(), 0] for e in events],
            column_names=["session_id", "app_name", "ts", "kind", "label", "batch_id", "seq"],
            database=database,
        )
