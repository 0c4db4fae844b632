"""The funnel engine: validated funnel definitions compiled to parameterized ClickHouse queries. No HTTP here.

Semantics (the contract every strategy and the reference evaluator share):

- **Who enters.** Ended sessions only (rows of ``sessions``, read with ``FINAL``: one row per session) that
  match every session filter: the definition's and any extra ones given at evaluation time, ANDed.
- **Steps.** Step 1 is reached at the earliest conversion event of the session matching step 1 (same kind, label
  equal byte for byte). Step k is reached at the earliest matching event *strictly after* the moment step k-1
  was reached; with a window of W seconds it must also be at most W*1000 ms after the moment step 1 was reached
  (inclusive). Only the earliest step-1 event anchors the window: a session is not retried from a later
  step-1 event (ClickHouse's ``windowFunnel`` does retry; see :mod:`funnels.compiler`).
- **Completed and dropped.** A session that reached step k completed steps 1..k and dropped at step k+1.
  Dropped at step 1 = entered minus completed step 1; dropped at step k = completed k-1 minus completed k.
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
  One query per call. Ids are ``uuid.UUID``, ordered by their text (``sorted(ids, key=str)``).
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
