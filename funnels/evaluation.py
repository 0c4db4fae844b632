"""Running compiled funnels on a clickhouse-connect client and shaping the answer.

Execution lives here, compilation in :mod:`funnels.compiler` (through :func:`funnels.compiler.compiled`,
which keeps the queries of recent evaluations). Every call blocks (chDB and the HTTP client alike),
so async callers use ``asyncio.to_thread``; with chDB, one client serialises its calls.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from funnels.compiler import CompiledQuery, compiled
from funnels.definition import FunnelDefinition, SessionFilter
from funnels.errors import FunnelQueryFailed
from funnels.results import (
    HISTOGRAM_BINS,
    AllIds,
    FunnelResult,
    Histogram,
    IdPage,
    IdSelection,
    NoIds,
    ReachedSession,
    StepResult,
    breakdown_rows,
    trend_points,
)

log = logging.getLogger(__name__)

COUNTS_ONLY = NoIds()

_ERROR_CODE = re.compile(r"Code: (\d+)")
_EPOCH = dt.date(1970, 1, 1)


def evaluate_funnel(
    client: Client,
    database: str,
    definition: FunnelDefinition,
    extra_filters: Sequence[SessionFilter] = (),
    ids: IdSelection = COUNTS_ONLY,
) -> FunnelResult:
    """Evaluate ``definition`` over ``database``'s ``sessions`` and ``conversion_events``.

    ``extra_filters`` are ANDed with the definition's (validated here). ``ids`` chooses which session ids come
    back (none, all, or one page per step; a page of ``limit=0`` is none). Blocking; raises
    :class:`~funnels.errors.InvalidFunnel` for a bad definition, filter or page and
    :class:`~funnels.errors.FunnelQueryFailed` when ClickHouse fails.

    One query in every case; with ids, counts and ids come from the same query and always agree.
    """
    if isinstance(ids, AllIds):
        query = compiled("all_ids_query", definition, database, extra_filters)
    elif isinstance(ids, IdPage) and ids.limit != 0:
        query = compiled("page_ids_query", definition, database, extra_filters, ids.limit, ids.offset, ids.after)
    else:
        query = compiled("counts_query", definition, database, extra_filters)
    row = _run(client, query)[0]
    summary, id_lists = read_summary(definition, row)
    n = len(definition.steps)
    lists = [list(value) for value in id_lists] or [[] for _ in range(2 * n)]
    completed_ids, dropped_ids = lists[0::2], lists[1::2]
    steps = [msgspec.structs.replace(step, completed_ids=completed_ids[k], dropped_ids=dropped_ids[k])
             for k, step in enumerate(summary.steps)]
    return msgspec.structs.replace(summary, steps=steps)


def read_summary(definition: FunnelDefinition, row: Sequence[Any]) -> tuple[FunnelResult, Sequence[Any]]:
    """The :class:`FunnelResult` (without ids) from the columns of the summary
    (:meth:`~funnels.compiler.FunnelCompiler._summary`), and the columns after it."""
    n = len(definition.steps)
    values = iter(row)
    entered, excluded = int(next(values)), int(next(values))
    completed = [int(next(values)) for _ in range(n)]
    timing: list[tuple[list[float | None], list[float | None], Histogram | None]] = [([None, None], [None, None], None)]
    for k in range(1, n):
        from_previous, from_start = [_median(v) for v in next(values)], [_median(v) for v in next(values)]
        lower, width, counts = int(next(values)), int(next(values)), [int(c) for c in next(values)]
        assert len(counts) == HISTOGRAM_BINS
        histogram = Histogram(lower_ms=lower, bin_ms=width, counts=counts) if completed[k] else None
        if not completed[k]:
            from_previous, from_start = [None, None], [None, None]
        timing.append((from_previous, from_start, histogram))
    positions, day_entered, day_completed = next(values)  # a day's position is its number (since 1970) + 1
    per_day = {_EPOCH + dt.timedelta(days=int(position) - 1): (int(e), int(c))
               for position, e, c in zip(positions, day_entered, day_completed, strict=True)}
    period, trend = trend_points(per_day)
    breakdown = None
    if definition.breakdown is not None:
        keys, value_entered, *value_completed = next(values)
        per_value = {key: (int(value_entered[i]), [int(value_completed[k][i]) for k in range(n)])
                     for i, key in enumerate(keys) if value_entered[i]}
        breakdown = breakdown_rows(per_value, definition.breakdown.limit)

    steps: list[StepResult] = []
    previous = entered
    for index, step in enumerate(definition.steps):
        from_previous, from_start, histogram = timing[index]
        steps.append(
            StepResult(
                step=step,
                completed=completed[index],
                dropped=previous - completed[index],
                conversion_from_start=completed[index] / entered if entered else None,
                conversion_from_previous=completed[index] / previous if previous else None,
                median_ms_from_previous=from_previous[0],
                completed_ids=[],
                dropped_ids=[],
                p90_ms_from_previous=from_previous[1],
                median_ms_from_start=from_start[0],
                p90_ms_from_start=from_start[1],
                time_to_convert=histogram,
            )
        )
        previous = completed[index]
    result = FunnelResult(entered=entered, steps=steps, excluded=excluded, trend_period=period, trend=trend,
                          breakdown=breakdown)
    return result, list(values)


def step_sessions(
    client: Client,
    database: str,
    definition: FunnelDefinition,
    step_number: int,
    outcome: Literal["completed", "dropped"],
    extra_filters: Sequence[SessionFilter] = (),
    limit: int = 100,
    offset: int = 0,
    after: uuid.UUID | None = None,
    breakdown_value: str | None = None,
    breakdown_other: Sequence[str] | None = None,
) -> list[ReachedSession]:
    """One page of the sessions that completed (or dropped at) step ``step_number`` (1-based), ordered by
    ``str(id)``, each with its level and the moments it reached its steps; ``after`` is a cursor (the last id of
    the previous page) used instead of ``offset``. ``breakdown_value`` keeps the sessions of one breakdown value,
    ``breakdown_other`` (the top values, :func:`funnels.results.top_values`) those of the "other" row."""
    query = compiled("step_sessions_query", definition, database, extra_filters,
                     step_number, outcome, limit, offset, after, breakdown_value, breakdown_other)
    return [
        ReachedSession(session_id=session_id, level=int(level), reached_at_ms=[int(t) for t in reached_at])
        for session_id, level, reached_at in _run(client, query)
    ]


def window_funnel_levels(
    client: Client, database: str, definition: FunnelDefinition, extra_filters: Sequence[SessionFilter] = ()
) -> dict[int, int]:
    """Sessions per level by ClickHouse's ``windowFunnel`` (for comparison; see :mod:`funnels.compiler`)."""
    query = compiled("window_funnel_levels", definition, database, extra_filters)
    return {int(level): int(count) for level, count in _run(client, query)}


def _run(client: Client, query: CompiledQuery) -> Sequence[Sequence[Any]]:
    try:
        return client.query(query.sql, parameters=query.parameters).result_rows
    except ClickHouseError as error:
        match = _ERROR_CODE.search(str(error))
        log.warning("funnel query failed: %s", error)
        raise FunnelQueryFailed(str(error), int(match.group(1)) if match else None) from error


def _median(value: Any) -> float | None:
    if value is None or math.isnan(value):
        return None
    return float(value)
