"""A plain-Python evaluator of the funnel semantics in :mod:`funnels`, written for clarity, not speed.

It is the oracle the compiled queries are tested against: same inputs (ended sessions and conversion events as
plain rows), same :class:`~funnels.results.FunnelResult` with every id (ordered by ``str(id)``).
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from collections.abc import Iterable, Sequence

import msgspec
from clickhouse_connect.driver.client import Client

from funnels.definition import (
    AppNameFilter,
    DurationFilter,
    ErrorsFilter,
    FunnelDefinition,
    IdPrefixFilter,
    SessionFilter,
    StartedAtFilter,
    StartedFilter,
    validate,
    validate_filters,
)
from funnels.results import FunnelResult, ReachedSession, StepResult


class SessionRow(msgspec.Struct, frozen=True):
    """An ended session as readers see it (one row per session)."""

    session_id: uuid.UUID
    app_name: str
    started_at_ms: int
    ended_at_ms: int
    error_count: int = 0

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


def step_times(definition: FunnelDefinition, events: Sequence[EventRow]) -> list[int]:
    """The moments one session reached steps 1, 2, ... (as many as it reached), straight from the semantics."""
    times: list[int] = []
    window_ms = definition.window_seconds * 1000 if definition.window_seconds is not None else None
    for step in definition.steps:
        candidates = [
            event.ts_ms
            for event in events
            if event.kind == step.kind
            and event.label == step.label
            and (not times or event.ts_ms > times[-1])
            and (not times or window_ms is None or event.ts_ms <= times[0] + window_ms)
        ]
        if not candidates:
            break
        times.append(min(candidates))
    return times


def reached_moments(
    definition: FunnelDefinition,
    sessions: Iterable[SessionRow],
    events: Iterable[EventRow],
    extra_filters: Sequence[SessionFilter] = (),
) -> dict[uuid.UUID, list[int]]:
    """Every entered session (in ``str(id)`` order) and the moments it reached steps 1, 2, ... (its level is the
    length)."""
    validate(definition)
    validate_filters(extra_filters, "extra_filters")
    filters = (*definition.filters, *extra_filters)
    entered = sorted((s.session_id for s in sessions if session_matches(s, filters)), key=str)
    by_session: dict[uuid.UUID, list[EventRow]] = {sid: [] for sid in entered}
    for event in events:
        if event.session_id in by_session:
            by_session[event.session_id].append(event)
    return {sid: step_times(definition, by_session[sid]) for sid in entered}


def reference_step_sessions(
    definition: FunnelDefinition,
    sessions: Iterable[SessionRow],
    events: Iterable[EventRow],
    step_number: int,
    outcome: str,
    extra_filters: Sequence[SessionFilter] = (),
) -> list[ReachedSession]:
    """Every session that completed (``level >= step_number``) or dropped at (``level == step_number - 1``) one
    step, in ``str(id)`` order, with its level and moments: what the pages of ``step_sessions`` add up to."""
    reached = reached_moments(definition, sessions, events, extra_filters)
    return [
        ReachedSession(session_id=sid, level=len(times), reached_at_ms=times)
        for sid, times in reached.items()
        if (len(times) >= step_number if outcome == "completed" else len(times) == step_number - 1)
    ]


def evaluate_reference(
    definition: FunnelDefinition,
    sessions: Iterable[SessionRow],
    events: Iterable[EventRow],
    extra_filters: Sequence[SessionFilter] = (),
) -> FunnelResult:
    reached = reached_moments(definition, sessions, events, extra_filters)
    entered = list(reached)

    steps: list[StepResult] = []
    previous_ids = entered
    for index, step in enumerate(definition.steps):
        completed_ids = [sid for sid in previous_ids if len(reached[sid]) > index]
        dropped_ids = [sid for sid in previous_ids if len(reached[sid]) == index]
        gaps = [reached[sid][index] - reached[sid][index - 1] for sid in completed_ids] if index else []
        steps.append(
            StepResult(
                step=step,
                completed=len(completed_ids),
                dropped=len(dropped_ids),
                conversion_from_start=len(completed_ids) / len(entered) if entered else None,
                conversion_from_previous=len(completed_ids) / len(previous_ids) if previous_ids else None,
                median_ms_from_previous=float(statistics.median(gaps)) if gaps else None,
                completed_ids=completed_ids,
                dropped_ids=dropped_ids,
            )
        )
        previous_ids = completed_ids
    return FunnelResult(entered=len(entered), steps=steps)


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
                [s.session_id, s.app_name, moment(s.started_at_ms), moment(s.ended_at_ms), 0, s.error_count, [], 1]
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
