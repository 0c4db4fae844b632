"""The funnel engine: validated funnel definitions compiled to parameterized ClickHouse queries. No HTTP here.

Semantics (the contract every strategy and the reference evaluator share):

- **Who enters.** Ended sessions only (rows of ``sessions``, read with ``FINAL``: one row per session) that
  match every session filter: the definition's and any extra ones given at evaluation time, ANDed.
- **Steps, ordered** (``order="ordered"``, the default). A chain starts at a step-1 event (same kind, label
  equal byte for byte): its *anchor*. Step k is reached at the earliest matching event *strictly after* the
  moment step k-1 was reached; with a window of W seconds it must also be at most W*1000 ms after the anchor
  (inclusive). Every step-1 event may anchor: the session's chain is the deepest, the earliest anchor among
  equals (without a window that is the earliest step-1 event's; ClickHouse's ``windowFunnel`` has the same
  meaning, see :mod:`funnels.compiler` for where it still differs).
- **Strict** (``"strict"``): as ordered, but step k must be done at the session's next moment with any
  conversion event after step k-1 (of any kind or label: nothing in between; an event at the same millisecond
  as a step is not between).
- **Any order** (``"any"``): reaching step k is having done k of the steps (they must differ), each at its
  earliest match at or after the anchor (any matching event) and within its window; the moments are those
  matches in time order (two steps may be reached at one millisecond).
- **Exclusions.** An exclusion (kind, label, ``from_step`` i, ``to_step`` j) done strictly after the chain
  reached step i and strictly before it reached step j (if it never did: before the anchor's window ends, or at
  any time without a window) takes the session out: it is not entered, and ``excluded`` counts it.
- **Breakdown.** Per value of a session property, the same counts; the top ``limit`` values by entered
  sessions (ties by value), then one row for every other value (:func:`funnels.results.breakdown_rows`).
- **Completed and dropped.** A session that reached step k completed steps 1..k and dropped at step k+1.
  Dropped at step 1 = entered minus completed step 1; dropped at step k = completed k-1 minus completed k.
- **Times.** Per step, over the sessions that completed it: the median and p90 ms from the previous step and
  from step 1 (``quantileExactInclusive``: linear interpolation), a histogram of the latter
  (:class:`funnels.results.Histogram`); per funnel the trend, entered and completed (every step) per UTC day of
  the session's start, or per week past 90 days (:func:`funnels.results.trend_points`).
- **Time.** Timestamps are milliseconds (``conversion_events.ts`` is DateTime64(3)). Two events with the same
  millisecond are not ordered: one can never be "strictly after" the other, so consecutive steps need
  distinct milliseconds, and one event never satisfies two steps. Repeated events (the same label many times,
  or copies of one event that ReplacingMergeTree has not merged yet) change nothing: only the earliest match
  after the previous step counts, and a copy has the same timestamp. Events count wherever their (client)
  timestamps fall, even outside the session's ``started_at .. ended_at``.

Public interface:

- :class:`FunnelDefinition` (:class:`Step`, filters :class:`AppNameFilter`, :class:`StartedFilter`,
  :class:`DurationFilter`, :class:`ErrorsFilter`), built and validated by :func:`from_clean` (the ``/v1`` form)
  or :func:`from_dashboard` (the original dashboard's ``funnelName``/``sessionFilters``/``eventSequence``),
  written back by :func:`to_clean` / :func:`to_dashboard`. :func:`dashboard_filters` and :func:`filters_from_clean`
  read extra filters for evaluation time (e.g. ``/api/funnels/:id?startDate&endDate`` ->
  ``dashboard_filters([{"filterType": "date", "startDate": ..., "endDate": ...}])``).
- :class:`InvalidFunnel` (``.path``, ``.message``, ``.to_dict()``): map to 400.
  :class:`FunnelQueryFailed` (``.code``): ClickHouse failed; map to 5xx.
- :func:`evaluate_funnel` (client, database, definition, extra_filters=(), ids=NoIds()|AllIds()|IdPage(...))
  -> :class:`FunnelResult` (``entered``; per step :class:`StepResult`: ``completed``, ``dropped``, conversions,
  ``median_ms_from_previous``, ``completed_ids``, ``dropped_ids``). Blocking: call it off the event loop.
  One query per call, compiled once for the same input (:func:`funnels.compiler.compiled` keeps the latest
  256). Ids are ``uuid.UUID``, ordered by their text (``sorted(ids, key=str)``).
- :func:`step_sessions` (one step's completed or dropped sessions, one page by offset or ``after`` cursor, for
  ``/v1`` listings: each a :class:`ReachedSession` with its ``session_id``, ``level`` and ``reached_at_ms``, the
  moments it reached steps 1..level).
- :func:`compile_funnel` -> :class:`CompiledQuery` (``sql``, ``parameters``): the compiled text, for review;
  :class:`funnels.compiler.FunnelCompiler` builds every query; :mod:`funnels.reference` is the plain-Python
  evaluator the tests hold the queries to; :func:`funnels.evaluation.window_funnel_levels` runs ClickHouse's
  ``windowFunnel`` over the same sessions, for comparison (see :mod:`funnels.compiler` for where it differs).
"""

from funnels.compiler import CompiledQuery, compile_funnel, compile_step_sessions
from funnels.definition import (
    MAX_LABEL_LENGTH,
    MAX_STEPS,
    AppNameFilter,
    DurationFilter,
    ErrorsFilter,
    FunnelDefinition,
    SessionFilter,
    StartedFilter,
    Step,
    dashboard_filters,
    filters_from_clean,
    from_clean,
    from_dashboard,
    to_clean,
    to_dashboard,
    validate,
)
from funnels.errors import FunnelError, FunnelQueryFailed, InvalidFunnel
from funnels.evaluation import evaluate_funnel, step_sessions
from funnels.results import AllIds, FunnelResult, IdPage, IdSelection, NoIds, ReachedSession, StepResult

__all__ = [
    "MAX_LABEL_LENGTH",
    "MAX_STEPS",
    "AllIds",
    "AppNameFilter",
    "CompiledQuery",
    "DurationFilter",
    "ErrorsFilter",
    "FunnelDefinition",
    "FunnelError",
    "FunnelQueryFailed",
    "FunnelResult",
    "IdPage",
    "IdSelection",
    "InvalidFunnel",
    "NoIds",
    "ReachedSession",
    "SessionFilter",
    "StartedFilter",
    "Step",
    "StepResult",
    "compile_funnel",
    "compile_step_sessions",
    "dashboard_filters",
    "evaluate_funnel",
    "filters_from_clean",
    "from_clean",
    "from_dashboard",
    "step_sessions",
    "to_clean",
    "to_dashboard",
    "validate",
]
