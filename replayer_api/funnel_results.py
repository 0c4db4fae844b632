"""Evaluating a stored funnel with the funnel engine, and its results in either API's form."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from funnels import (
    FunnelDefinition,
    FunnelResult,
    IdSelection,
    ReachedSession,
    SessionFilter,
    evaluate_funnel,
    step_sessions,
)
from replayer_api.parameters import iso_ms
from replayer_api.warehouse import Warehouse


async def evaluate(warehouse: Warehouse, database: str, definition: FunnelDefinition,
                   extra_filters: Sequence[SessionFilter], ids: IdSelection) -> FunnelResult:
    return await warehouse.call(lambda client: evaluate_funnel(client, database, definition, extra_filters, ids))


async def one_step_sessions(warehouse: Warehouse, database: str, definition: FunnelDefinition, step_number: int,
                            outcome: Literal["completed", "dropped"], extra_filters: Sequence[SessionFilter],
                            limit: int, after: uuid.UUID | None) -> list[ReachedSession]:
    """One page of a step's completed or dropped sessions, each with its level and the moments it reached its
    steps."""
    return await warehouse.call(lambda client: step_sessions(
        client, database, definition, step_number, outcome, extra_filters, limit=limit, after=after))


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
                "completed_ids": [str(i) for i in step.completed_ids],
                "dropped_ids": [str(i) for i in step.dropped_ids],
            }
            for number, step in enumerate(result.steps, start=1)
        ],
    }
