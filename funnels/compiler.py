"""How a funnel becomes a query.

A funnel compiles to one ClickHouse query built as a sqlglot tree, rendered with ``.sql("clickhouse")`` once,
at the edge (:meth:`FunnelCompiler.render`). Its parts, in the order of the original design's chain:

1. ``entered``: the ids of ended sessions matching the filters (``sessions FINAL``: one row per session).
2. One pass over ``conversion_events``, reading only rows that match some step (the table is sorted by
   ``(kind, label, ...)``, so the primary index skips the rest) of entered sessions, grouped by session. Step 1
   is an aggregate: ``r_1 = countIf(step 1) > 0``, ``t_1 = minIf(t, step 1)``. For each later step k it
   collects the millisecond timestamps of the session's events matching step k: ``e_k``. Repeated events and
   unmerged copies only add equal or later values; they change no earliest match.
3. The chain, one link per step, each built on the previous inside that same row::

       f_k = arrayFilter(x -> x > t_{k-1} [AND x <= t_1 + window_ms], e_k)
       r_k = r_{k-1} AND notEmpty(f_k)                t_k = arrayMin(f_k)
       level = r_1 + ... + r_n                         (the last step the session reached)

   So the query grows with the number of steps (a few columns per step), never with the number of sessions,
   and the events are read once whatever the number of steps (a chain of per-step CTEs would be re-inlined by
   ClickHouse, step n recomputing steps 1..n-1). Measured alternatives, slower on 10 M rows: sorted arrays with
   ``arrayFirstIndex`` (sorting costs more than a minimum), one sorted array of ``(t, step mask)`` folded with
   ``arrayFold``.
4. The aggregation: over the chain for counts and medians (:meth:`FunnelCompiler.counts_query`), or over
   ``levels`` = ``entered LEFT JOIN`` the chain, one row per entered session (level 0 where nothing matched),
   for counts, medians and id lists together in the same query (:meth:`FunnelCompiler.all_ids_query`,
   :meth:`FunnelCompiler.page_ids_query`, :meth:`FunnelCompiler.step_sessions_query`). Ids are ordered by their
   text, the order ``sorted(ids, key=str)`` gives in Python. A step listing also carries each session's moments,
   ``arraySlice([t_1, ..., t_n], 1, level)``: when it reached each step it reached.

Safety: every value (kinds, labels, app names, dates, durations, the error flag, the window, page bounds) is an
``exp.Placeholder`` bound in :class:`QueryParameters`, one fresh name per use and no de-duplication, so the text
depends on the shape only: the number of steps (their kinds are bound too), the kinds of filters and which
bounds they have, the window's presence, the kind of id listing. Identifiers are the schema's constants and a
database name checked by :func:`clickhouse.sql.check_database_name`. The filters' conditions come from the one
session filter builder (:func:`clickhouse.session_filters.condition`), the same the session lists use.

``windowFunnel`` (:meth:`FunnelCompiler.window_funnel_levels`) is ClickHouse's own funnel function, kept for
comparison and benchmarks. With ``'strict_increase'``, no window, and no two events matching different steps at
the same millisecond of a session, it reaches the same level as Bard for every session (tested): the greedy
earliest match is also the deepest chain. It differs (tested, ``test_window_funnel_differs_where_documented``):

- with a window: ``windowFunnel`` tries every step-1 event as an anchor and keeps the deepest chain; Bard
  anchors at the earliest step-1 event only (step 1 is reached at the earliest matching event);
- at equal milliseconds: ``windowFunnel`` restarts its chain at every later step-1 event, and among events of
  one millisecond the order is arbitrary, so a step-1 event at the same moment as a step-2 event can hide it;
  one event that matches two consecutive steps (the same label twice) is seen as both, and a later repeat
  restarts step 1, so ``A, A`` over ``A@5, A@6`` gives level 1 where Bard gives 2;
- it needs UInt timestamps (``DateTime64`` is rejected) and cannot tell when a step was reached, so it gives no
  medians and no per-step ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from sqlglot import exp

from clickhouse import session_filters
from clickhouse.sql import (
    InvalidDatabaseName,
    QueryParameters,
    and_,
    check_database_name,
    table,
)
from clickhouse.sql import call as _call
from clickhouse.sql import column as _col
from clickhouse.sql import lambda_ as _lambda
from clickhouse.sql import number as _int
from funnels.definition import FunnelDefinition, SessionFilter, validate, validate_filters
from funnels.errors import InvalidFunnel

MAX_PAGE = 10_000
"""The most ids one page may ask for."""

Outcome = Literal["completed", "dropped"]


class CompiledQuery(msgspec.Struct, frozen=True):
    """ClickHouse SQL text (depends on the funnel's shape only) and the values bound to its placeholders."""

    sql: str
    parameters: dict[str, Any]


class FunnelCompiler:
    """Compiles one validated funnel (plus extra filters) over one database into :class:`CompiledQuery` values.

    Each ``*_query`` method starts a fresh :class:`QueryParameters`, so a compiler can be asked for several
    queries; the trees are built new each time, never shared.
    """

    def __init__(
        self, definition: FunnelDefinition, database: str, extra_filters: Sequence[SessionFilter] = ()
    ) -> None:
        validate(definition)
        validate_filters(extra_filters, "extra_filters")
        try:
            check_database_name(database)
        except InvalidDatabaseName as error:
            raise InvalidFunnel("database", str(error)) from None
        self.definition = definition
        self.database = database
        self.filters: tuple[SessionFilter, ...] = (*definition.filters, *extra_filters)
        self.params = QueryParameters()

    # --- the edge -----------------------------------------------------------------------------------------------

    def render(self, tree: exp.Expr) -> CompiledQuery:
        """The one place a tree becomes text."""
        return CompiledQuery(sql=tree.sql(dialect="clickhouse"), parameters=dict(self.params.values))

    # --- queries ------------------------------------------------------------------------------------------------

    def counts_query(self) -> CompiledQuery:
        """One row: entered, then completed for steps 1..n, then the median ms from the previous step for 2..n
        (``nan`` when no session completed that step)."""
        self.params = QueryParameters()
        n = len(self.definition.steps)
        entered = self.entered_sessions()
        chain = self.session_chain(entered)
        entered_count = exp.Subquery(this=exp.select(exp.Count(this=exp.Star())).from_("entered", copy=False))
        columns = self._summary(entered_count, [_col(f"r{k}") for k in range(1, n + 1)])
        tree = (
            exp.select(*columns)
            .from_(chain.subquery("chain", copy=False), copy=False)
            .with_("entered", as_=entered, copy=False)
        )
        return self.render(tree)

    def all_ids_query(self) -> CompiledQuery:
        """One row: the columns of :meth:`counts_query`, then for each step every completed id and every dropped
        id (UUID arrays ordered by text). One query, so counts and ids always agree."""
        self.params = QueryParameters()
        columns = self._level_summary()
        for k in range(1, len(self.definition.steps) + 1):
            for outcome in ("completed", "dropped"):
                ids = exp.CombinedAggFunc(
                    this="groupArrayIf", expressions=[_col("session_id"), self._outcome_condition(k, outcome)]
                )
                by_text = _lambda(_call("toString", exp.to_identifier("x")), "x")
                columns.append(_call("arraySort", by_text, ids))
        tree = exp.select(*columns).from_("levels", copy=False)
        return self.render(self._with_levels(tree))

    def page_ids_query(self, limit: int, offset: int, after: uuid.UUID | None) -> CompiledQuery:
        """One row: the columns of :meth:`counts_query`, then for each step the page of completed ids and the page
        of dropped ids (UUID arrays ordered by text). Each list keeps only its first offset + limit ids
        (``groupArraySorted``), never all of them."""
        self.params = QueryParameters()
        _check_page(limit, offset, after)
        limit_p = self.params.bind(limit, "UInt32")
        # A cursor replaces the offset: the page starts after the cursor, not at a position.
        after_p = self.params.bind(str(after), "String") if after is not None else None
        if after_p is None:
            offset_p = self.params.bind(offset, "UInt32")
            kept: exp.Expr = exp.Paren(this=exp.Add(this=offset_p, expression=limit_p.copy()))
            start: exp.Expr = exp.Add(this=offset_p.copy(), expression=_int(1))
        else:
            kept, start = limit_p.copy(), _int(1)
        columns = self._level_summary()
        for k in range(1, len(self.definition.steps) + 1):
            for outcome in ("completed", "dropped"):
                condition = self._outcome_condition(k, outcome)
                if after_p is not None:
                    condition = and_(condition, exp.GT(this=_col("sid"), expression=after_p.copy()))
                smallest = exp.CombinedParameterizedAgg(
                    this="groupArraySortedIf",
                    expressions=[kept.copy()],
                    params=[exp.Tuple(expressions=[_col("sid"), _col("session_id")]), condition],
                )
                page = _call("arraySlice", smallest, start.copy(), limit_p.copy())
                second = _lambda(_call("tupleElement", exp.to_identifier("p"), _int(2)), "p")
                columns.append(_call("arrayMap", second, page))
        tree = exp.select(*columns).from_("levels", copy=False)
        return self.render(self._with_levels(tree))

    def step_sessions_query(
        self, step_number: int, outcome: Outcome, limit: int, offset: int, after: uuid.UUID | None
    ) -> CompiledQuery:
        """Rows ``(session_id, level, reached_at)``: one page of the sessions that completed or dropped at
        ``step_number`` (1-based), ordered by text; ``level`` is the last step the session reached (0..n) and
        ``reached_at`` the moments (ms) it reached steps 1..level."""
        self.params = QueryParameters()
        n = len(self.definition.steps)
        if isinstance(step_number, bool) or not isinstance(step_number, int) or not 1 <= step_number <= n:
            raise InvalidFunnel("step", f"must be a step number from 1 to {n}")
        if outcome not in ("completed", "dropped"):
            raise InvalidFunnel("outcome", "must be 'completed' or 'dropped'")
        _check_page(limit, offset, after)
        step_p = self.params.bind(step_number, "UInt8")
        if outcome == "completed":
            condition: exp.Expr = exp.GTE(this=_col("level"), expression=step_p)
        else:
            condition = exp.EQ(this=_col("level"), expression=exp.Sub(this=step_p, expression=_int(1)))
        if after is not None:
            condition = and_(condition, exp.GT(this=_col("sid"), expression=self.params.bind(str(after), "String")))
        tree = (
            exp.select(_col("session_id"), _col("level"), _col("reached_at"))
            .from_("levels", copy=False)
            .where(condition, copy=False)
            .order_by("sid", copy=False)
        )
        tree = tree.limit(self.params.bind(limit, "UInt32"), copy=False)
        if after is None:
            tree = tree.offset(self.params.bind(offset, "UInt32"), copy=False)
        return self.render(self._with_levels(tree, moments=True))

    def window_funnel_levels(self) -> CompiledQuery:
        """Rows ``(level, sessions)`` from ClickHouse's ``windowFunnel(window, 'strict_increase')`` over the same
        entered sessions; sessions without any matching event are counted at level 0. For comparison only."""
        self.params = QueryParameters()
        window_ms = (self.definition.window_seconds or 0) * 1000 or 2**62
        entered = self.entered_sessions()
        steps = self._step_conditions()
        funnel = exp.CombinedParameterizedAgg(
            this="windowFunnel",
            expressions=[self.params.bind(window_ms, "UInt64"), exp.Literal.string("strict_increase")],
            params=[_call("toUInt64", _call("toUnixTimestamp64Milli", _col("ts"))), *steps],
        )
        per_session = (
            exp.select(_col("session_id"), exp.alias_(funnel, "level"))
            .from_(self._table("conversion_events"), copy=False)
            .where(and_(exp.or_(*(s.copy() for s in steps), copy=False), self._in_entered()), copy=False)
            .group_by("session_id", copy=False)
        )
        joined = (
            exp.select(_col("level"))
            .from_("entered", copy=False)
            .join(per_session.subquery("funnel", copy=False), using=["session_id"], join_type="left", copy=False)
        )
        tree = (
            exp.select(_col("level"), exp.Count(this=exp.Star()))
            .from_(joined.subquery("joined", copy=False), copy=False)
            .group_by("level", copy=False)
            .order_by("level", copy=False)
            .with_("entered", as_=entered, copy=False)
        )
        return self.render(tree)

    # --- building blocks --------------------------------------------------------------------------------------

    def _table(self, name: Literal["sessions", "conversion_events"]) -> exp.Table:
        return table(name, self.database)

    def entered_sessions(self) -> exp.Select:
        """``SELECT session_id FROM sessions FINAL WHERE <filters>``."""
        select = exp.select(_col("session_id")).from_(exp.Final(this=self._table("sessions")), copy=False)
        condition = session_filters.where(session_filters.conditions(self.filters, self.params))
        return select.where(condition, copy=False) if condition is not None else select

    def _step_conditions(self) -> list[exp.Expr]:
        """``kind = {p: String} AND label = {p: String}`` for each step, binding each value once."""
        return [
            exp.Paren(
                this=and_(
                    exp.EQ(this=_col("kind"), expression=self.params.bind(step.kind, "String")),
                    exp.EQ(this=_col("label"), expression=self.params.bind(step.label, "String")),
                )
            )
            for step in self.definition.steps
        ]

    def _in_entered(self) -> exp.Expr:
        return exp.In(
            this=_col("session_id"),
            query=exp.select(_col("session_id")).from_("entered", copy=False).subquery(copy=False),
        )

    def session_chain(self, entered: exp.Select) -> exp.Select:
        """Per session with a matching event: ``session_id, r_k, t_k, e_k, f_k, level`` (see the module doc)."""
        n = len(self.definition.steps)
        steps = self._step_conditions()
        # Bound only when a later step can use it: a placeholder without a use would be a value with no place.
        window = (
            self.params.bind(self.definition.window_seconds * 1000, "Int64")
            if self.definition.window_seconds is not None and n > 1
            else None
        )
        events = (
            exp.select(
                _col("session_id"),
                exp.alias_(_call("toUnixTimestamp64Milli", _col("ts")), "t"),
                _col("kind"),
                _col("label"),
            )
            .from_(self._table("conversion_events"), copy=False)
            .where(and_(exp.or_(*(s.copy() for s in steps), copy=False), self._in_entered()), copy=False)
        )
        first_step = steps[0]
        columns: list[exp.Expr] = [
            _col("session_id"),
            exp.alias_(exp.GT(this=_call("countIf", first_step.copy()), expression=_int(0)), "r1"),
            exp.alias_(exp.CombinedAggFunc(this="minIf", expressions=[_col("t"), first_step.copy()]), "t1"),
        ]
        for k, step in enumerate(steps[1:], start=2):
            # Unsorted: the earliest match is a minimum, and sorting 5 small arrays per session costs more.
            columns.append(
                exp.alias_(exp.CombinedAggFunc(this="groupArrayIf", expressions=[_col("t"), step.copy()]), f"e{k}")
            )
        for k in range(2, n + 1):
            later: exp.Expr = exp.GT(this=exp.to_identifier("x"), expression=_col(f"t{k - 1}"))
            if window is not None:
                within = exp.LTE(
                    this=exp.to_identifier("x"), expression=exp.Add(this=_col("t1"), expression=window.copy())
                )
                later = and_(later, within)
            columns.append(exp.alias_(_call("arrayFilter", _lambda(later, "x"), _col(f"e{k}")), f"f{k}"))
            # t_{k-1} is 0 when step k-1 was not reached; r_k carries that forward, so t_k is never read alone.
            reached = and_(_col(f"r{k - 1}"), _call("notEmpty", _col(f"f{k}")))
            columns.append(exp.alias_(reached, f"r{k}"))
            columns.append(exp.alias_(_call("arrayMin", _col(f"f{k}")), f"t{k}"))
            columns.append(exp.alias_(exp.Sub(this=_col(f"t{k}"), expression=_col(f"t{k - 1}")), f"d{k}"))
        level: exp.Expr = _col("r1")
        for k in range(2, n + 1):
            level = exp.Add(this=level, expression=_col(f"r{k}"))
        columns.append(exp.alias_(level, "level"))
        return (
            exp.select(*columns)
            .from_(events.subquery("matching", copy=False), copy=False)
            .group_by("session_id", copy=False)
        )

    def _level_summary(self) -> list[exp.Expr]:
        # `levels` has one row per entered session (level 0 and d_k = 0 where nothing matched).
        n = len(self.definition.steps)
        reached: list[exp.Expr] = [exp.GTE(this=_col("level"), expression=_int(k)) for k in range(1, n + 1)]
        return self._summary(exp.Count(this=exp.Star()), reached)

    def _summary(self, entered_count: exp.Expr, reached: list[exp.Expr]) -> list[exp.Expr]:
        """entered, completed for steps 1..n, median ``d_k`` for steps 2..n; ``reached[k-1]`` is true for a row
        that reached step k."""
        n = len(self.definition.steps)
        columns: list[exp.Expr] = [entered_count]
        columns += [_call("countIf", reached[k - 1].copy()) for k in range(1, n + 1)]
        columns += [
            exp.CombinedParameterizedAgg(
                this="quantileExactInclusiveIf",
                expressions=[exp.Literal.number("0.5")],
                params=[_col(f"d{k}"), reached[k - 1].copy()],
            )
            for k in range(2, n + 1)
        ]
        return columns

    def _with_levels(self, tree: exp.Select, *, moments: bool = False) -> exp.Select:
        """Prefix ``tree`` with ``entered`` and ``levels``: every entered session, its id as text ``sid`` (the
        order of id listings) and its level; with ``moments``, also ``reached_at``: the moments ``t_1..t_level``
        (ms) it reached its steps, ``[]`` for a session without a matching event (the join's default)."""
        entered = self.entered_sessions()
        chain = self.session_chain(entered)
        n = len(self.definition.steps)
        gaps = [_col(f"d{k}") for k in range(2, n + 1)]
        carried: list[exp.Expr] = [_col("level"), *gaps]
        if moments:
            # t_k past the level means nothing (0, or a match after a step never reached): cut off at the level.
            every_moment = exp.Array(expressions=[_col(f"t{k}") for k in range(1, n + 1)])
            carried.append(exp.alias_(_call("arraySlice", every_moment, _int(1), _col("level")), "reached_at"))
        reached = exp.select(_col("session_id"), *carried).from_(chain.subquery("chain", copy=False), copy=False)
        levels = (
            exp.select(
                _col("session_id"),
                exp.alias_(_call("toString", _col("session_id")), "sid"),
                _col("level"),
                *(gap.copy() for gap in gaps),
                *([_col("reached_at")] if moments else []),
            )
            .from_("entered", copy=False)
            .join(reached.subquery("reached", copy=False), using=["session_id"], join_type="left", copy=False)
        )
        return tree.with_("entered", as_=entered, copy=False).with_("levels", as_=levels, copy=False)

    def _outcome_condition(self, step_number: int, outcome: Outcome) -> exp.Expr:
        if outcome == "completed":
            return exp.GTE(this=_col("level"), expression=_int(step_number))
        return exp.EQ(this=_col("level"), expression=_int(step_number - 1))


def _check_page(limit: int, offset: int, after: uuid.UUID | None) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidFunnel("limit", f"must be a whole number from 1 to {MAX_PAGE}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**32 - 1:
        raise InvalidFunnel("offset", "must be a whole number, 0 or more")
    if after is not None and not isinstance(after, uuid.UUID):
        raise InvalidFunnel("after", "must be a session id")
    if after is not None and offset:
        raise InvalidFunnel("offset", "give either an offset or a cursor (after), not both")


def compile_funnel(
    definition: FunnelDefinition, database: str, extra_filters: Sequence[SessionFilter] = ()
) -> CompiledQuery:
    """The counts query of a funnel (see :meth:`FunnelCompiler.counts_query`)."""
    return FunnelCompiler(definition, database, extra_filters).counts_query()


def compile_step_sessions(
    definition: FunnelDefinition,
    database: str,
    step_number: int,
    outcome: Outcome,
    extra_filters: Sequence[SessionFilter] = (),
    limit: int = 100,
    offset: int = 0,
    after: uuid.UUID | None = None,
) -> CompiledQuery:
    """One page of one step's completed or dropped sessions, with their levels and moments (see
    :meth:`FunnelCompiler.step_sessions_query`)."""
    return FunnelCompiler(definition, database, extra_filters).step_sessions_query(
        step_number, outcome, limit, offset, after
    )
