"""Benchmark: a 5-step funnel over N conversion events and S sessions in chDB, beside ClickHouse's windowFunnel.

    .venv/bin/python -m bench.funnel_engine --rows 10000000 --sessions 200000 --repeat 5

Data is generated inside ClickHouse (INSERT ... SELECT from numbers(), rand-based columns) into a fresh chDB
directory, merged (OPTIMIZE FINAL) so every method reads the same parts. Each method then runs in its own
process (chDB opens a directory in one process at a time), so its peak RSS is its own: the process's peak
(ru_maxrss) and its increase over the RSS measured just before the first query. Times are wall-clock per query
through clickhouse-connect; the median is reported. The engine compiles a funnel on its first evaluation and
reuses the compiled query after that (``funnels.compiler.compiled``), as it does when a funnel is looked at
again: the ``compile`` method measures what a first evaluation adds.

Methods:
- ``engine``: ``evaluate_funnel`` counts and medians (what ``/v1`` asks first).
- ``engine_all_ids``: ``evaluate_funnel(ids=AllIds())`` (the original ``/api`` contract: every id).
- ``engine_page``: ``evaluate_funnel(ids=IdPage(limit=100))``.
- ``window_funnel``: plain ``windowFunnel(window, 'strict_increase')`` levels over the same events, no session
  filter (the engine's own limit).
- ``window_funnel_entered``: the same restricted to the funnel's entered sessions (same filters as the engine).
- ``interleaved``: ``engine`` and ``window_funnel`` alternately in one process; the median of the per-pair
  ratios (steadier than a ratio of medians on a shared machine).
- ``ordered_window``, ``strict``, ``any``, ``exclusion``, ``breakdown``, ``steps30``: the engine's counts (every
  result: times, histograms, trend) for the same 5 steps with a 30-minute window, in strict order, in any order,
  with one exclusion (``custom label_5`` between steps 1 and 5), broken down by browser (top 10 of 15), and for 30
  steps (the five, six times).
- ``interleaved_window``: ``ordered_window`` and plain ``windowFunnel`` with the same window, alternately.
- ``window_funnel_strict``: ClickHouse's nearest to ``strict``, ``windowFunnel(..., 'strict_order')`` over every
  conversion event of the same entered sessions (levels only; events of other steps do not stop its chains).
- ``interleaved_strict``: ``strict`` and ``window_funnel_strict``, alternately.
- ``interleaved_window_entered``: ``ordered_window`` and ``windowFunnel(window)`` over the same entered sessions
  (the engine's filters), alternately.
- ``unfiltered``, ``interleaved_unfiltered_window``: the 5 steps without the session filters (every ended session
  enters), plain and with the window beside plain ``windowFunnel(window)``.
- ``compile``: building and rendering the counts query of the windowed funnel afresh, against taking it from
  the compiled queries kept (no database work; ``answer`` is the text's length).
- ``overhead``: what each shape's counts query costs before it reads a row (analysis, planning, pipeline,
  client), beside plain ``windowFunnel(window)``: the same queries over empty copies of the tables. It is paid on
  every evaluation, on one thread.
- ``parts``, ``parts_unfiltered``: where the windowed funnel's time goes (with the benchmark's filters, and
  without them): its counts query cut after each stage (the grouping into per-step arrays; the chain, depths
  and best anchor; the join with the entered sessions and the counts; the whole query), each cut built from
  the compiler's own pieces and timed beside plain ``windowFunnel(window)`` in rounds, wall-clock and CPU time
  (``getrusage``: chDB's threads are this process's), so the share of the two cores each stage keeps busy shows.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import clickhouse_connect
import clickhouse_connect.driver.client
from sqlglot import exp

from bench import machine
from clickhouse.sql import QueryParameters, and_, call, column, fragment, number, or_, render, table
from funnels import AllIds, AppNameFilter, FunnelDefinition, IdPage, StartedFilter, Step, evaluate_funnel
from funnels.compiler import COMPILED, FunnelCompiler, compiled
from funnels.evaluation import window_funnel_levels

DATABASE = "bench"
EMPTY_DATABASE = "bench_empty"
"""The benchmark's tables, empty (``overhead``)."""
STEPS = (
    Step("click", "label_0"),
    Step("click", "label_1"),
    Step("custom", "label_2"),
    Step("click", "label_3"),
    Step("click", "label_4"),
)
METHODS = ("engine", "window_funnel", "engine_all_ids", "engine_page", "window_funnel_entered", "interleaved",
           "ordered_window", "interleaved_window", "strict", "any", "exclusion", "breakdown", "steps30",
           "window_funnel_strict", "interleaved_strict", "interleaved_window_entered", "unfiltered",
           "interleaved_unfiltered_window", "compile", "parts", "parts_unfiltered", "overhead")
WINDOW_SECONDS = 1800
BESIDE_PLAIN_WINDOW_FUNNEL = {
    "interleaved_window": "ordered_window", "interleaved_unfiltered_window": "unfiltered_window",
    "parts": "ordered_window", "parts_unfiltered": "unfiltered_window",
}
"""The methods timed beside plain ``windowFunnel(window)``, and the shape of :func:`variant` each times."""


def funnel() -> FunnelDefinition:
    import datetime as dt

    return FunnelDefinition(
        name="bench",
        steps=STEPS,
        filters=(AppNameFilter(names=("shop",)), StartedFilter(start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31))),
    )


def variant(name: str) -> FunnelDefinition:
    """The benchmark's funnel in one of the shapes of issue 13."""
    from msgspec.structs import replace

    from funnels.definition import Breakdown, Exclusion

    base = funnel()
    if name == "ordered_window":
        return replace(base, window_seconds=WINDOW_SECONDS)
    if name in ("strict", "any"):
        return replace(base, order=name)
    if name == "exclusion":
        return replace(base, exclusions=(Exclusion("custom", "label_5", 1, 5),))
    if name == "breakdown":
        return replace(base, breakdown=Breakdown("browser", 10))
    if name == "steps30":
        return replace(base, steps=STEPS * 6)
    # No session filter: every ended session enters, and the events skip the entered-set test (funnels.compiler).
    if name == "unfiltered":
        return replace(base, filters=())
    if name == "unfiltered_window":
        return replace(base, filters=(), window_seconds=WINDOW_SECONDS)
    raise SystemExit(f"unknown method {name}")


def generate(directory: str, rows: int, sessions: int) -> None:
    from bard.settings import Settings
    from clickhouse.client import create_client
    from clickhouse.migrations import migrate

    settings = Settings.from_mapping(
        {"BARD_CLICKHOUSE_URL": f"chdb://{directory}", "BARD_CLICKHOUSE_DATABASE": DATABASE}
    )
    client = create_client(settings.resolved_clickhouse_url, database=DATABASE)
    migrate(client, settings, DATABASE)
    started = time.perf_counter()
    # 90% of sessions are 'shop' (they enter), one hour long, spread over 30 days; events land in their hour.
    client.command(
        """
        INSERT INTO bench.sessions
            (session_id, app_name, started_at, ended_at, event_count, error_count, segments, version, browser)
        SELECT toUUID(concat('00000000-0000-4000-8000-', leftPad(toString(number), 12, '0'))),
               if(number % 10 = 0, 'other', 'shop'),
               toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalSecond(number % 2592000),
               toDateTime64('2026-01-01 01:00:00', 3, 'UTC') + toIntervalSecond(number % 2592000),
               0, number % 7 = 0, [], 1, concat('browser_', toString(number % 15))
        FROM numbers({sessions:UInt64})
        """,
        parameters={"sessions": sessions},
    )
    # Session ids are a function of the session number, so both tables agree without a join.
    # 20 labels x 2 kinds (a quarter custom): each click step matches ~3.75% of rows, the custom one ~1.25%.
    client.command(
        """
        INSERT INTO bench.conversion_events (session_id, app_name, ts, kind, label, batch_id, seq)
        SELECT toUUID(concat('00000000-0000-4000-8000-', leftPad(toString(s), 12, '0'))), 'shop',
               toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalSecond(s % 2592000)
                   + toIntervalMillisecond(rand(1) % 3600000),
               if(rand(2) % 4 = 0, 'custom', 'click'), concat('label_', toString(rand(3) % 20)),
               generateUUIDv4(number), 0
        FROM (SELECT number, rand(0) % {sessions:UInt64} AS s FROM numbers({rows:UInt64}))
        """,
        parameters={"sessions": sessions, "rows": rows},
    )
    client.command(f"OPTIMIZE TABLE {DATABASE}.conversion_events FINAL")
    client.command(f"OPTIMIZE TABLE {DATABASE}.sessions FINAL")
    print(json.dumps({"generated_rows": rows, "sessions": sessions, "seconds": time.perf_counter() - started}))


def measure(directory: str, method: str, repeat: int) -> None:
    client = clickhouse_connect.get_client(dsn=f"chdb://{directory}")
    definition = funnel()
    plain, plain_parameters = plain_window_funnel_query()

    def run() -> object:
        if method == "engine":
            return [s.completed for s in evaluate_funnel(client, DATABASE, definition).steps]
        if method == "engine_all_ids":
            result = evaluate_funnel(client, DATABASE, definition, ids=AllIds())
            return [len(s.completed_ids) for s in result.steps]
        if method == "engine_page":
            result = evaluate_funnel(client, DATABASE, definition, ids=IdPage(limit=100))
            return [s.completed for s in result.steps]
        if method == "window_funnel":
            return sorted(client.query(plain, parameters=plain_parameters).result_rows)
        if method == "window_funnel_entered":
            return sorted(window_funnel_levels(client, DATABASE, definition).items())
        if method == "window_funnel_strict":
            return sorted(window_funnel_levels(client, DATABASE, variant("strict")).items())
        return [s.completed for s in evaluate_funnel(client, DATABASE, shaped).steps]

    if method == "interleaved":
        interleave(client, definition, plain, plain_parameters, repeat)
        return
    if method in BESIDE_PLAIN_WINDOW_FUNNEL:
        windowed, windowed_parameters = plain_window_funnel_query(WINDOW_SECONDS * 1000)
        shape = variant(BESIDE_PLAIN_WINDOW_FUNNEL[method])
        beside = measure_parts if method.startswith("parts") else interleave
        beside(client, shape, windowed, windowed_parameters, repeat)
        return
    if method == "compile":
        measure_compile(variant("ordered_window"), repeat)
        return
    if method == "overhead":
        measure_overhead(client, repeat)
        return
    if method in ("interleaved_strict", "interleaved_window_entered"):
        shape = variant("strict" if method == "interleaved_strict" else "ordered_window")
        query = FunnelCompiler(shape, DATABASE).window_funnel_levels()
        interleave(client, shape, query.sql, query.parameters, repeat)
        return
    shaped = variant(method) if method not in (*METHODS[:6], "window_funnel_strict") else definition
    client.query("SELECT 1")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    answer = None
    for _ in range(repeat):
        started = time.perf_counter()
        answer = run()
        times.append(time.perf_counter() - started)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "method": method,
                "times": times,
                "median": statistics.median(times),
                "peak_rss_mib": rss_after / 1024,
                "peak_rss_increase_mib": (rss_after - rss_before) / 1024,
                "answer": answer,
            },
            default=str,
        )
    )


def measure_compile(definition: FunnelDefinition, repeat: int) -> None:
    """Compiling afresh (what the first evaluation of a funnel pays) beside a kept compiled query."""
    fresh_times, kept_times = [], []
    length = 0
    for _ in range(max(repeat, 20)):
        started = time.perf_counter()
        length = len(FunnelCompiler(definition, DATABASE).counts_query().sql)
        fresh_times.append(time.perf_counter() - started)
        COMPILED.clear()
        compiled("counts_query", definition, DATABASE)
        started = time.perf_counter()
        compiled("counts_query", definition, DATABASE)
        kept_times.append(time.perf_counter() - started)
    print(json.dumps({"method": "compile", "times": fresh_times, "median": statistics.median(fresh_times),
                      "kept_median": statistics.median(kept_times), "peak_rss_mib": 0, "peak_rss_increase_mib": 0,
                      "answer": length}))


def measure_overhead(client: clickhouse_connect.driver.client.Client, repeat: int) -> None:
    """What each shape's counts query costs before it reads a row (ClickHouse's analysis and planning, the
    pipeline, the client), beside plain ``windowFunnel(window)``: the same queries over empty copies of the
    tables, in rounds of shuffled order; medians."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {EMPTY_DATABASE}")
    for name in ("conversion_events", "sessions"):
        client.command(f"CREATE TABLE IF NOT EXISTS {EMPTY_DATABASE}.{name} AS {DATABASE}.{name}")
    queries = {"windowFunnel(window)": plain_window_funnel_query(WINDOW_SECONDS * 1000, EMPTY_DATABASE)}
    for shape in ("ordered_window", "unfiltered_window", "strict", "any", "exclusion", "breakdown", "steps30"):
        query = FunnelCompiler(variant(shape), EMPTY_DATABASE).counts_query()
        queries[shape] = (query.sql, query.parameters)
    times, _ = shuffled_rounds(client, queries, max(repeat, 9))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({"method": "overhead", "times": times["ordered_window"], "median": medians["ordered_window"],
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "peak_rss_increase_mib": 0, "answer": "see overhead", "overhead": medians}))


def part_queries(definition: FunnelDefinition, database: str = DATABASE) -> dict[str, tuple[str, dict[str, object]]]:
    """The counts query of ``definition`` cut after each stage, in the order the query runs them: ``group``
    (sessions with a matching event, their step-1 events), ``chain`` (sessions per level), ``join`` (entered
    sessions, those that completed every step), ``whole`` (the counts query). Each cut ends in a small aggregate
    over what the stage made and reads the last step's moment, as the whole query does (a cut that leaves the
    moments unread lets ClickHouse plan the chain differently, and slower)."""
    n = len(definition.steps)

    def with_entered(compiler: FunnelCompiler, tree: exp.Select) -> tuple[str, dict[str, object]]:
        query = compiler.render(tree.with_("entered", as_=compiler.entered_sessions(), copy=False))
        return query.sql, query.parameters

    cuts: dict[str, tuple[str, dict[str, object]]] = {}
    compiler = FunnelCompiler(definition, database)
    grouping = compiler.session_chain().find(exp.Group)
    assert grouping is not None and isinstance(grouping.parent, exp.Select)
    cuts["group"] = with_entered(compiler, exp.select(fragment("count()"), fragment("sum(length(e1))")).from_(
        grouping.parent.subquery("grouped", copy=False), copy=False))
    compiler = FunnelCompiler(definition, database)
    cuts["chain"] = with_entered(compiler, exp.select(*map(fragment, ("lvl", "count()", f"sum(t{n})"))).from_(
        compiler.session_chain().subquery("chain", copy=False), copy=False).group_by("lvl", copy=False))
    compiler = FunnelCompiler(definition, database)
    counts = exp.select(*map(fragment, ("countIf(level >= 0)", f"countIf(level >= {n})", f"sum(t{n})"))).from_(
        "levels", copy=False)
    query = compiler.render(compiler._with_levels(counts))
    cuts["join"] = (query.sql, query.parameters)
    query = FunnelCompiler(definition, database).counts_query()
    cuts["whole"] = (query.sql, query.parameters)
    return cuts


def measure_parts(
    client: clickhouse_connect.driver.client.Client, definition: FunnelDefinition, plain: str,
    plain_parameters: dict[str, object], repeat: int,
) -> None:
    """Each cut of :func:`part_queries` and plain ``windowFunnel`` in rounds: medians of wall and CPU time."""
    queries = {"windowFunnel": (plain, plain_parameters), **part_queries(definition)}
    walls, cpus = shuffled_rounds(client, queries, max(repeat, 9))
    parts = {name: {"wall": statistics.median(walls[name]), "cpu": statistics.median(cpus[name])} for name in queries}
    print(json.dumps({"method": "parts", "times": walls["whole"], "median": parts["whole"]["wall"],
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "peak_rss_increase_mib": 0, "answer": "see parts", "parts": parts}))


def shuffled_rounds(
    client: clickhouse_connect.driver.client.Client, queries: dict[str, tuple[str, dict[str, object]]], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each query once a round, in a fresh order each round (seeded: a query's place in a round biases its time,
    see :func:`interleave`): the wall-clock and CPU times (``getrusage``: chDB's threads are this process's) of
    every run, by query."""
    walls: dict[str, list[float]] = {name: [] for name in queries}
    cpus: dict[str, list[float]] = {name: [] for name in queries}

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    names = list(queries)
    for round_number in range(rounds):
        random.Random(round_number).shuffle(names)
        for name in names:
            sql, parameters = queries[name]
            cpu_started, started = cpu(), time.perf_counter()
            client.query(sql, parameters=parameters)
            walls[name].append(time.perf_counter() - started)
            cpus[name].append(cpu() - cpu_started)
    return walls, cpus


def interleave(
    client: clickhouse_connect.driver.client.Client, definition: FunnelDefinition, plain: str,
    plain_parameters: dict[str, object], repeat: int,
) -> None:
    """The engine and a ``windowFunnel`` query (``plain``: unfiltered, or over the same entered sessions) one after
    the other, ``repeat`` pairs: on a shared machine the ratio of each pair is steadier than the ratio of two
    medians taken minutes apart."""
    engine_times, window_times, ratios = [], [], []

    def engine() -> None:
        started = time.perf_counter()
        evaluate_funnel(client, DATABASE, definition)
        engine_times.append(time.perf_counter() - started)

    def window() -> None:
        started = time.perf_counter()
        client.query(plain, parameters=plain_parameters)
        window_times.append(time.perf_counter() - started)

    for round_number in range(repeat):
        # Each goes first in every other pair: the query that runs second in a pair ran 2-9 % slower in rounds of
        # a fixed order (2026-12-04), which would bias the ratio one way.
        for run in (engine, window) if round_number % 2 == 0 else (window, engine):
            run()
        ratios.append(engine_times[-1] / window_times[-1])
    print(
        json.dumps(
            {
                "method": f"interleaved {definition.order}" + (" windowed" if definition.window_seconds else ""),
                "times": engine_times,
                "median": statistics.median(engine_times),
                "window_funnel_median": statistics.median(window_times),
                "ratio_median": statistics.median(ratios),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_rss_increase_mib": 0,
                "answer": [round(r, 2) for r in ratios],
            }
        )
    )


def plain_window_funnel_query(
    window_ms: int = 4611686018427387904, database: str = DATABASE
) -> tuple[str, dict[str, object]]:
    """windowFunnel over the same events with no session filter, reading only rows of some step (as anyone
    would write it: the primary index skips the rest). Built as the engine builds its queries (clickhouse.sql)."""
    params = QueryParameters()

    def steps() -> list[exp.Expr]:
        return [exp.Paren(this=and_(exp.EQ(this=column("kind"), expression=params.bind(step.kind, "String")),
                                    exp.EQ(this=column("label"), expression=params.bind(step.label, "String"))))
                for step in STEPS]

    level = exp.CombinedParameterizedAgg(
        this="windowFunnel", expressions=[number(window_ms), exp.Literal.string("strict_increase")],
        params=[call("toUInt64", call("toUnixTimestamp64Milli", column("ts"))), *steps()])
    per_session = (exp.select(exp.alias_(level, "level")).from_(table("conversion_events", database))
                   .where(or_(*steps())).group_by("session_id"))
    tree = exp.select(column("level"), exp.Count(this=exp.Star())).from_(per_session.subquery()).group_by("level")
    return render(tree, params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--dir", help="reuse (or keep) this chDB directory instead of a temporary one")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one method in this process
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.dir, args.rows, args.sessions)
        return
    if args.measure:
        measure(args.dir, args.measure, args.repeat)
        return

    # The VM's speed drifts within a day (bench/machine.py): said before and after, beside the figures.
    print(f"machine speed before: {machine.describe(machine.measured_apart())}", flush=True)
    fresh = not args.dir or not Path(args.dir).exists()
    directory = args.dir or tempfile.mkdtemp(prefix="bard-funnel-bench-")
    me = [sys.executable, "-m", "bench.funnel_engine", "--dir", directory]
    try:
        if fresh:
            common = ["--rows", str(args.rows), "--sessions", str(args.sessions)]
            subprocess.run([*me, "--generate", *common], check=True)
        results = {}
        for method in args.methods.split(","):
            out = subprocess.run(
                [*me, "--measure", method, "--repeat", str(args.repeat)], check=True, capture_output=True, text=True
            )
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[method]
            print(
                f"{method:24} median {r['median']:.3f} s  runs {[round(t, 3) for t in r['times']]}  "
                f"peak RSS {r['peak_rss_mib']:.0f} MiB (+{r['peak_rss_increase_mib']:.0f} during queries)  "
                f"answer {r['answer']}"
            )
        if "engine" in results and "window_funnel" in results:
            ratio = results["engine"]["median"] / results["window_funnel"]["median"]
            print(f"ratio of medians, engine / plain windowFunnel: {ratio:.2f}")
        for name in ("interleaved", "interleaved_window", "interleaved_strict", "interleaved_window_entered",
                     "interleaved_unfiltered_window"):
            if name in results:
                r = results[name]
                print(
                    f"{name} pairs: engine median {r['median']:.3f} s, windowFunnel median "
                    f"{r['window_funnel_median']:.3f} s, median ratio {r['ratio_median']:.2f}"
                )
        for name in ("parts", "parts_unfiltered"):
            if name in results:
                parts = results[name]["parts"]
                plain = parts["windowFunnel"]["wall"]
                print(f"{name}: stage, wall (x plain windowFunnel(window)), CPU, cores busy")
                for stage, r in parts.items():
                    print(f"  {stage:12} {r['wall']:.3f} s ({r['wall'] / plain:.2f}x)  CPU {r['cpu']:.3f} s  "
                          f"{r['cpu'] / r['wall']:.2f}")
        if "overhead" in results:
            overhead = results["overhead"]["overhead"]
            plain = overhead["windowFunnel(window)"]
            print("overhead: each counts query over empty tables (before any row), and x plain windowFunnel(window)'s")
            for shape, median in overhead.items():
                print(f"  {shape:22} {median * 1000:.1f} ms ({median / plain:.1f}x)")
        if "compile" in results:
            r = results["compile"]
            print(f"compile: afresh median {r['median'] * 1000:.2f} ms, kept {r['kept_median'] * 1000:.3f} ms")
        print(f"machine speed after: {machine.describe(machine.measured_apart())}")
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
