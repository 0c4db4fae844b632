"""Evaluating a stored funnel with the funnel engine, and its results in either API's form."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from funnels import (
    FunnelDefinition,
    FunnelResult,
    IdSelection,
    NoIds,
    ReachedSession,
    SessionFilter,
    evaluate_funnel,
    step_sessions,
)
from funnels.results import top_values
from replayer_api.parameters import iso_ms
from replayer_api.warehouse import Warehouse


async def evaluate(warehouse: Warehouse, database: str, definition: FunnelDefinition,
                   extra_filters: Sequence[SessionFilter], ids: IdSelection) -> FunnelResult:
    return await warehouse.call(lambda client: evaluate_funnel(client, database, definition, extra_filters, ids))


async def one_step_sessions(warehouse: Warehouse, database: str, definition: FunnelDefinition, step_number: int,
                            outcome: Literal["completed", "dropped"], extra_filters: Sequence[SessionFilter],
                            limit: int, after: uuid.UUID | None,
                            breakdown: str | None | Literal[False] = False) -> list[ReachedSession]:
    """One page of a step's completed or dropped sessions, each with its level and the moments it reached its
    steps; ``breakdown`` a breakdown value, ``None`` for the "other" row, ``False`` for every session. The other
    row is every value outside the top ones, so it takes a count first (the top values of the same filters)."""
    if breakdown is False:
        return await warehouse.call(lambda client: step_sessions(
            client, database, definition, step_number, outcome, extra_filters, limit=limit, after=after))
    if breakdown is not None:
        value = breakdown
        return await warehouse.call(lambda client: step_sessions(
            client, database, definition, step_number, outcome, extra_filters, limit=limit, after=after,
            breakdown_value=value))
    summary = await evaluate(warehouse, database, definition, extra_filters, NoIds())
    others = top_values(summary.breakdown)
    return await warehouse.call(lambda client: step_sessions(
        client, database, definition, step_number, outcome, extra_filters, limit=limit, after=after,
        breakdown_other=others))


def reached_json(session: ReachedSession) -> dict[str, Any]:
    """``{session_id, level, reached_at, reached_at_ms}``: the dashboard opens a dropped session at
    ``reached_at[-1]`` (the last step it reached), or at its start when ``level`` is 0."""
    return {
        "session_id": str(session.session_id),
        "level": session.level,
        "reached_at": [iso_ms(ms) for ms in session.reached_at_ms],
        "reached_at_ms": list(session.reached_at_ms),
    }


def legacy_results(result: FunnelResult) -> dict[str, Any]:
    """The original ``{totalFilteredSessions, eventSequenceResults}`` shape (complete id lists)."""
    return {
        "totalFilteredSessions": result.entered,
        "eventSequenceResults": [
            {
                "numberCompleted": step.completed,
                "sessionsCompleted": [str(i) for i in step.completed_ids],
                "numberNotCompleted": step.dropped,
                "sessionsNotCompleted": [str(i) for i in step.dropped_ids],
            }
            for step in result.steps
        ],
    }


def clean_results(result: FunnelResult) -> dict[str, Any]:
    return {
        "entered": result.entered,
        "excluded": result.excluded,
        "steps": [
            {
                "number": number,
                "kind": step.step.kind,
                "label": step.step.label,
                "completed": step.completed,
                "dropped": step.dropped,
                "conversion_from_start": step.conversion_from_start,
                "conversion_from_previous": step.conversion_from_previous,
                "median_ms_from_previous": step.median_ms_from_previous,
                "p90_ms_from_previous": step.p90_ms_from_previous,
                "median_ms_from_start": step.median_ms_from_start,
                "p90_ms_from_start": step.p90_ms_from_start,
                "time_to_convert": None if step.time_to_convert is None else {
                    "lower_ms": step.time_to_convert.lower_ms,
                    "bin_ms": step.time_to_convert.bin_ms,
                    "counts": step.time_to_convert.counts,
                },
                "completed_ids": [str(i) for i in step.completed_ids],
                "dropped_ids": [str(i) for i in step.dropped_ids],
            }
            for number, step in enumerate(result.steps, start=1)
        ],
        "trend": {
            "period": result.trend_period,
            "points": [{"start": point.start.isoformat(), "entered": point.entered, "completed": point.completed}
                       for point in result.trend],
        },
        "breakdown": None if result.breakdown is None else [
            {"value": row.value, "other": row.value is None, "entered": row.entered, "completed": row.completed}
            for row in result.breakdown
        ],
    }
