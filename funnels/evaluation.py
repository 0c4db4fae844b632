"""Running compiled funnels on a clickhouse-connect client and shaping the answer.

Execution lives here, compilation in :mod:`funnels.compiler`. Every call blocks (chDB and the HTTP client alike),
so async callers use ``asyncio.to_thread``; with chDB, one client serialises its calls.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from funnels.compiler import CompiledQuery, FunnelCompiler
from funnels.definition import FunnelDefinition, SessionFilter
from funnels.errors import FunnelQueryFailed
from funnels.results import AllIds, FunnelResult, IdPage, IdSelection, NoIds, ReachedSession, StepResult

log = logging.getLogger(__name__)

COUNTS_ONLY = NoIds()

_ERROR_CODE = re.compile(r"Code: (\d+)")


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
    compiler = FunnelCompiler(definition, database, extra_filters)
    if isinstance(ids, AllIds):
        query = compiler.all_ids_query()
    elif isinstance(ids, IdPage) and ids.limit != 0:
        query = compiler.page_ids_query(ids.limit, ids.offset, ids.after)
    else:
        query = compiler.counts_query()
    row = _run(client, query)[0]
    n = len(definition.steps)
    entered = int(row[0])
    completed = [int(value) for value in row[1 : n + 1]]
    medians: list[float | None] = [None, *(_median(value) for value in row[n + 1 : 2 * n])]
    id_lists = [list(value) for value in row[2 * n :]] or [[] for _ in range(2 * n)]
    completed_ids, dropped_ids = id_lists[0::2], id_lists[1::2]

    steps: list[StepResult] = []
    previous = entered
    for index, step in enumerate(definition.steps):
        steps.append(
            StepResult(
                step=step,
                completed=completed[index],
                dropped=previous - completed[index],
                conversion_from_start=completed[index] / entered if entered else None,
                conversion_from_previous=completed[index] / previous if previous else None,
                median_ms_from_previous=medians[index],
                completed_ids=completed_ids[index],
                dropped_ids=dropped_ids[index],
            )
        )
        previous = completed[index]
    return FunnelResult(entered=entered, steps=steps)


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
) -> list[ReachedSession]:
    """One page of the sessions that completed (or dropped at) step ``step_number`` (1-based), ordered by
    ``str(id)``, each with its level and the moments it reached its steps; ``after`` is a cursor (the last id of
    the previous page) used instead of ``offset``."""
    query = FunnelCompiler(definition, database, extra_filters).step_sessions_query(
        step_number, outcome, limit, offset, after
    )
    return [
        ReachedSession(session_id=session_id, level=int(level), reached_at_ms=[int(t) for t in reached_at])
        for session_id, level, reached_at in _run(client, query)
    ]


def window_funnel_levels(
    client: Client, database: str, definition: FunnelDefinition, extra_filters: Sequence[SessionFilter] = ()
) -> dict[int, int]:
    """Sessions per level by ClickHouse's ``windowFunnel`` (for comparison; see :mod:`funnels.compiler`)."""
    query = FunnelCompiler(definition, database, extra_filters).window_funnel_levels()
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
