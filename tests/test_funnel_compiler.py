"""The compiler without a database: the text depends on the shape only, values only travel as parameters, the
size grows with the steps, identifiers come from allow-lists, and snapshots show every change to a query.

Snapshots live in ``tests/snapshots/funnels/``; after an intended change, rewrite them with
``BARD_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_funnel_compiler.py`` and review the diff."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clickhouse.session_filters import day_start_ms
from funnels import (
    AppNameFilter,
    DurationFilter,
    ErrorsFilter,
    FunnelDefinition,
    InvalidFunnel,
    StartedFilter,
    Step,
    compile_funnel,
)
from funnels.compiler import CompiledQuery, FunnelCompiler
from funnels.definition import Breakdown, Exclusion

SNAPSHOTS = Path(__file__).parent / "snapshots" / "funnels"

HOSTILE = [
    "a'b",
    "back\\slash",
    "{p0: String}",
    "x; DROP TABLE sessions; --",
    "SELECT",
    "ünï😀",
    "nul\x00",
    "x" * 10_000,
]


def definition(labels: list[str], *, apps: tuple[str, ...] = ("shop",), window: int | None = None) -> FunnelDefinition:
    return FunnelDefinition(
        name="shape",
        steps=tuple(Step(kind="click" if i % 2 == 0 else "custom", label=label) for i, label in enumerate(labels)),
        filters=(
            AppNameFilter(names=apps),
            StartedFilter(start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31)),
            DurationFilter(min_ms=1_000),
            ErrorsFilter(has_errors=True),
        ),
        window_seconds=window,
    )


def every_query(funnel: FunnelDefinition, database: str = "bard") -> list[tuple[str, dict]]:
    compiler = FunnelCompiler(funnel, database)
    queries = [
        compiler.counts_query(),
        compiler.all_ids_query(),
        compiler.page_ids_query(50, 100, None),
        compiler.page_ids_query(50, 0, uuid.UUID(int=7)),
        compiler.step_sessions_query(1, "dropped", 50, 0, None),
        compiler.window_funnel_levels(),
    ]
    return [(q.sql, q.parameters) for q in queries]


# --- snapshots ---------------------------------------------------------------------------------------------------

SNAPSHOT_SHAPES = {
    "one_step": FunnelDefinition(name="s", steps=(Step(kind="click", label="Buy"),)),
    "three_steps_filters_window": definition(["a", "b", "c"], window=600),
    "five_steps_filters": definition(["a", "b", "c", "d", "e"]),
    "strict_three_steps": FunnelDefinition(
        name="s", steps=(Step("click", "a"), Step("custom", "b"), Step("click", "c")), order="strict"),
    "strict_window": FunnelDefinition(name="s", steps=(Step("click", "a"), Step("custom", "b")), order="strict",
                                      window_seconds=60),
    "any_three_steps_window": FunnelDefinition(
        name="s", steps=(Step("click", "a"), Step("custom", "b"), Step("click", "c")), order="any", window_seconds=60),
    "exclusion_and_breakdown": FunnelDefinition(
        name="s", steps=(Step("click", "a"), Step("custom", "b"), Step("click", "c")),
        exclusions=(Exclusion(kind="custom", label="cancel", from_step=1, to_step=3),),
        breakdown=Breakdown(property="browser", limit=5)),
}


class PrettyCompiler(FunnelCompiler):
    """The same trees rendered indented, for reading. (Reparsing the text would not do: sqlglot reads a parametric
    aggregate with an alias, ``quantilesExactInclusiveIf(0.5, 0.9)(d2, ok2) AS v7``, as something else.)"""

    def render(self, tree: Any) -> CompiledQuery:
        return CompiledQuery(sql=tree.sql(dialect="clickhouse", pretty=True), parameters=dict(self.params.values))


@pytest.mark.parametrize("shape", SNAPSHOT_SHAPES)
def test_compiled_sql_snapshot(shape: str) -> None:
    """Counts, every id, and one page, each with an extra date filter given at evaluation time."""
    compiler = PrettyCompiler(SNAPSHOT_SHAPES[shape], "bard", (StartedFilter(start=dt.date(2026, 2, 1)),))
    text = "\n\n".join(
        q.sql + ";"
        for q in (
            compiler.counts_query(),
            compiler.all_ids_query(),
            compiler.step_sessions_query(1, "completed", 10, 0, None),
            *([compiler.step_sessions_query(2, "dropped", 10, 0, None, breakdown_other=["Chrome"])]
              if SNAPSHOT_SHAPES[shape].breakdown is not None else []),
        )
    )
    path = SNAPSHOTS / f"{shape}.sql"
    if os.environ.get("BARD_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    assert path.read_text() == text + "\n", f"compiled SQL changed; review and update {path}"


# --- the text depends on the shape only -------------------------------------------------------------------------

label_text = st.text(min_size=1, max_size=60) | st.sampled_from(HOSTILE)


@hypothesis_settings(max_examples=30, deadline=None)
@given(
    labels=st.lists(label_text, min_size=1, max_size=5),
    other=st.data(),
    apps=st.lists(label_text, min_size=1, max_size=4).map(tuple),
    window=st.integers(1, 86_400),
)
def test_text_never_changes_with_values(labels, other, apps, window) -> None:
    """Two funnels of the same shape compile to the same text; values appear only in the parameters."""
    others = other.draw(st.lists(label_text, min_size=len(labels), max_size=len(labels)))
    first = every_query(definition(labels, apps=apps, window=window))
    second = every_query(definition(others, apps=("shop",), window=1))
    assert [sql for sql, _ in first] == [sql for sql, _ in second]
    for sql, parameters in first:
        # Every value is bound, and every placeholder of the text has its value.
        assert set(labels) <= {v for v in parameters.values() if isinstance(v, str)}
        assert set(re.findall(r"\{(p\d+): ", sql)) == set(parameters)


def test_values_travel_as_parameters() -> None:
    funnel = definition(["Buy", "paid"], apps=("shop", "blog"), window=60)
    compiled = compile_funnel(funnel, "bard")
    values = list(compiled.parameters.values())
    assert ["shop", "blog"] in values
    # The started filter's days travel as their bounds: the first millisecond of the first day and of the day after
    # the last.
    first_ms, after_last_ms = day_start_ms(dt.date(2026, 1, 1)), day_start_ms(dt.date(2026, 2, 1))
    assert {"click", "Buy", "custom", "paid", first_ms, after_last_ms, 1_000, True, 60_000} <= {
        v for v in values if not isinstance(v, list)
    }
    for name in compiled.parameters:
        assert "{" + name + ":" in compiled.sql
    for value in ("Buy", "paid", "shop", "blog", "2026", "1000", "60000", str(first_ms)):
        assert value not in compiled.sql


def test_the_error_flag_is_a_value_too() -> None:
    def with_flag(flag: bool) -> str:
        return compile_funnel(
            FunnelDefinition(name="e", steps=(Step("click", "x"),), filters=(ErrorsFilter(flag),)), "b"
        ).sql

    assert with_flag(True) == with_flag(False)


def test_repeated_values_do_not_change_the_text() -> None:
    same = definition(["a", "a", "a"])
    different = definition(["a", "b", "c"])
    assert every_query(same) == [
        (sql, {k: ("a" if v in ("b", "c") else v) for k, v in params.items()}) for sql, params in every_query(different)
    ]


@pytest.mark.parametrize("steps", [1, 2, 5, 10, 20, 30])
def test_size_grows_with_steps_only(steps: int) -> None:
    small = compile_funnel(definition(["x"] * steps, apps=("a",)), "bard").sql
    many_apps = compile_funnel(definition(["y"] * steps, apps=tuple(f"app{i}" for i in range(100))), "bard").sql
    assert small == many_apps
    if steps > 1:
        fewer = compile_funnel(definition(["x"] * (steps - 1)), "bard").sql
        # Each step adds a bounded number of characters (its event array, link of the chain, counts, quantiles and
        # histogram): linear growth, not quadratic.
        assert 0 < len(small) - len(fewer) < 700


@pytest.mark.parametrize(
    "database", ["", "1abc", "bard; DROP TABLE x", "bard.sessions", "bård", "a" * 65, "bard`", "bard--"]
)
def test_database_name_comes_from_an_allow_list(database: str) -> None:
    with pytest.raises(InvalidFunnel) as caught:
        compile_funnel(definition(["a"]), database)
    assert caught.value.path == "database"


def test_invalid_definitions_are_refused_by_the_compiler() -> None:
    with pytest.raises(InvalidFunnel) as caught:
        compile_funnel(FunnelDefinition(name="x", steps=()), "bard")
    assert caught.value.path == "steps"
    with pytest.raises(InvalidFunnel) as caught:
        FunnelCompiler(definition(["a"]), "bard", (DurationFilter(min_ms=5, max_ms=1),))
    assert caught.value.path == "extra_filters[0]"


def test_step_kinds_are_values_too() -> None:
    clicks = FunnelDefinition(name="k", steps=(Step("click", "a"), Step("click", "b")))
    customs = FunnelDefinition(name="k", steps=(Step("custom", "a"), Step("custom", "b")))
    assert [sql for sql, _ in every_query(clicks)] == [sql for sql, _ in every_query(customs)]


def test_shape_changes_change_the_text() -> None:
    """The converse: what is shape (number of steps, kinds of filters, a window) does show in the text."""
    base = every_query(definition(["a", "b"]))
    assert every_query(definition(["a", "b", "c"]))[0][0] != base[0][0]
    assert every_query(definition(["a", "b"], window=5))[0][0] != base[0][0]
    no_filters = FunnelDefinition(name="f", steps=(Step("click", "a"), Step("custom", "b")))
    assert every_query(no_filters)[0][0] != base[0][0]


# --- order modes, exclusions, breakdowns -----------------------------------------------------------------------


def rich(labels: list[str], exclusion: str, order: str, value: str | None = None) -> FunnelDefinition:
    return FunnelDefinition(
        name="r", steps=tuple(Step("click", label) for label in labels), order=order,  # type: ignore[arg-type]
        window_seconds=30, exclusions=(Exclusion("custom", exclusion, 1, len(labels)),),
        breakdown=Breakdown("entry_path", 3))


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
@hypothesis_settings(max_examples=15, deadline=None)
@given(labels=st.lists(label_text, min_size=2, max_size=4, unique=True), exclusion=label_text,
       value=label_text, others=st.lists(label_text, max_size=3))
def test_modes_exclusions_and_breakdown_values_change_no_text(order, labels, exclusion, value, others) -> None:
    """Labels of exclusions and a breakdown listing's values are parameters like the rest; the property is an
    identifier from the allow-list."""
    distinct = [f"{label}-{i}" for i, label in enumerate(labels)]
    first = FunnelCompiler(rich(distinct, exclusion, order), "bard")
    second = FunnelCompiler(rich([f"s{i}" for i in range(len(labels))], "x", order), "bard")
    for make in (lambda c: c.counts_query(), lambda c: c.all_ids_query(),
                 lambda c: c.step_sessions_query(1, "completed", 5, 0, None, breakdown_value=value),
                 lambda c: c.step_sessions_query(2, "dropped", 5, 0, None, breakdown_other=others)):
        one, two = make(first), make(second)
        assert one.sql == two.sql  # the second funnel holds none of these values: so the text holds none either
        assert exclusion in one.parameters.values()
        assert set(re.findall(r"\{(p\d+): ", one.sql)) == set(one.parameters)


def test_modes_show_in_the_text() -> None:
    texts = {order: FunnelCompiler(rich(["a", "b"], "x", order), "bard").counts_query().sql
             for order in ("ordered", "strict", "any")}
    assert len(set(texts.values())) == 3
    assert "entry_path AS bucket" in texts["ordered"]


def test_thirty_steps_compile_in_every_mode() -> None:
    for order in ("ordered", "strict", "any"):
        compiled = FunnelCompiler(rich([f"s{i}" for i in range(30)], "x", order), "bard").counts_query()
        assert compiled.sql.count("groupArrayIf") >= 30


def test_a_page_prefix_is_shape_and_its_path_a_value() -> None:
    def page(label: str) -> str:
        return compile_funnel(FunnelDefinition(name="p", steps=(Step("page", label), Step("click", "x"))), "b").sql

    assert page("/blog/*") == page("/shop/*") != page("/blog/")
    assert "startsWith(label, {p" in page("/blog/*") and "startsWith" not in page("/blog/")
    compiled = compile_funnel(FunnelDefinition(name="p", steps=(Step("page", "/b'log/*"),)), "b")
    assert "/b'log/" in compiled.parameters.values() and "log" not in compiled.sql


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
def test_events_are_tested_against_the_entered_set_only_under_a_filter(order: str) -> None:
    """Without a session filter every ended session enters, so the events skip the per-event set test and the
    join with ``entered`` alone keeps other sessions out (the behaviour: test_funnel_evaluation); with a filter
    (the definition's or the request's) the test stays."""
    test = "session_id IN (SELECT session_id FROM entered)"
    bare = FunnelDefinition(name="f", steps=(Step("click", "a"), Step("click", "b")), order=order)
    filtered = FunnelDefinition(name="f", steps=bare.steps, order=order, filters=(AppNameFilter(names=("shop",)),))
    assert test not in FunnelCompiler(bare, "bard").counts_query().sql
    assert test in FunnelCompiler(filtered, "bard").counts_query().sql
    assert test in FunnelCompiler(bare, "bard", (StartedFilter(start=dt.date(2026, 2, 1)),)).counts_query().sql
    for query in (FunnelCompiler(bare, "bard").all_ids_query(),
                  FunnelCompiler(bare, "bard").step_sessions_query(1, "completed", 10, 0, None)):
        assert test not in query.sql and "LEFT JOIN" in query.sql


# --- compiled queries kept for the next evaluation (funnels.compiler.compiled) -----------------------------------

QUERY_KINDS: list[tuple[str, tuple[Any, ...]]] = [
    ("counts_query", ()),
    ("all_ids_query", ()),
    ("page_ids_query", (100, 0, None)),
    ("page_ids_query", (10, 0, uuid.UUID(int=7))),
    ("step_sessions_query", (2, "dropped", 50, 0, None, None, None)),
    ("window_funnel_levels", ()),
]


@pytest.fixture
def kept() -> Any:
    from funnels.compiler import COMPILED

    COMPILED.clear()
    yield COMPILED
    COMPILED.clear()


@pytest.mark.parametrize(("kind", "arguments"), QUERY_KINDS, ids=[f"{k}{len(a)}" for k, a in QUERY_KINDS])
def test_a_kept_query_is_the_query_compiled_afresh(kept: Any, kind: str, arguments: tuple[Any, ...]) -> None:
    from funnels.compiler import compiled

    shape = definition(["a", "b", "c"], window=600)
    extra = (DurationFilter(max_ms=60_000),)
    fresh = getattr(FunnelCompiler(shape, "bard", extra), kind)(*arguments)
    first = compiled(kind, shape, "bard", extra, *arguments)  # type: ignore[arg-type]
    again = compiled(kind, shape, "bard", extra, *arguments)  # type: ignore[arg-type]
    assert (kept.misses, kept.hits) == (1, 1)
    assert first == fresh and again == fresh


def test_each_caller_gets_its_own_parameters(kept: Any) -> None:
    from funnels.compiler import compiled

    shape = definition(["a", "b"])
    first = compiled("counts_query", shape, "bard")
    first.parameters["p0"] = "tampered"
    first.parameters.clear()
    assert compiled("counts_query", shape, "bard") == FunnelCompiler(shape, "bard").counts_query()


def test_other_values_are_other_entries_with_the_same_text(kept: Any) -> None:
    from funnels.compiler import compiled

    one = compiled("counts_query", definition(["a", "b"]), "bard")
    other = compiled("counts_query", definition(["a", "z"]), "bard")
    elsewhere = compiled("counts_query", definition(["a", "b"]), "other_db")
    later = compiled("counts_query", definition(["a", "b"]), "bard", (DurationFilter(min_ms=5),))
    assert (kept.misses, kept.hits, len(kept)) == (4, 0, 4)
    assert one.sql == other.sql and one.parameters != other.parameters
    assert "other_db." in elsewhere.sql and "other_db." not in one.sql
    assert later.sql != one.sql


@pytest.mark.parametrize(
    ("kind", "good", "bad", "field"),
    [
        ("page_ids_query", (1, 0, None), (True, 0, None), "limit"),
        ("page_ids_query", (5, 0, None), (5, False, None), "offset"),
        ("step_sessions_query", (1, "completed", 10, 0, None), (True, "completed", 10, 0, None), "step"),
    ],
    ids=["limit-true-after-1", "offset-false-after-0", "step-true-after-1"],
)
def test_an_argument_equal_in_value_but_not_in_type_is_still_refused(
    kept: Any, kind: str, good: tuple[Any, ...], bad: tuple[Any, ...], field: str
) -> None:
    from funnels.compiler import compiled

    shape = definition(["a", "b"])
    compiled(kind, shape, "bard", (), *good)  # type: ignore[arg-type]
    with pytest.raises(InvalidFunnel) as refused:
        compiled(kind, shape, "bard", (), *bad)  # type: ignore[arg-type]
    assert refused.value.path == field
    assert len(kept) == 1


def test_a_definition_equal_in_value_but_not_in_type_is_still_refused(kept: Any) -> None:
    from funnels.compiler import compiled

    compiled("counts_query", definition(["a", "b"], window=1), "bard")
    with pytest.raises(InvalidFunnel) as refused:
        compiled("counts_query", definition(["a", "b"], window=True), "bard")  # type: ignore[arg-type]
    assert refused.value.path == "window_seconds"
    assert len(kept) == 1


def test_the_least_recently_used_query_goes_first() -> None:
    from funnels.compiler import _CompiledQueries

    queries = _CompiledQueries(2)
    a, b, c = (definition([label, "x"]) for label in "abc")
    queries.get("counts_query", a, "bard", (), ())
    queries.get("counts_query", b, "bard", (), ())
    queries.get("counts_query", a, "bard", (), ())  # a is now the most recent
    queries.get("counts_query", c, "bard", (), ())  # b goes
    assert len(queries) == 2 and (queries.misses, queries.hits) == (3, 1)
    queries.get("counts_query", a, "bard", (), ())
    assert queries.hits == 2
    queries.get("counts_query", b, "bard", (), ())
    assert queries.misses == 4


def test_an_input_without_an_exact_encoding_is_compiled_every_time(kept: Any) -> None:
    from msgspec.structs import replace

    from funnels.compiler import compiled

    shape = replace(definition(["a", "b"]), breakdown=Breakdown("browser"))
    afresh = FunnelCompiler(shape, "bard").step_sessions_query(1, "completed", 10, 0, None, None, ["x"])
    # An iterator of the other values: the compiler takes any iterable, MessagePack none.
    got = compiled("step_sessions_query", shape, "bard", (), 1, "completed", 10, 0, None, None, iter(["x"]))
    assert got == afresh
    assert (len(kept), kept.hits, kept.misses) == (0, 0, 0)
