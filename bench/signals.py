"""Benchmark: behaviour signals (session_ender/signals.py): their cost at ingest, per 1,000 events at the move,
and what they add to the session ender's move of N sessions.

    nice -n 5 .venv/bin/python bench/signals.py --sessions 100000 --repeat 3

Data: N sessions of E events (default 100 k x 100), generated inside ClickHouse and inserted through ``ingest``,
so the materialized views fill ``events``, ``conversion_events`` and ``signal_inputs`` as ingest does. A session
is a Meta and a ~27 KB FullSnapshot, then events every ~150 ms: 50 % mouse moves, 12 % scrolls, 10 % mutations,
4 % inputs, 1 % selections, 9 % clicks on 4 x 3 spots (half of them labelled, as links and buttons are), 4 %
other mouse interactions, 1 % console errors, 1 % custom events; every tenth session has a rage burst. Batches
of ten events share a batch id.

Measured, each round alternating what is compared, medians over ``--repeat`` rounds:

1. **ingest** (``--ingest-repeat`` rounds): ``raw_insert`` of the agent API's own messages (``tests/bardrr_events``
   batches through ``parse_batch``), 10,000 events a block, into a database with migration 5's view and into one
   without it: ms per 1,000 events (wall and this process's CPU, chDB's threads included), and the difference.
2. **signals**: ``signal_rows`` then ``store_signal_rows`` for every session, in batches of the ender's size
   (``--batch-size``) in the order the ender claims them (by expiry): seconds for all N, and ms per 1,000
   events; the query, the Python pass and the store apart.
3. **events JSON** (``--json-batches`` batches only): the same query over the rrweb JSON in ``events`` instead of
   ``signal_inputs`` (what computing at the move without migration 5's table would cost), per batch and
   extrapolated to N.
4. **ender**: ``SessionEnder.expire_sessions()`` over the same N sessions in PostgreSQL, as
   ``bench/session_ender_move.py`` runs it, with and without the signals of each batch (computed after the
   claim, stored after the sessions insert; see :func:`ender_round` for how either is arranged): the seconds
   each, and their ratio per round.

A sample of sessions is checked against ``tests/signals_reference.py`` (their events read back from ``events``).
Uses a throwaway chDB directory and a throwaway PostgreSQL database on ``--postgres``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent_api.batches import parse_batch
from bard import postgres
from bard.settings import Settings
from bench.session_ender_move import FILL
from clickhouse.client import create_client
from clickhouse.consumer import INSERT_SETTINGS
from clickhouse.migrations import migrate as migrate_clickhouse
from clickhouse.schema import SIGNAL_FIELDS
from session_ender import ender as ender_module
from session_ender import signals
from session_ender.ender import MoveStep, SessionEnder
from session_ender.merge import ActiveSegment
from tests import bardrr_events as bardrr
from tests import signals_reference as reference

START_MS = 1_767_225_600_000  # 2026-01-01

GENERATE = """
INSERT INTO ingest (session_id, app_name, batch_id, seq, ts, type, event, kind, label, is_error, received_at)
WITH ids.n AS sn, ids.id AS sid, nums.number AS k, cityHash64(sn, k) AS h, h % 100 AS r,
     {start:Int64} + sn * 1000 + k * 150 + bitShiftRight(h, 20) % 100 AS t,
     sn % 10 = 0 AND k BETWEEN 50 AND 52 AS burst,
     40 + h % 30 AS node,
     multiIf(k = 0, 'meta', k = 1, 'snapshot', burst, 'click', r < 50, 'move', r < 62, 'scroll', r < 72, 'mutation',
             r < 76, 'input', r < 77, 'selection', r < 86, 'click', r < 90, 'mousedown', r < 91, 'error',
             r < 92, 'custom', 'move') AS what
SELECT sid, 'bench',
  reinterpretAsUUID(concat(reinterpretAsString(cityHash64(sid, intDiv(k, 10))),
                           reinterpretAsString(cityHash64(intDiv(k, 10), sid)))),
  k % 10, t,
  multiIf(what = 'meta', 4, what = 'snapshot', 2, what = 'error', 6, what = 'custom', 5, 3),
  multiIf(
    what = 'meta', concat('{"type":4,"data":{"href":"https://shop.example.com/p/', toString(h % 1000),
                          '","width":1440,"height":900},"timestamp":', toString(t), '}'),
    what = 'snapshot', concat('{"type":2,"data":{"node":{"type":0,"childNodes":[', arrayStringConcat(arrayMap(i ->
        concat('{"type":2,"tagName":"li","attributes":{"class":"product-card","data-sku":"SKU-',
               toString(cityHash64(sn, i) % 100000), '"},"childNodes":[{"type":3,"textContent":"Ceramic mug no. ',
               toString(cityHash64(i, sn) % 977), ' glazed stoneware","id":', toString(i * 2 + 1), '}],"id":',
               toString(i * 2), '}'), range(150)), ','),
        '],"id":0},"initialOffset":{"left":0,"top":0}},"timestamp":', toString(t), '}'),
    what = 'move', concat('{"type":3,"data":{"source":1,"positions":[', arrayStringConcat(arrayMap(i ->
        concat('{"x":', toString(bitShiftRight(h, i * 8) % 1400), ',"y":', toString(bitShiftRight(h, i * 5) % 900),
               ',"id":', toString(h % 300), ',"timeOffset":-', toString(50 * i), '}'), range(4)), ','),
        ']},"timestamp":', toString(t), '}'),
    what = 'scroll', concat('{"type":3,"data":{"source":3,"id":1,"x":0,"y":', toString(h % 5000),
                            '},"timestamp":', toString(t), '}'),
    what = 'mutation', concat('{"type":3,"data":{"source":0,"texts":[],"attributes":[{"id":', toString(h % 300),
        ',"attributes":{"class":"card is-hovered"}}],"removes":[],"adds":[', arrayStringConcat(arrayMap(i ->
        concat('{"parentId":', toString(h % 300), ',"nextId":null,"node":{"type":2,"tagName":"span",',
               '"attributes":{"class":"badge-', toString(cityHash64(h, i) % 1000), '"},"childNodes":[],"id":',
               toString(1000 + i), '}}'), range(h % 8)), ','), ']},"timestamp":', toString(t), '}'),
    what = 'input', concat('{"type":3,"data":{"source":5,"text":"', toString(h % 100000),
                           '","isChecked":false,"id":', toString(h % 300), '},"timestamp":', toString(t), '}'),
    what = 'selection', concat('{"type":3,"data":{"source":14,"ranges":[{"start":5,"startOffset":0,"end":5,',
                               '"endOffset":3}]},"timestamp":', toString(t), '}'),
    what = 'click', concat('{"type":3,"data":{"source":2,"type":2,"id":', toString(node),
        ',"x":', toString(if(burst, 500, 100 + bitShiftRight(h, 7) % 4 * 20)),
        ',"y":', toString(if(burst, 300, 40 + bitShiftRight(h, 9) % 3 * 25)), ',"pointerType":0},"timestamp":',
        toString(t), '}'),
    what = 'mousedown', concat('{"type":3,"data":{"source":2,"type":1,"id":', toString(node),
                               ',"x":100,"y":40},"timestamp":', toString(t), '}'),
    what = 'error', concat('{"type":6,"data":{"plugin":"rrweb/console@1","payload":{"level":"error","trace":',
        '["addToCart (https://shop.example.com/static/app.js:120:15)"],"payload":["\\\\"TypeError: cart is ',
        'undefined\\\\""]}},"timestamp":', toString(t), '}'),
    concat('{"type":5,"data":{"tag":"checkout-started","payload":null},"timestamp":', toString(t),
           ',"conversionData":{"eventType":"custom","customEventType":"checkout-started"}}')),
  multiIf(what = 'click' AND node < 55, 'click', what = 'custom', 'custom', ''),
  multiIf(what = 'click' AND node < 55, concat('Button ', toString(node)), what = 'custom', 'checkout-started', ''),
  what = 'error',
  {start:Int64} + sn * 1000 + k * 150
FROM bench_ids AS ids CROSS JOIN numbers({events:UInt64}) AS nums
WHERE ids.n >= {first:UInt64} AND ids.n < {first:UInt64} + {count:UInt64}
"""

SIZES = """
SELECT table, sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes) FROM system.parts
WHERE database = {db:String} AND active AND table IN ('events', 'signal_inputs', 'conversion_events')
GROUP BY table ORDER BY table
"""


def cpu_seconds() -> float:
    """CPU time of this process, chDB's threads included (PostgreSQL's backends are not)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def median_of(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- data ------------------------------------------------------------------------------------------------------


def generate(ch: Any, ids: list[uuid.UUID], events: int) -> None:
    ch.command("CREATE TABLE IF NOT EXISTS bench_ids (n UInt64, id UUID) ENGINE = MergeTree ORDER BY n")
    ch.insert("bench_ids", [[n, i] for n, i in enumerate(ids)], column_names=["n", "id"])
    for first in range(0, len(ids), 5_000):
        ch.command(GENERATE, parameters={"start": START_MS, "events": events, "first": first, "count": 5_000},
                   settings={"throw_on_max_partitions_per_insert_block": 0})
    for table in ("events", "conversion_events", "signal_inputs"):
        ch.command(f"OPTIMIZE TABLE {table} FINAL")


def agent_messages(events: int) -> list[bytes]:
    """The agent API's queue messages for ``events`` events: sessions of a first batch (Meta, a ~50 KB snapshot,
    moves, clicks, a custom event, an error) and later batches of moves, scrolls and clicks."""
    messages, t, made = [], START_MS, 0
    while made < events:
        session = str(uuid.uuid4())
        batches = [bardrr.first_batch(t)] + [bardrr.later_batch(t + 3_000 * n) for n in range(1, 10)]
        for n, batch in enumerate(batches):
            if n % 3 == 0:
                batch[4] = bardrr.link_click(t + 3_000 * n + 200, node_id=7)
            body = json.dumps(bardrr.record_body(batch, session), separators=(",", ":")).encode()
            parsed = parse_batch(body, "bench", max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)
            messages.append(parsed.ingest_rows(uuid.uuid4(), t))
            made += len(batch)
        t += 60_000
    return messages


# --- 1. ingest -------------------------------------------------------------------------------------------------


def bench_ingest(ch: Any, with_view: str, without_view: str, events: int, repeat: int) -> None:
    messages = agent_messages(events)
    blocks = [b"".join(messages[i:i + 1_000]) for i in range(0, len(messages), 1_000)]  # 10,000 events each
    total = sum(m.count(b"\n") for m in messages)
    times: dict[str, list[tuple[float, float]]] = {with_view: [], without_view: []}
    for round_ in range(repeat):
        for database in (with_view, without_view) if round_ % 2 == 0 else (without_view, with_view):
            started, cpu_started = time.perf_counter(), cpu_seconds()
            for block in blocks:
                ch.raw_insert(f"{database}.ingest", insert_block=block, fmt="JSONEachRow", settings=INSERT_SETTINGS)
            times[database].append((time.perf_counter() - started, cpu_seconds() - cpu_started))
    for what, index in (("wall", 0), ("CPU", 1)):
        per_1000 = {db: [t[index] / total * 1e6 for t in ts] for db, ts in times.items()}
        pairs = [a - b for a, b in zip(per_1000[with_view], per_1000[without_view], strict=True)]
        print(f"ingest ({what}): {total:,} events in {len(blocks)} blocks a round; ms per 1,000 events with the view "
              f"{[round(v, 2) for v in per_1000[with_view]]} (median {median_of(per_1000[with_view]):.2f}), without "
              f"{[round(v, 2) for v in per_1000[without_view]]} (median {median_of(per_1000[without_view]):.2f}); "
              f"added {[round(v, 2) for v in pairs]}, median {median_of(pairs):.2f} ms per 1,000 events "
              f"(x{median_of(per_1000[with_view]) / median_of(per_1000[without_view]):.2f})", flush=True)


# --- 2. and 3. the computation at the move ---------------------------------------------------------------------


def bench_signals(ch: Any, database: str, ids: list[uuid.UUID], batch_size: int, events: int) -> dict[str, float]:
    query = compute = store = 0.0
    rows_total = 0
    cpu_started = cpu_seconds()
    for first in range(0, len(ids), batch_size):
        batch = ids[first:first + batch_size]
        started = time.perf_counter()
        sql, parameters = signals.signals_query(database, batch)
        result = ch.query(sql, parameters=parameters, settings=signals.QUERY_SETTINGS).result_rows
        queried = time.perf_counter()
        rows: list[signals.SignalRow] = []
        for session_id, app_name, flagged in result:
            rows.extend(signals.session_signals(session_id, app_name, flagged))
        computed = time.perf_counter()
        signals.store_signal_rows(ch, database, batch, rows, moved_before=[])
        stored = time.perf_counter()
        query += queried - started
        compute += computed - queried
        store += stored - computed
        rows_total += len(rows)
    total = query + compute + store
    return {"total": total, "query": query, "python": compute, "store": store, "rows": rows_total,
            "cpu": cpu_seconds() - cpu_started, "ms_per_1000": total / (len(ids) * events / 1000) * 1000}


def events_json_query(database: str, batch: Sequence[uuid.UUID]) -> tuple[str, dict[str, Any]]:
    """The signals query over ``events`` (the rrweb JSON) instead of ``signal_inputs``; labels left out."""
    sql, parameters = signals.signals_query(database, batch)
    # Bard's own SQL and the benchmark's database name only; the ids stay bound.
    role = "CAST(signal_role AS Enum8('click' = 1, 'reaction' = 2, 'error' = 3)) AS role"
    columns = f"session_id, app_name, ts, {role}, batch_id, seq, signal_x AS x, signal_y AS y, '' AS label"
    source = f"SELECT *, {SIGNAL_FIELDS} FROM {database}.events WHERE session_id IN {{p0: Array(UUID)}}"  # noqa: S608
    inputs = f"(SELECT {columns} FROM ({source}) WHERE signal_role != '') AS inputs"  # noqa: S608
    return sql.replace(f"FROM {database}.signal_inputs", f"FROM {inputs}"), parameters


def bench_events_json(ch: Any, database: str, ids: list[uuid.UUID], batch_size: int, batches: int) -> float:
    times = []
    for first in range(0, min(len(ids), batches * batch_size), batch_size):
        sql, parameters = events_json_query(database, ids[first:first + batch_size])
        started = time.perf_counter()
        ch.query(sql, parameters=parameters, settings=signals.QUERY_SETTINGS)
        times.append(time.perf_counter() - started)
    return median_of(times)


def check_sample(ch: Any, database: str, ids: list[uuid.UUID], sample: int) -> int:
    """Sessions of the sample whose signals differ from the reference's over their events read back."""
    wrong = 0
    for session_id in ids[:: max(1, len(ids) // sample)][:sample]:
        events = ch.query("SELECT batch_id, seq, event FROM events FINAL WHERE session_id = {s:UUID}",
                          parameters={"s": str(session_id)}).result_rows
        labels = dict(((b, s), label) for b, s, label in ch.query(
            "SELECT batch_id, seq, label FROM conversion_events FINAL WHERE session_id = {s:UUID} AND kind = 'click'",
            parameters={"s": str(session_id)}).result_rows)
        recorded = [reference.RecordedEvent(b, s, json.loads(e), labels.get((b, s), "")) for b, s, e in events]
        expected = sorted(reference.signals(recorded))
        rows, _ = signals.signal_rows(ch, database, [session_id])
        got = sorted(reference.Signal(r.kind, r.ts, r.batch_id, r.seq, r.label) for r in rows)
        wrong += got != expected
    return wrong


# --- 4. the ender's move ---------------------------------------------------------------------------------------


def _no_signals(client: Any, database: Any, session_ids: Any) -> tuple[list[signals.SignalRow], dict[Any, Any]]:
    return [], {session_id: signals.SignalCounts() for session_id in session_ids}


def _store_nothing(*args: Any, **kwargs: Any) -> signals.StoredSignals:
    return signals.StoredSignals(0, 0)


async def ender_round(settings: Settings, pool: asyncpg.Pool, ch: Any, ids: list[uuid.UUID],
                      with_signals: bool) -> tuple[float, float]:
    """One timed ``expire_sessions()`` over ``ids``. If the ender computes signals itself (its move calls
    ``signal_rows`` and ``store_signal_rows``), the run without them replaces those two with no-ops; if it does
    not, the run with them adds them through the move's step hook (after the claim; stored after the insert)."""
    database = settings.resolved_clickhouse_database
    ch.command("TRUNCATE TABLE sessions")
    ch.command("DELETE FROM conversion_events WHERE kind IN ('rage_click', 'dead_click', 'error_click')")
    await pool.execute("TRUNCATE active_sessions CASCADE")
    for first in range(0, len(ids), 10_000):
        await pool.execute(FILL, ids[first:first + 10_000])
    await pool.execute("VACUUM ANALYZE active_sessions")
    computed: dict[str, list[signals.SignalRow]] = {}

    async def with_the_signals(step: MoveStep, segments: Sequence[ActiveSegment]) -> None:
        batch = [s.session_id for s in segments]
        if step is MoveStep.READ:
            computed["rows"], _ = await asyncio.to_thread(signals.signal_rows, ch, database, batch)
        elif step is MoveStep.WRITTEN:
            await asyncio.to_thread(signals.store_signal_rows, ch, database, batch, computed.pop("rows"),
                                    moved_before=[])

    integrated = hasattr(ender_module, "signal_rows")
    hook = with_the_signals if with_signals and not integrated else None
    saved = {name: getattr(ender_module, name, None) for name in ("signal_rows", "store_signal_rows")}
    if integrated and not with_signals:
        setattr(ender_module, "signal_rows", _no_signals)  # noqa: B010 - a name the module may not have
        setattr(ender_module, "store_signal_rows", _store_nothing)  # noqa: B010
    try:
        ender = SessionEnder.from_settings(settings, pool, ch, on_step=hook)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        result = await ender.expire_sessions()
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    finally:
        if integrated:
            for name, function in saved.items():
                setattr(ender_module, name, function)
    if result.ended != len(ids):
        raise SystemExit(f"wrong result: {result.ended} of {len(ids)} ended")
    stored = ch.query("SELECT count() FROM conversion_events WHERE kind IN ('rage_click', 'dead_click', "
                      "'error_click')").result_rows[0][0]
    if (stored > 0) != with_signals:
        raise SystemExit(f"{stored} signal rows after a move {'with' if with_signals else 'without'} signals")
    return seconds, cpu


async def bench_ender(settings: Settings, ch: Any, ids: list[uuid.UUID], repeat: int, pg_server: str) -> None:
    db = f"bard_bench_{uuid.uuid4().hex[:10]}"
    pg_url = f"{pg_server}/{db}"
    await postgres.ensure_database(pg_url)
    pool = await postgres.create_pool(pg_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await postgres.migrate(conn)
        plain: list[float] = []
        with_signals: list[float] = []
        ratios: list[float] = []
        cpus: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(repeat):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            took = {flag: await ender_round(settings, pool, ch, ids, flag) for flag in order}
            plain.append(took[False][0])
            with_signals.append(took[True][0])
            ratios.append(took[True][0] / took[False][0])
            for flag in (False, True):
                cpus[flag].append(took[flag][1])
            print(f"ender round {round_ + 1}: move {took[False][0]:.2f} s ({took[False][1]:.2f} s CPU), with signals "
                  f"{took[True][0]:.2f} s ({took[True][1]:.2f} s CPU): +{took[True][0] - took[False][0]:.2f} s, "
                  f"x{ratios[-1]:.2f}", flush=True)
        added = [b - a for a, b in zip(plain, with_signals, strict=True)]
        print(f"ender: {len(ids):,} sessions, batch size {settings.ender_batch_size}; move median "
              f"{median_of(plain):.2f} s ({median_of(cpus[False]):.2f} s CPU), with signals "
              f"{median_of(with_signals):.2f} s ({median_of(cpus[True]):.2f} s CPU); added median "
              f"{median_of(added):.2f} s, ratio median x{median_of(ratios):.2f}", flush=True)
    finally:
        await pool.close()
        await postgres.drop_database(pg_url)


# --- main ------------------------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100, help="events per session")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=Settings().ender_batch_size)
    parser.add_argument("--ingest-events", type=int, default=100_000)
    parser.add_argument("--ingest-repeat", type=int, default=6, help="rounds of the ingest comparison (noisy)")
    parser.add_argument("--json-batches", type=int, default=3, help="batches timed over the rrweb JSON (slow)")
    parser.add_argument("--sample", type=int, default=50, help="sessions checked against the reference")
    parser.add_argument("--skip", nargs="*", default=[], choices=["ingest", "signals", "json", "ender"])
    parser.add_argument("--postgres", default="postgresql://localhost:5432")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bard-bench-signals-") as tmp:
        settings = Settings.from_mapping({
            "BARD_DATA_DIR": tmp, "BARD_CLICKHOUSE_URL": f"chdb://{tmp}/ch",
            "BARD_ENDER_BATCH_SIZE": str(args.batch_size),
        })
        database = settings.resolved_clickhouse_database
        ch = create_client(settings.resolved_clickhouse_url, database=database)
        migrate_clickhouse(ch, settings, database)

        if "ingest" not in args.skip:
            for name in ("ingest_with", "ingest_without"):
                migrate_clickhouse(ch, settings, name)
            ch.command("DROP VIEW ingest_without.signal_inputs_mv")
            bench_ingest(ch, "ingest_with", "ingest_without", args.ingest_events, args.ingest_repeat)
            for name in ("ingest_with", "ingest_without"):
                ch.command(f"DROP DATABASE {name} SYNC")

        ids = [uuid.uuid4() for _ in range(args.sessions)]
        started = time.perf_counter()
        generate(ch, ids, args.events)
        print(f"generated {args.sessions:,} sessions x {args.events} events in {time.perf_counter() - started:.0f} s "
              f"(through ingest, merged)", flush=True)
        for table, rows, compressed, raw in ch.query(SIZES, parameters={"db": database}).result_rows:
            print(f"  {table}: {rows:,} rows, {compressed / 2**20:,.0f} MiB compressed, {raw / 2**20:,.0f} MiB raw")

        if "signals" not in args.skip:
            runs = []
            for round_ in range(args.repeat):
                ch.command("DELETE FROM conversion_events WHERE kind IN ('rage_click', 'dead_click', 'error_click')")
                runs.append(bench_signals(ch, database, ids, args.batch_size, args.events))
                r = runs[-1]
                print(f"signals round {round_ + 1}: {r['total']:.2f} s ({r['cpu']:.2f} s CPU) for {args.sessions:,} "
                      f"sessions ({r['ms_per_1000']:.3f} ms per 1,000 events): query {r['query']:.2f} s, "
                      f"python {r['python']:.2f} s, store {r['store']:.2f} s; {r['rows']:,} signal rows", flush=True)
            print(f"signals: median {median_of([r['total'] for r in runs]):.2f} s "
                  f"({median_of([r['cpu'] for r in runs]):.2f} s CPU), "
                  f"{median_of([r['ms_per_1000'] for r in runs]):.3f} ms per 1,000 events", flush=True)
            wrong = check_sample(ch, database, ids, args.sample)
            print(f"reference check: {wrong} of {args.sample} sampled sessions differ", flush=True)
            if wrong:
                raise SystemExit("signals differ from the reference")

        if "json" not in args.skip and args.json_batches:
            ours, theirs = [], []
            for _ in range(args.repeat):  # side by side: one batch over signal_inputs, the same over the JSON
                batch = ids[: args.batch_size]
                started = time.perf_counter()
                sql, parameters = signals.signals_query(database, batch)
                ch.query(sql, parameters=parameters, settings=signals.QUERY_SETTINGS)
                ours.append(time.perf_counter() - started)
                theirs.append(bench_events_json(ch, database, ids, args.batch_size, args.json_batches))
            batches = -(-args.sessions // args.batch_size)
            print(f"events JSON: a batch of {args.batch_size} sessions {median_of(theirs):.2f} s (median over "
                  f"{args.json_batches} batches x {args.repeat}) against {median_of(ours):.2f} s over signal_inputs "
                  f"(x{median_of(theirs) / median_of(ours):.1f}); {batches} batches: "
                  f"~{median_of(theirs) * batches:.0f} s for {args.sessions:,} sessions", flush=True)

        if "ender" not in args.skip:
            await bench_ender(settings, ch, ids, args.repeat, args.postgres)
        ch.close()
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
