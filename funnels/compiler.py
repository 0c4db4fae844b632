"""How a funnel becomes a query.

A funnel compiles to one ClickHouse query built as a sqlglot tree, rendered with ``.sql("clickhouse")`` once,
at the edge (:meth:`FunnelCompiler.render`). Its parts, in the order of the original design's chain:

1. ``entered``: the ids of ended sessions matching the filters (``sessions FINAL``: one row per session).
2. One pass over ``conversion_events``, reading only rows that match some step (the table is sorted by
   ``(kind, label, ...)``, so the primary index skips the rest) of entered sessions (tested against the entered
   set only when a session filter is given: :meth:`FunnelCompiler.session_chain`), grouped by session. Step 1
   is an aggregate: ``r_1 = countIf(step 1) > 0``, ``t_1 = minIf(t, step 1)``. For each later step k it
   collects the millisecond timestamps of the session's events matching step k: ``e_k``. Repeated events and
   unmerged copies only add equal or later values; they change no earliest match.
3. The chain, one link per step, each built on the previous inside that same row. Ordered without a window
   (the earliest step-1 event anchors the deepest chain)::

       f_k = arrayFilter(x -> x > t_{k-1}, e_k)
       r_k = r_{k-1} AND notEmpty(f_k)                t_k = arrayMin(f_k)
       level = r_1 + ... + r_n                         (the last step the session reached)

   With a window, or strict: every step-1 event anchors a chain, as arrays over the anchors ``c_1 = sort(e_1)``,
   ``c_k = arrayMap((s, p) -> <step k after p, within s's window>, c_1, c_{k-1})`` (times; for strict,
   positions in ``u``, the session's sorted distinct moments, and step k must be at position p + 1); the depth
   of each anchor's chain, the deepest (``indexOf`` the maximum: the earliest among equals), and
   ``t_k = c_k[best]``. Any order: every matching event anchors (without a window only the earliest), ``f_k``
   the earliest match of step k at or after it (within its window), and the moments the sorted matches of the
   deepest anchor. Exclusions are ``groupArrayIf`` arrays of their own, checked against the chosen chain's
   moments. So the query grows with the number of steps (a few columns per step), never with the number of
   sessions, and the events are read once whatever the mode (strict reads every conversion event of the
   entered sessions; the others only those of some step or exclusion). The links are SELECTs over SELECTs, a
   few links each (:data:`STEPS_PER_LAYER`): ClickHouse expands an alias into every use inside one SELECT.
   Measured alternatives, slower on 10 M rows: sorted arrays with ``arrayFirstIndex`` (sorting costs more than
   a minimum), one sorted array of ``(t, step mask)`` folded with ``arrayFold``.
4. The aggregation, over ``levels`` = ``entered LEFT JOIN`` the chain, one row per entered session (level 0
   where nothing matched, -1 when excluded): counts, quantiles, histograms, the trend (``countResample`` by day) and
   the breakdown (``sumMap`` by value) in one row (:meth:`FunnelCompiler.counts_query`); with id lists in the
   same query (:meth:`FunnelCompiler.all_ids_query`, :meth:`FunnelCompiler.page_ids_query`); or one page of a
   step's sessions (:meth:`FunnelCompiler.step_sessions_query`). Ids are ordered by their text, the order
   ``sorted(ids, key=str)`` gives in Python. A step listing also carries each session's moments,
   ``arraySlice([t_1, ..., t_n], 1, level)``: when it reached each step it reached.

Safety: every value (kinds, labels, app names, dates, durations, the error flag, the window, page bounds) is an
``exp.Placeholder`` bound in :class:`QueryParameters`, one fresh name per use and no de-duplication, so the text
depends on the shape only: the number of steps (their kinds are bound too), the kinds of filters and which
bounds they have, the window's presence, the order, the number of exclusions and the steps they lie between,
whether there is a breakdown and which property, the kind of id listing (a breakdown listing's value or top
values are bound). Identifiers are the schema's constants, a breakdown column from :data:`BREAKDOWN_COLUMNS`,
and a database name checked by :func:`clickhouse.sql.check_database_name`. The filters' conditions come from the one
session filter builder (:func:`clickhouse.session_filters.condition`), the same the session lists use.

``windowFunnel`` (:meth:`FunnelCompiler.window_funnel_levels`) is ClickHouse's own funnel function, kept for
comparison and benchmarks. With ``'strict_increase'`` and no two events matching different steps at the same
millisecond of a session, it reaches the same level as Bard's ordered mode for every session, with or without a
window (tested): both take the deepest chain over every step-1 event. It differs (tested,
``test_window_funnel_differs_where_documented``):

- at equal milliseconds: ``windowFunnel`` restarts its chain at every later step-1 event, and among events of
  one millisecond the order is arbitrary, so a step-1 event at the same moment as a step-2 event can hide it;
  one event that matches two consecutive steps (the same label twice) is seen as both, and a later repeat
  restarts step 1, so ``A, A`` over ``A@5, A@6`` gives level 1 where Bard gives 2;
- it needs UInt timestamps (``DateTime64`` is rejected) and cannot tell when a step was reached, so it gives no
  times and no per-step ids.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
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
    fragment,
    or_,
    table,
)
from clickhouse.sql import call as _call
from clickhouse.sql import column as _col
from clickhouse.sql import lambda_ as _lambda
from clickhouse.sql import number as _int
from funnels.definition import (
    BREAKDOWN_PROPERTIES,
    Exclusion,
    FunnelDefinition,
    SessionFilter,
    Step,
    page_prefix,
    validate,
    validate_filters,
)
from funnels.errors import InvalidFunnel
from funnels.results import HISTOGRAM_BINS

BREAKDOWN_COLUMNS = {name: name for name in BREAKDOWN_PROPERTIES}
"""The ``sessions`` column of each breakdown property: the only identifiers a definition chooses."""

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
        # copy=False: the tree is built for this rendering only (sqlglot would otherwise copy it whole first).
        return CompiledQuery(sql=tree.sql(dialect="clickhouse", copy=False), parameters=dict(self.params.values))

    # --- queries ------------------------------------------------------------------------------------------------

    def counts_query(self) -> CompiledQuery:
        """One row: the summary of :meth:`_summary` (counts, times, histograms, trend, breakdown)."""
        self.params = QueryParameters()
        return self.render(self._with_levels(self._summary()))

    def all_ids_query(self) -> CompiledQuery:
        """One row: the summary of :meth:`counts_query`, then for each step every completed id and every dropped
        id (UUID arrays ordered by text). One query, so counts and ids always agree."""
        self.params = QueryParameters()
        columns: list[exp.Expr] = []
        for k in range(1, len(self.definition.steps) + 1):
            for outcome in ("completed", "dropped"):
                ids = exp.CombinedAggFunc(
                    this="groupArrayIf", expressions=[_col("session_id"), self._outcome_condition(k, outcome)]
                )
                by_text = _lambda(_call("toString", exp.to_identifier("x")), "x")
                columns.append(_call("arraySort", by_text, ids))
        return self.render(self._with_levels(self._summary(columns)))

    def page_ids_query(self, limit: int, offset: int, after: uuid.UUID | None) -> CompiledQuery:
        """One row: the summary of :meth:`counts_query`, then for each step the page of completed ids and the page
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
        columns = []
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
        return self.render(self._with_levels(self._summary(columns)))

    def step_sessions_query(
        self, step_number: int, outcome: Outcome, limit: int, offset: int, after: uuid.UUID | None,
        breakdown_value: str | None = None, breakdown_other: Sequence[str] | None = None,
    ) -> CompiledQuery:
        """Rows ``(session_id, level, reached_at)``: one page of the sessions that completed or dropped at
        ``step_number`` (1-based), ordered by text; ``level`` is the last step the session reached (0..n) and
        ``reached_at`` the moments (ms) it reached steps 1..level. With ``breakdown_value``, only the sessions of
        that value; with ``breakdown_other`` (the top values), only those of none of them (the "other" row)."""
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
        if breakdown_value is not None or breakdown_other is not None:
            if self.definition.breakdown is None:
                raise InvalidFunnel("breakdown_value", "the funnel has no breakdown")
            if breakdown_value is not None and breakdown_other is not None:
                raise InvalidFunnel("breakdown_value", "give a value or the other values, not both")
            if breakdown_value is not None:
                condition = and_(condition, exp.EQ(this=_col("bucket"),
                                                   expression=self.params.bind(breakdown_value, "String")))
            else:
                others = self.params.bind(list(breakdown_other or ()), "Array(String)")
                condition = and_(condition, exp.Not(this=_call("has", others, _col("bucket"))))
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
        entered sessions; sessions without any matching event are counted at level 0. For comparison only. A
        strict funnel gets ``'strict_order'`` over every conversion event of the entered sessions, the nearest
        ClickHouse has (it stops a chain at an event of no step, but not at an event of another step: tested)."""
        self.params = QueryParameters()
        window_ms = (self.definition.window_seconds or 0) * 1000 or 2**62
        entered = self.entered_sessions()
        steps = self._step_conditions()
        strict = self.definition.order == "strict"
        funnel = exp.CombinedParameterizedAgg(
            this="windowFunnel",
            expressions=[self.params.bind(window_ms, "UInt64"),
                         exp.Literal.string("strict_order" if strict else "strict_increase")],
            params=[_call("toUInt64", _call("toUnixTimestamp64Milli", _col("ts"))), *steps],
        )
        matching = self._in_entered()
        if not strict:
            matching = and_(exp.or_(*(s.copy() for s in steps), copy=False), matching)
        per_session = (
            exp.select(_col("session_id"), exp.alias_(funnel, "level"))
            .from_(self._table("conversion_events"), copy=False)
            .where(matching, copy=False)
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
        """``SELECT session_id, toDate(started_at) AS day[, <breakdown property> AS bucket] FROM sessions FINAL WHERE
        <filters>``."""
        columns: list[exp.Expr] = [_col("session_id"), exp.alias_(_call("toDate", _col("started_at")), "day")]
        breakdown = self.definition.breakdown
        if breakdown is not None:
            # An identifier from the allow-list (validated), never request text.
            columns.append(exp.alias_(_col(BREAKDOWN_COLUMNS[breakdown.property]), "bucket"))
        select = exp.select(*columns).from_(exp.Final(this=self._table("sessions")), copy=False)
        condition = session_filters.where(session_filters.conditions(self.filters, self.params))
        return select.where(condition, copy=False) if condition is not None else select

    def _event_conditions(self, events: Sequence[Step | Exclusion]) -> list[exp.Expr]:
        """``kind = {p: String} AND label = {p: String}`` for each step or exclusion, binding each value once; for
        a page prefix (a label ending in ``*``), ``startsWith(label, {p: String})``: whether a page step is a
        prefix is part of the shape, like which bounds a filter has (the primary index serves both)."""
        conditions: list[exp.Expr] = []
        for event in events:
            prefix = page_prefix(event)
            kind = exp.EQ(this=_col("kind"), expression=self.params.bind(event.kind, "String"))
            if prefix is None:
                label: exp.Expr = exp.EQ(this=_col("label"), expression=self.params.bind(event.label, "String"))
            else:
                label = _call("startsWith", _col("label"), self.params.bind(prefix, "String"))
            conditions.append(exp.Paren(this=and_(kind, label)))
        return conditions

    def _step_conditions(self) -> list[exp.Expr]:
        return self._event_conditions(self.definition.steps)

    def _in_entered(self) -> exp.Expr:
        return exp.In(
            this=_col("session_id"),
            query=exp.select(_col("session_id")).from_("entered", copy=False).subquery(copy=False),
        )

    def session_chain(self) -> exp.Select:
        """Per session with a matching event: ``session_id``, ``lvl`` (its level, Int16; -1 when an exclusion takes
        it out) and ``t_1..t_n`` (the moments it reached its steps, meaningful up to its level; see the module
        doc)."""
        definition = self.definition
        n = len(definition.steps)
        steps = self._step_conditions()
        exclusions = self._event_conditions(definition.exclusions)
        window = definition.window_seconds
        # Bound only when used: a placeholder without a use would be a value with no place.
        uses_window = window is not None and (n > 1 or definition.order == "any" or bool(definition.exclusions))
        # Which events: those of some step or exclusion (strict: every conversion event, as it asks that none lies
        # between two steps), of the entered sessions. Without a session filter every ended session enters, so
        # testing each event against the set would only drop live sessions' events, which the join with entered
        # drops anyway: the test is left out (5-step funnel over 10 M rows: 0.18 s against 0.22 s, ordered +
        # window 0.22 s against 0.26 s). With a filter it stays: it keeps the aggregation and the chain to the
        # sessions that enter (a filter entering 43 % of the sessions: 0.15 s with it, 0.20 s without; BENCHMARKS.md).
        conditions: list[exp.Expr] = [] if definition.order == "strict" else [
            exp.or_(*(c.copy() for c in (*steps, *exclusions)), copy=False)]
        if self.filters:
            conditions.append(self._in_entered())
        events = (
            exp.select(
                _col("session_id"),
                exp.alias_(_call("toUnixTimestamp64Milli", _col("ts")), "t"),
                _col("kind"),
                _col("label"),
            )
            .from_(self._table("conversion_events"), copy=False)
        )
        if conditions:
            events = events.where(and_(*conditions), copy=False)
        columns: list[exp.Expr] = [_col("session_id")]
        if uses_window:
            assert window is not None
            columns.append(exp.alias_(self.params.bind(window * 1000, "Int64"), "w"))
        columns += [exp.alias_(exp.CombinedAggFunc(this="groupArrayIf", expressions=[_col("t"), c.copy()]), f"x{m}")
                    for m, c in enumerate(exclusions, start=1)]
        # Layers: each a SELECT over the one before, so that a column names a value instead of an expression that
        # every later use would copy (ClickHouse expands aliases: t_k over best over lv over c_1..c_n is cubic).
        layers: list[list[exp.Expr]]
        if definition.order == "ordered" and window is None:
            first, *links = self._earliest_chain(steps)
            layers = [columns + first, *links]
        else:
            # Unsorted: a minimum needs no sort, and sorting n small arrays per session costs more.
            columns += [exp.alias_(exp.CombinedAggFunc(this="groupArrayIf", expressions=[_col("t"), step.copy()]),
                                   f"e{k}") for k, step in enumerate(steps, start=1)]
            if definition.order == "strict":
                # Sorted, then distinct: ~30 % faster than groupUniqArray's hash set per session (4.96 s -> 3.54 s
                # for 5 steps over 10 M rows, same answer, interleaved; BENCHMARKS.md).
                columns.append(fragment("arrayDistinct(arraySort(groupArray(t))) AS u"))
            if definition.order == "any":
                layers = [columns, *self._any_order_chain(n, uses_window)]
            else:
                layers = [columns, *self._anchored_chain(n, strict=definition.order == "strict", windowed=uses_window)]
        # Each chain's last layer is its moments t_1..t_n: the last SELECT names its columns (no *) and computes
        # them itself: one SELECT fewer, and no column carried past the chain (5 steps over 10 M events: ~2 % less
        # time; BENCHMARKS.md).
        moments = layers.pop()
        excluded: list[exp.Expr] = []
        for m, exclusion in enumerate(definition.exclusions, start=1):
            i, j = exclusion.from_step, exclusion.to_step
            end = "t1 + w" if uses_window else str(2**63 - 1)
            excluded.append(fragment(
                f"level >= {i} AND arrayExists(x -> x > t{i} AND x < if(level >= {j}, t{j}, {end}), x{m})"))
        level = fragment("toInt16(level)")
        if excluded:
            level = exp.If(this=or_(*excluded), true=exp.Neg(this=_int(1)), false=level)
        tree = (
            exp.select(*layers[0])
            .from_(events.subquery("matching", copy=False), copy=False)
            .group_by("session_id", copy=False)
        )
        for number, layer in enumerate(layers[1:], start=1):
            tree = exp.select(exp.Star(), *layer).from_(tree.subquery(f"layer{number}", copy=False), copy=False)
        return exp.select(_col("session_id"), exp.alias_(level, "lvl"), *moments).from_(
            tree.subquery("chain", copy=False), copy=False)

    def _earliest_chain(self, steps: list[exp.Expr]) -> list[list[exp.Expr]]:
        """Ordered, no window: the earliest step-1 event anchors the deepest chain, so one greedy chain. The
        aggregation's columns, then a layer per later step (each reads the previous step's columns), the level, and
        the moments (already columns)."""
        n = len(steps)
        aggregation: list[exp.Expr] = [
            exp.alias_(exp.GT(this=_call("countIf", steps[0].copy()), expression=_int(0)), "r1"),
            exp.alias_(exp.CombinedAggFunc(this="minIf", expressions=[_col("t"), steps[0].copy()]), "t1"),
        ]
        for k, step in enumerate(steps[1:], start=2):
            aggregation.append(
                exp.alias_(exp.CombinedAggFunc(this="groupArrayIf", expressions=[_col("t"), step.copy()]), f"e{k}")
            )
        links: list[exp.Expr] = []
        for k in range(2, n + 1):
            # t_{k-1} is 0 when step k-1 was not reached; r_k carries that forward, so t_k is never read alone.
            links += [
                fragment(f"arrayFilter(x -> x > t{k - 1}, e{k}) AS f{k}"),
                fragment(f"r{k - 1} AND notEmpty(f{k}) AS r{k}"),
                fragment(f"arrayMin(f{k}) AS t{k}"),
            ]
        level = fragment(" + ".join(f"r{k}" for k in range(1, n + 1)) + " AS level")
        return [aggregation, *_per_layer(links, 3), [level], [_col(f"t{k}") for k in range(1, n + 1)]]

    def _anchored_chain(self, n: int, *, strict: bool, windowed: bool) -> list[list[exp.Expr]]:
        """Every step-1 event anchors a chain; ``c_k[i]`` is where the chain of anchor ``i`` reached step k (0: not
        reached). Ordered: a time, the earliest match after the previous step (within the window of the anchor).
        Strict: a position in ``u``, the session's moments with a conversion event in order; step k must be done
        at the moment right after step k-1. The deepest chain wins, the earliest anchor among equals. The layers
        after the aggregation's, the last the moments."""
        chains: list[exp.Expr] = []
        positions: list[exp.Expr] = []
        if strict:
            # Each step's events as positions in u, found once; the chain's lambdas then capture these few
            # positions, never u itself (a captured array is copied for every element the lambda runs on).
            positions.append(fragment("arraySort(arrayDistinct(e1)) AS a1"))
            positions += [fragment(f"arrayMap(x -> indexOf(u, x), e{k}) AS at{k}") for k in range(2, n + 1)]
            chains.append(fragment("arrayMap(x -> indexOf(u, x), a1) AS c1"))
            for k in range(2, n + 1):
                within = f" AND e{k}[indexOf(at{k}, p + 1)] <= s + w" if windowed else ""
                chains.append(fragment(
                    f"arrayMap((s, p) -> if(p != 0 AND has(at{k}, p + 1){within}, p + 1, 0), a1, c{k - 1}) AS c{k}"))
        else:
            chains.append(fragment("arraySort(e1) AS c1"))
            for k in range(2, n + 1):
                within = " AND x <= s + w" if windowed else ""
                chains.append(fragment(
                    f"arrayMap((s, p) -> if(p = 0, 0, arrayMin(arrayFilter(x -> x > p{within}, e{k}))), c1, c{k - 1})"
                    f" AS c{k}"))
        later = ", ".join(f"q{k}" for k in range(2, n + 1))
        depth = " + ".join(["1", *(f"(q{k} != 0)" for k in range(2, n + 1))])
        depths = fragment(f"arrayMap(({later}) -> {depth}, {', '.join(f'c{k}' for k in range(2, n + 1))}) AS lv"
                          if n > 1 else "arrayMap(s -> 1, c1) AS lv")
        moments = [fragment(f"u[c{k}[best]] AS t{k}" if strict else f"c{k}[best] AS t{k}") for k in range(1, n + 1)]
        return [*_per_layer(positions, 1), *_per_layer(chains, 1), [depths], self._best(), moments]

    @staticmethod
    def _best() -> list[exp.Expr]:
        # indexOf: the first anchor of the deepest chain (arrayFirstIndex(l -> l = arrayMax(lv), lv), no lambda).
        return [fragment("arrayMax(lv) AS level"), fragment("indexOf(lv, arrayMax(lv)) AS best")]

    def _any_order_chain(self, n: int, windowed: bool) -> list[list[exp.Expr]]:
        """Every matching event anchors (without a window, the earliest alone: it sees everything); ``f_k[i]`` is the
        earliest match of step k at or after anchor ``i`` (within its window), 0 for none. Reaching step k is
        having done k steps: the moments are the sorted matches of the deepest anchor, the earliest among equals.
        The layers after the aggregation's, the last the moments."""
        every = ", ".join(f"e{k}" for k in range(1, n + 1))
        anchors = f"arraySort(arrayConcat({every}))"
        within = " AND x <= s + w" if windowed else ""
        firsts = [fragment(f"arrayMap(s -> arrayMin(arrayFilter(x -> x >= s{within}, e{k})), a) AS f{k}")
                  for k in range(1, n + 1)]
        names = ", ".join(f"q{k}" for k in range(1, n + 1))
        done = " + ".join(f"(q{k} != 0)" for k in range(1, n + 1))
        depths = fragment(f"arrayMap(({names}) -> {done}, {', '.join(f'f{k}' for k in range(1, n + 1))}) AS lv")
        best = ", ".join(f"f{k}[best]" for k in range(1, n + 1))
        return [
            [fragment(f"{anchors if windowed else f'arraySlice({anchors}, 1, 1)'} AS a")],
            firsts,
            [depths],
            self._best(),
            [fragment(f"arraySort(arrayFilter(x -> x != 0, [{best}])) AS moments")],
            [fragment(f"moments[{k}] AS t{k}") for k in range(1, n + 1)],
        ]

    def _summary(self, extra: Sequence[exp.Expr] = ()) -> exp.Select:
        """One row over ``levels`` (one row per entered session; level -1 for an excluded one): entered, excluded,
        completed for steps 1..n; for steps 2..n the quantiles (median, p90) of the ms from the previous step and
        from step 1 and the histogram of the latter (lower bound, bin width, the count in each bin); the trend (the
        numbers of the days with a session, entered and completed every step on each); with a breakdown, per value:
        entered and completed for each step; then ``extra`` (aggregates over ``levels``). Two SELECTs: the bins are
        counted over each step's times in the outer one, so the times themselves (one per session that reached the
        step) never leave ClickHouse."""
        n = len(self.definition.steps)
        inner: list[exp.Expr] = []
        outer: list[exp.Expr] = []

        def kept(value: exp.Expr) -> None:
            name = f"v{len(inner)}"
            inner.append(exp.alias_(value, name))
            outer.append(_col(name))

        kept(fragment("countIf(level >= 0)"))
        kept(fragment("countIf(level < 0)"))
        for k in range(1, n + 1):
            kept(fragment(f"countIf(level >= {k})"))
        bins = HISTOGRAM_BINS
        for k in range(2, n + 1):
            # From the previous step and from step 1: the same gap at step 2, so asked for once.
            for gap in (f"d{k}", f"s{k}") if k > 2 else ("s2",):
                kept(exp.CombinedParameterizedAgg(
                    this="quantilesExactInclusiveIf",
                    expressions=[exp.Literal.number("0.5"), exp.Literal.number("0.9")],
                    params=[_col(gap), _col(f"ok{k}")],  # a column: sqlglot reads back no comparison here
                ))
            if k == 2:
                outer.append(outer[-1].copy())
            inner.append(fragment(f"groupArrayIf(s{k}, level >= {k}) AS h{k}"))
            # The count of every bin in one pass over the times, in the query's one serial tail. A bin per pass
            # (arrayCount over range(bins)) cost ~0.013 s of 0.17 s for 5 steps over 10 M events; sumMap's
            # (bin -> count) 2.5x what countResample's array of counts costs (BENCHMARKS.md).
            outer += [
                fragment(f"arrayMin(h{k}) AS lo{k}"),
                fragment(f"intDiv(arrayMax(h{k}) - lo{k}, {bins}) + 1 AS bw{k}"),
                fragment(f"arrayReduce('countResample(0, {bins}, 1)', arrayMap(x -> intDiv(x - lo{k}, bw{k}), h{k}))"),
            ]
        # The trend: entered and completed sessions per day, counted in an array indexed by the day's number (a
        # Date is a UInt16: 65,536 counts, 512 KiB a state). sumMap's ordered map of Fields cost ~3x as much per
        # session (BENCHMARKS.md). The outer SELECT keeps the days with a session: (positions in the array, the day's
        # number + 1; entered; completed). arrayEnumerate, not range(65536): ClickHouse folds a constant array of
        # 65,536 while it analyses the query, ~0.025 s each time.
        inner += [fragment("countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te"),
                  fragment(f"countResampleIf(0, 65536, 1)(toUInt16(day), level >= {n}) AS tc")]
        outer.append(fragment("(arrayFilter((i, e) -> e > 0, arrayEnumerate(te), te), arrayFilter(e -> e > 0, te), "
                              "arrayFilter((c, e) -> e > 0, tc, te))"))
        if self.definition.breakdown is not None:
            reached = ", ".join(f"[toUInt64(level >= {k})]" for k in range(0, n + 1))
            kept(fragment(f"sumMap([bucket], {reached})"))
        for value in extra:
            kept(value)
        summary = exp.select(*inner).from_("levels", copy=False)
        return exp.select(*outer).from_(summary.subquery("summary", copy=False), copy=False)

    def _with_levels(self, tree: exp.Select, *, moments: bool = False) -> exp.Select:
        """Prefix ``tree`` with ``entered`` and ``levels``: every entered session, its id as text ``sid`` (the
        order of id listings), its day and breakdown value, its level (-1 when excluded) and ``t_1..t_n``; with
        ``moments``, also ``reached_at``: the moments ``t_1..t_level`` (ms) it reached its steps, ``[]`` for a
        session without a matching event (the join's default)."""
        entered = self.entered_sessions()
        reached = self.session_chain()
        n = len(self.definition.steps)
        times = [_col(f"t{k}") for k in range(1, n + 1)]
        # d_k: ms from the previous step, s_k: from step 1 (meaningful up to the level, like t_k).
        gaps = [fragment(f"t{k} - t{k - 1} AS d{k}") for k in range(2, n + 1)]
        gaps += [fragment(f"t{k} - t1 AS s{k}") for k in range(2, n + 1)]
        gaps += [fragment(f"level >= {k} AS ok{k}") for k in range(2, n + 1)]
        carried: list[exp.Expr] = [exp.alias_(_col("lvl"), "level"), *(t.copy() for t in times), *gaps]
        if moments:
            # t_k past the level means nothing (0, or a match after a step never reached): cut off at the level.
            carried.append(fragment(f"arraySlice([{', '.join(f't{k}' for k in range(1, n + 1))}], 1, "
                                    "greatest(level, 0)) AS reached_at"))
        levels = (
            exp.select(
                _col("session_id"),
                exp.alias_(_call("toString", _col("session_id")), "sid"),
                _col("day"),
                *([_col("bucket")] if self.definition.breakdown is not None else []),
                *carried,
            )
            .from_("entered", copy=False)
            .join(reached.subquery("reached", copy=False), using=["session_id"], join_type="left", copy=False)
        )
        return tree.with_("entered", as_=entered, copy=False).with_("levels", as_=levels, copy=False)

    def _outcome_condition(self, step_number: int, outcome: Outcome) -> exp.Expr:
        if outcome == "completed":
            return exp.GTE(this=_col("level"), expression=_int(step_number))
        return exp.EQ(this=_col("level"), expression=_int(step_number - 1))


STEPS_PER_LAYER = 5
"""How many links of a chain one SELECT holds. ClickHouse expands the aliases of one SELECT into each use, so a
chain of k links in one SELECT is a tree of size ~k^2 (k^3 with the level over it); each SELECT over another
costs its own analysis. Measured on an empty table, a 30-step counts query: one link a layer ~1 s of analysis,
five ~0.2 s."""


def _per_layer(columns: list[exp.Expr], per_link: int) -> list[list[exp.Expr]]:
    """``columns`` (``per_link`` of them per link of a chain) cut into layers of :data:`STEPS_PER_LAYER` links."""
    size = STEPS_PER_LAYER * per_link
    return [columns[i:i + size] for i in range(0, len(columns), size)]


def _check_page(limit: int, offset: int, after: uuid.UUID | None) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidFunnel("limit", f"must be a whole number from 1 to {MAX_PAGE}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**32 - 1:
        raise InvalidFunnel("offset", "must be a whole number, 0 or more")
    if after is not None and not isinstance(after, uuid.UUID):
        raise InvalidFunnel("after", "must be a session id")
    if after is not None and offset:
        raise InvalidFunnel("offset", "give either an offset or a cursor (after), not both")


QueryKind = Literal["counts_query", "all_ids_query", "page_ids_query", "step_sessions_query", "window_funnel_levels"]

COMPILED_QUERIES_KEPT = 256
"""How many compiled queries :func:`compiled` keeps (least recently used out first): a few KB of text each."""


class _CompiledQueries:
    """The compiled queries of recent evaluations, keyed by the exact encoding of what they were compiled from.

    A funnel is evaluated again and again as it is looked at (its results, each page of a step's sessions), and
    compiling a 5-step windowed funnel takes ~5-7 ms (building and rendering the sqlglot tree), beside ~150 ms
    for its query over 10 M events (BENCHMARKS.md, ``--methods compile``). The key is the
    MessagePack of the definition, the extra filters and the arguments, which keeps types apart (``1``, ``1.0``
    and ``True``; a date and a datetime; JSON would write infinity as null), so only an input equal in type and
    value meets a compiled query; what was compiled was validated first, and an input that fails validation
    raises and is never kept."""

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self.hits = 0
        self.misses = 0
        self._queries: OrderedDict[bytes, CompiledQuery] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, kind: QueryKind, definition: FunnelDefinition, database: str,
            extra_filters: Sequence[SessionFilter], arguments: tuple[Any, ...]) -> CompiledQuery:
        filters = tuple(extra_filters)
        try:
            key = msgspec.msgpack.encode([kind, database, definition, filters, arguments])
        except (TypeError, msgspec.EncodeError):
            key = None  # something MessagePack cannot hold: compile it every time
        if key is not None:
            with self._lock:
                query = self._queries.get(key)
                if query is not None:
                    self._queries.move_to_end(key)
                    self.hits += 1
                    # A dict of its own for each caller: nothing a caller does reaches the kept query.
                    return CompiledQuery(sql=query.sql, parameters=dict(query.parameters))
        query = getattr(FunnelCompiler(definition, database, filters), kind)(*arguments)
        if key is not None:
            with self._lock:
                self.misses += 1
                self._queries[key] = CompiledQuery(sql=query.sql, parameters=dict(query.parameters))
                while len(self._queries) > self.kept:
                    self._queries.popitem(last=False)
        return query

    def clear(self) -> None:
        with self._lock:
            self._queries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._queries)


COMPILED = _CompiledQueries(COMPILED_QUERIES_KEPT)


def compiled(
    kind: QueryKind, definition: FunnelDefinition, database: str, extra_filters: Sequence[SessionFilter] = (),
    *arguments: Any,
) -> CompiledQuery:
    """``FunnelCompiler(definition, database, extra_filters).<kind>(*arguments)``, compiled once for the same
    input (:class:`_CompiledQueries`). Raises :class:`~funnels.errors.InvalidFunnel` as the compiler does."""
    return COMPILED.get(kind, definition, database, extra_filters, arguments)


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
