"""Behaviour signals (rage, dead and error clicks, :mod:`session_ender.signals`) on chDB, held to the plain-Python
reference of their definitions (``tests/signals_reference.py``).

Events travel the ingest path: the agent API's own ``parse_batch`` tags them and builds the queue message, which
is inserted into ``ingest`` as the consumer inserts it, so ``events``, ``conversion_events`` and ``signal_inputs``
are filled by migration 5's materialized view, and click labels are the agent API's. Each definition is tested at
its edges, under three batchings (one batch, a batch per event, batches arriving in reverse order), across a late
batch (the second move's answer, and the stale rows gone), with hostile labels and event shapes, and against the
reference on random sessions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from agent_api.batches import parse_batch
from bard.settings import Settings
from clickhouse import migrations as clickhouse_migrations
from clickhouse.client import create_client
from clickhouse.consumer import INSERT_SETTINGS
from clickhouse.migrations import migrate
from clickhouse.schema import MIGRATIONS, SIGNAL_KINDS_ENUM
from session_ender import signals
from session_ender.signals import SignalCounts, SignalRow, signal_rows, store_signal_rows
from tests import bardrr_events as bardrr
from tests import signals_reference as reference
from tests.replayer_support import BASE_MS

pytestmark = [pytest.mark.clickhouse]

APP = "shop"
Event = dict[str, Any]


# --- events, as the agent sends them ----------------------------------------------------------------------------


def click(ts: int, x: Any = 100, y: Any = 100, node: int = 7) -> Event:
    return {"type": 3, "data": {"source": 2, "type": 2, "id": node, "x": x, "y": y}, "timestamp": ts}


def button(ts: int, text: str = bardrr.BUTTON_TEXT, x: float = 812, y: float = 34) -> Event:
    """A click the agent marks: labelled with its text."""
    return {**click(ts, x, y, bardrr.BUTTON_ID), "conversionData": {"eventType": "click", "textContent": text}}


def incremental(ts: int, source: int, **data: Any) -> Event:
    return {"type": 3, "data": {"source": source, **data}, "timestamp": ts}


def mutation(ts: int) -> Event:
    return incremental(ts, 0, texts=[], attributes=[{"id": 7, "attributes": {"class": "open"}}], removes=[], adds=[])


def scroll(ts: int) -> Event:
    return bardrr.scroll(ts)


def text_input(ts: int) -> Event:
    return incremental(ts, 5, id=12, text="hello", isChecked=False)


def selection(ts: int) -> Event:
    return incremental(ts, 14, ranges=[{"start": 5, "startOffset": 0, "end": 5, "endOffset": 3}])


def mouse_move(ts: int) -> Event:
    return bardrr.mouse_move(ts)


def mouse_up(ts: int) -> Event:
    return {"type": 3, "data": {"source": 2, "type": 0, "id": 7, "x": 100, "y": 100}, "timestamp": ts}


def focus(ts: int) -> Event:
    return {"type": 3, "data": {"source": 2, "type": 5, "id": 7}, "timestamp": ts}


def resize(ts: int) -> Event:
    return incremental(ts, 4, width=800, height=600)


def meta(ts: int) -> Event:
    return bardrr.meta(ts)


def snapshot(ts: int) -> Event:
    return bardrr.full_snapshot(ts, products=1)


def console(ts: int, level: str = "error") -> Event:
    return bardrr.console_error(ts, level=level)


def custom(ts: int) -> Event:
    return bardrr.custom_event(ts)


# --- the ingest path --------------------------------------------------------------------------------------------


class Session:
    """One recorded session: its batches go into ``ingest`` as the consumer inserts them; ``recorded`` is what
    the reference reads (each event with its identity and the label the agent API gave it)."""

    def __init__(self, ch: Client, database: str) -> None:
        self.ch = ch
        self.database = database
        self.id = uuid.uuid4()
        self.recorded: list[reference.RecordedEvent] = []
        self._messages: dict[uuid.UUID, bytes] = {}

    def send(self, events: Sequence[Event], *, compact: bool = True) -> uuid.UUID:
        separators = (",", ":") if compact else (", ", ": ")  # the agent's JSON.stringify writes it compact
        body = json.dumps({"sessionId": str(self.id), "events": list(events)}, separators=separators).encode()
        batch = parse_batch(body, APP, max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)
        batch_id = uuid.uuid4()
        message = batch.ingest_rows(batch_id, BASE_MS)
        self._messages[batch_id] = message
        self._insert(message)
        for seq, (event, tag) in enumerate(zip(events, batch.tags, strict=True)):
            label = tag.label if tag.kind == "click" else ""
            self.recorded.append(reference.RecordedEvent(batch_id, seq, event, label))
        return batch_id

    def redeliver(self, batch_id: uuid.UUID) -> None:
        """The same message inserted again, as RabbitMQ may deliver it twice."""
        self._insert(self._messages[batch_id])

    def _insert(self, message: bytes) -> None:
        self.ch.raw_insert("ingest", insert_block=message, fmt="JSONEachRow", settings=INSERT_SETTINGS)

    def computed(self) -> tuple[list[SignalRow], SignalCounts]:
        rows, counts = signal_rows(self.ch, self.database, [self.id])
        return rows, counts[self.id]

    def expected(self) -> list[reference.Signal]:
        return reference.signals(self.recorded)


def as_reference(rows: Sequence[SignalRow]) -> list[reference.Signal]:
    return sorted(reference.Signal(r.kind, r.ts, r.batch_id, r.seq, r.label) for r in rows)


def assert_matches_reference(session: Session) -> tuple[list[SignalRow], SignalCounts]:
    rows, counts = session.computed()
    expected = session.expected()
    assert as_reference(rows) == sorted(expected)
    assert counts == SignalCounts(*reference.counts(expected))
    assert {r.session_id for r in rows} <= {session.id} and {r.app_name for r in rows} <= {APP}
    return rows, counts


def stored_signals(ch: Client, session_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """Signal rows as a reader sees them without FINAL (copies would show)."""
    return sorted(tuple(row) for row in ch.query(
        "SELECT toString(kind), toUnixTimestamp64Milli(ts), label, batch_id, seq FROM conversion_events "
        "WHERE session_id = {s:UUID} AND kind IN ('rage_click', 'dead_click', 'error_click')",
        parameters={"s": str(session_id)}).result_rows)


# One database for the module (each test has sessions of its own): these override conftest's per-test ones.


@pytest.fixture(scope="module")
def settings(chdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_mapping({
        "BARD_DATA_DIR": str(tmp_path_factory.mktemp("signals")), "BARD_CLICKHOUSE_URL": chdb_url,
        "BARD_CLICKHOUSE_DATABASE": f"signals_{uuid.uuid4().hex[:10]}",
    })


@pytest.fixture(scope="module")
def database(settings: Settings) -> str:
    return settings.resolved_clickhouse_database


@pytest.fixture(scope="module")
def ch(settings: Settings, database: str) -> Iterator[Client]:
    client = create_client(settings.resolved_clickhouse_url, database=database)
    migrate(client, settings, database)
    yield client
    client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    client.close()


@pytest.fixture
def new_session(ch: Client, database: str) -> Callable[[], Session]:
    return lambda: Session(ch, database)


# --- each definition at its edges -------------------------------------------------------------------------------

T = BASE_MS + 10_000

EDGE_CASES: list[tuple[str, list[Event], dict[str, int]]] = [
    # rage: 3 or more clicks within 1 s, each within 30 px of the first
    ("rage 2 clicks", [click(T), click(T + 100)], {"rage_click": 0}),
    ("rage 3 clicks", [click(T), click(T + 100), click(T + 200)], {"rage_click": 1}),
    ("rage 29 px", [click(T), click(T + 100), click(T + 200, 129, 100)], {"rage_click": 1}),
    ("rage exactly 30 px", [click(T), click(T + 100), click(T + 200, 118, 124)], {"rage_click": 1}),
    ("rage 31 px", [click(T), click(T + 100), click(T + 200, 131, 100)], {"rage_click": 0}),
    ("rage 30.5 px diagonal", [click(T), click(T + 100), click(T + 200, 121.5, 121.5)], {"rage_click": 0}),
    ("rage 999 ms", [click(T), click(T + 500), click(T + 999)], {"rage_click": 1}),
    ("rage exactly 1000 ms", [click(T), click(T + 500), click(T + 1000)], {"rage_click": 1}),
    ("rage 1001 ms", [click(T), click(T + 500), click(T + 1001)], {"rage_click": 0}),
    ("rage from the first click, not the previous",
     [click(T, 100), click(T + 100, 120), click(T + 200, 140)], {"rage_click": 0}),
    ("rage same millisecond", [click(T), click(T), click(T)], {"rage_click": 1}),
    ("rage six in a second is one", [click(T + i * 150) for i in range(6)], {"rage_click": 1}),
    ("rage long burst is one per run", [click(T + i * 300) for i in range(7)], {"rage_click": 2}),
    ("rage failed start does not hide a later run",
     [click(T), click(T + 900), click(T + 1100), click(T + 1500)], {"rage_click": 1}),
    ("rage far click in between",
     [click(T), click(T + 100, 500, 500), click(T + 200), click(T + 300)], {"rage_click": 1}),
    ("rage two spots at once",
     [click(T), click(T + 50, 500, 500), click(T + 100), click(T + 150, 500, 500), click(T + 200),
      click(T + 250, 500, 500)], {"rage_click": 2}),
    ("rage click without a position", [click(T), click(T + 100), {**click(T + 200), "data": {
        "source": 2, "type": 2, "id": 7, "x": 100}}], {"rage_click": 0}),
    ("rage float coordinates", [click(T, 100.5, 100.25), click(T + 10, 110.5, 90.25), click(T + 20, 99.0, 129.0)],
     {"rage_click": 1}),
    ("rage on a labelled button", [button(T), button(T + 100), button(T + 200)], {"rage_click": 1}),
    # dead: no mutation, scroll, input, selection or new page within 1 s
    ("dead mutation 999 ms", [click(T), mutation(T + 999)], {"dead_click": 0}),
    ("dead mutation exactly 1000 ms", [click(T), mutation(T + 1000)], {"dead_click": 0}),
    ("dead mutation 1001 ms", [click(T), mutation(T + 1001)], {"dead_click": 1}),
    ("dead mutation same millisecond", [click(T), mutation(T)], {"dead_click": 0}),
    ("dead mutation same millisecond sent before", [mutation(T), click(T)], {"dead_click": 0}),
    ("dead mutation 1 ms before", [mutation(T - 1), click(T)], {"dead_click": 1}),
    ("dead scroll saves", [click(T), scroll(T + 500)], {"dead_click": 0}),
    ("dead input saves", [click(T), text_input(T + 500)], {"dead_click": 0}),
    ("dead selection saves", [click(T), selection(T + 500)], {"dead_click": 0}),
    ("dead meta saves", [click(T), meta(T + 500)], {"dead_click": 0}),
    ("dead full snapshot saves", [click(T), snapshot(T + 500)], {"dead_click": 0}),
    ("dead mouse moves do not save", [click(T), mouse_move(T + 100), mouse_move(T + 500)], {"dead_click": 1}),
    ("dead mouse up and focus do not save", [click(T), mouse_up(T + 10), focus(T + 20)], {"dead_click": 1}),
    ("dead viewport resize does not save", [click(T), resize(T + 100)], {"dead_click": 1}),
    ("dead custom event does not save", [click(T), custom(T + 100)], {"dead_click": 1}),
    ("dead console error does not save", [click(T), console(T + 100)], {"dead_click": 1, "error_click": 1}),
    ("dead nothing after", [mutation(T - 100), click(T)], {"dead_click": 1}),
    ("dead a later click does not save", [click(T), click(T + 500, 600, 600)], {"dead_click": 2}),
    # error: a console error within 1 s
    ("error 999 ms", [click(T), mutation(T + 1), console(T + 999)], {"error_click": 1, "dead_click": 0}),
    ("error exactly 1000 ms", [click(T), console(T + 1000)], {"error_click": 1}),
    ("error 1001 ms", [click(T), console(T + 1001)], {"error_click": 0}),
    ("error same millisecond", [click(T), console(T)], {"error_click": 1}),
    ("error same millisecond sent before", [console(T), click(T)], {"error_click": 1}),
    ("error 1 ms before", [console(T - 1), click(T)], {"error_click": 0}),
    ("error a warning is not", [click(T), console(T + 100, level="warn")], {"error_click": 0}),
    ("error two clicks one error", [click(T), click(T + 400, 600, 600), console(T + 900)], {"error_click": 2}),
    ("all three at once", [button(T), button(T + 100), button(T + 200), console(T + 300)],
     {"rage_click": 1, "dead_click": 3, "error_click": 3}),
]

BATCHINGS: dict[str, Callable[[list[Event]], list[list[Event]]]] = {
    "one batch": lambda events: [events],
    "a batch per event": lambda events: [[e] for e in events],
    "batches in reverse": lambda events: [[e] for e in reversed(events)],
}


@pytest.mark.parametrize("batching", BATCHINGS)
@pytest.mark.parametrize(("events", "expected"), [(e, x) for _, e, x in EDGE_CASES],
                         ids=[name for name, _, _ in EDGE_CASES])
def test_definition_edges(new_session: Callable[[], Session], events: list[Event], expected: dict[str, int],
                          batching: str) -> None:
    session = new_session()
    for batch in BATCHINGS[batching](events):
        session.send(batch)
    rows, counts = assert_matches_reference(session)
    for kind, number in expected.items():
        assert getattr(counts, f"{kind}_count") == number, (kind, rows)


def test_each_signal_is_its_click_with_the_clicks_label(new_session: Callable[[], Session], ch: Client) -> None:
    """A signal row carries its click's time and identity, and the label of the click's conversion event: the
    agent's text for a button (whitespace collapsed), the link's text Bard named; '' where nothing names it."""
    session = new_session()
    batch_id = session.send([
        bardrr.full_snapshot(T - 10),  # has the link Cart (node 57), and the page: a reaction at T - 10
        button(T), button(T + 100), button(T + 200),  # rage, dead, error (below)
        bardrr.link_click(T + 3_000),  # dead, on the link
        click(T + 6_000, node=5),  # dead, on the body: nothing names it
        console(T + 1_000),
    ])
    rows, _ = assert_matches_reference(session)
    by_kind = {(r.kind, r.seq): (r.ts, r.label, r.batch_id) for r in rows}
    assert by_kind == {
        ("rage_click", 1): (T, bardrr.BUTTON_LABEL, batch_id),
        ("dead_click", 1): (T, bardrr.BUTTON_LABEL, batch_id),
        ("dead_click", 2): (T + 100, bardrr.BUTTON_LABEL, batch_id),
        ("dead_click", 3): (T + 200, bardrr.BUTTON_LABEL, batch_id),
        ("error_click", 1): (T, bardrr.BUTTON_LABEL, batch_id),
        ("error_click", 2): (T + 100, bardrr.BUTTON_LABEL, batch_id),
        ("error_click", 3): (T + 200, bardrr.BUTTON_LABEL, batch_id),
        ("dead_click", 4): (T + 3_000, bardrr.LINK_LABEL, batch_id),
        ("dead_click", 5): (T + 6_000, "", batch_id),
    }
    clicks = dict(((b, s), label) for b, s, label in ch.query(
        "SELECT batch_id, seq, label FROM conversion_events FINAL WHERE session_id = {s:UUID} AND kind = 'click'",
        parameters={"s": str(session.id)}).result_rows)
    for row in rows:
        assert row.label == clicks.get((row.batch_id, row.seq), "")


# --- across batches ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", [(2, 1), (1, 2)], ids=["2+1", "1+2"])
@pytest.mark.parametrize("order", ["in order", "second batch first"])
def test_rage_click_split_over_two_batches(new_session: Callable[[], Session], split: tuple[int, int],
                                           order: str) -> None:
    """The agent sends batches of 10: the three clicks of a rage click often travel in two."""
    session = new_session()
    clicks = [button(T), button(T + 250), button(T + 500)]
    mutations = [mutation(T + 50), mutation(T + 300), mutation(T + 550)]  # none of them dead
    first = [*mutations[: split[0]], *clicks[: split[0]]]
    second = [*mutations[split[0]:], *clicks[split[0]:]]
    for batch in ([first, second] if order == "in order" else [second, first]):
        session.send(batch)
    rows, counts = assert_matches_reference(session)
    assert counts == SignalCounts(rage_click_count=1)
    assert [(r.kind, r.ts, r.label) for r in rows] == [("rage_click", T, bardrr.BUTTON_LABEL)]


def test_the_reaction_in_the_next_batch_saves_the_click(new_session: Callable[[], Session]) -> None:
    session = new_session()
    session.send([mouse_move(T - 100), click(T), mouse_move(T + 200)])
    session.send([mutation(T + 800), console(T + 900)])
    _, counts = assert_matches_reference(session)
    assert counts == SignalCounts(error_click_count=1)


def test_a_redelivered_batch_counts_once(new_session: Callable[[], Session]) -> None:
    """RabbitMQ may deliver a message twice: its rows reach the tables twice, the signals count them once (two
    copies of a click plus one more would otherwise be a rage click)."""
    session = new_session()
    first = session.send([click(T), click(T + 100)])
    session.redeliver(first)
    _, counts = assert_matches_reference(session)
    assert counts == SignalCounts(dead_click_count=2)


def test_uncompact_json_is_read_the_same(new_session: Callable[[], Session]) -> None:
    """A mouse move written as rrweb writes it skips the JSON parse; written otherwise, it is parsed: same answer."""
    events = [click(T), mouse_move(T + 100), click(T + 200), mouse_move(T + 300), click(T + 400)]
    compact, spaced = new_session(), new_session()
    compact.send(events)
    spaced.send(events, compact=False)
    assert compact.computed()[1] == spaced.computed()[1] == SignalCounts(rage_click_count=1, dead_click_count=3)


# --- a late batch: the second move ------------------------------------------------------------------------------


def test_a_late_batch_recomputes_and_takes_stale_signals_away(new_session: Callable[[], Session], ch: Client,
                                                              database: str) -> None:
    """The session ends and is moved: two dead clicks on the button. A late batch arrives (the session is moved
    again): its mutation saves the first click, and its click makes a rage click with the first two. The second
    move's rows replace the first's: the saved dead click is gone, the new signals are there, nothing twice."""
    session = new_session()
    session.send([button(T), button(T + 300)])
    rows, counts = assert_matches_reference(session)
    assert counts == SignalCounts(dead_click_count=2)
    assert store_signal_rows(ch, database, [session.id], rows, moved_before=[]) == (2, 0)
    first_move = stored_signals(ch, session.id)
    assert [(kind, ts) for kind, ts, *_ in first_move] == [("dead_click", T), ("dead_click", T + 300)]

    session.send([mutation(T + 250), button(T + 600)])
    rows, counts = assert_matches_reference(session)
    assert counts == SignalCounts(rage_click_count=1, dead_click_count=2)
    stored = store_signal_rows(ch, database, [session.id], rows, moved_before=[session.id])
    assert stored == (2, 1)  # the rage click and the new dead click in; the saved dead click out
    assert stored_signals(ch, session.id) == sorted(
        (r.kind, r.ts, r.label, r.batch_id, r.seq) for r in rows)
    assert ("dead_click", T) not in {(kind, ts) for kind, ts, *_ in stored_signals(ch, session.id)}

    # A third move with nothing new (a rerun after a crash): nothing changes.
    again, _ = session.computed()
    assert store_signal_rows(ch, database, [session.id], again, moved_before=[session.id]) == (0, 0)
    assert stored_signals(ch, session.id) == sorted((r.kind, r.ts, r.label, r.batch_id, r.seq) for r in rows)


def test_a_rerun_after_a_crash_between_insert_and_delete(new_session: Callable[[], Session], ch: Client,
                                                         database: str) -> None:
    """A crash after the insert left both the new rows and the stale ones: the rerun (the session stays active,
    so it is moved again) deletes the stale ones and inserts nothing twice."""
    session = new_session()
    session.send([click(T)])
    old, _ = session.computed()
    store_signal_rows(ch, database, [session.id], old, moved_before=[])
    session.send([scroll(T + 10), click(T + 5_000, 300, 300)])
    new, _ = session.computed()
    ch.insert("conversion_events", [list(r) for r in new], column_names=signals.CONVERSION_COLUMNS)  # the crash
    assert len(stored_signals(ch, session.id)) == 2
    assert store_signal_rows(ch, database, [session.id], new, moved_before=[session.id]) == (0, 1)
    assert stored_signals(ch, session.id) == [("dead_click", T + 5_000, "", new[0].batch_id, 1)]


def test_storing_many_sessions_only_looks_at_those_moved_before(new_session: Callable[[], Session], ch: Client,
                                                                database: str) -> None:
    moved, fresh, quiet = new_session(), new_session(), new_session()
    moved.send([click(T)])
    fresh.send([click(T), scroll(T + 1)])
    quiet.send([mouse_move(T)])
    old, _ = signal_rows(ch, database, [moved.id])
    store_signal_rows(ch, database, [moved.id], old, moved_before=[])
    moved.send([scroll(T + 5)])
    fresh.send([click(T + 2_000)])
    ids = [moved.id, fresh.id, quiet.id]
    rows, counts = signal_rows(ch, database, ids)
    assert counts == {moved.id: SignalCounts(), fresh.id: SignalCounts(dead_click_count=1), quiet.id: SignalCounts()}
    assert store_signal_rows(ch, database, ids, rows, moved_before={moved.id, uuid.uuid4()}) == (1, 1)
    assert stored_signals(ch, moved.id) == []
    assert [kind for kind, *_ in stored_signals(ch, fresh.id)] == ["dead_click"]
    with pytest.raises(ValueError, match="not being stored"):
        store_signal_rows(ch, database, [quiet.id], rows)


# --- hostile input ----------------------------------------------------------------------------------------------

HOSTILE_LABELS = [
    "it's", 'say "hi"', "back\\slash", "'); DROP TABLE conversion_events; --", "{p0:String}", "{s:UUID}",
    "Käse 🧀 kaufen", "\u202eevil", "tab\there\nnewline", "x" * 300, "%s %d", "$1",
]


@pytest.mark.parametrize("text", HOSTILE_LABELS, ids=range(len(HOSTILE_LABELS)))
def test_hostile_labels_travel_as_values(new_session: Callable[[], Session], ch: Client, database: str,
                                         text: str) -> None:
    session = new_session()
    session.send([button(T, text), button(T + 100, text), button(T + 200, text), console(T + 300)])
    rows, counts = assert_matches_reference(session)
    assert counts == SignalCounts(1, 3, 3)
    label = " ".join(text.split())[:256].rstrip()
    assert {r.label for r in rows} == {label}
    store_signal_rows(ch, database, [session.id], rows)
    assert {stored[2] for stored in stored_signals(ch, session.id)} == {label}
    assert store_signal_rows(ch, database, [session.id], [], moved_before=[session.id]) == (0, 7)
    assert stored_signals(ch, session.id) == []


HOSTILE_EVENTS: list[tuple[str, Event]] = [
    ("source as a string", {"type": 3, "data": {"source": "2", "type": 2, "id": 7, "x": 1, "y": 1}, "timestamp": T}),
    ("source as a float", {"type": 3, "data": {"source": 2.0, "type": 2, "id": 7, "x": 1, "y": 1}, "timestamp": T}),
    ("source as true", {"type": 3, "data": {"source": True, "type": 2, "x": 1, "y": 1}, "timestamp": T}),
    ("click type as a string", {"type": 3, "data": {"source": 2, "type": "2", "x": 1, "y": 1}, "timestamp": T}),
    ("no data", {"type": 3, "timestamp": T}),
    ("x as a string", click(T, "100", 100)),
    ("x as true", click(T, True, 100)),
    ("x as null", click(T, None, 100)),
    ("x as an object", click(T, {"v": 1}, 100)),
    ("huge coordinates", click(T, 10**30, -(10**30))),
    ("coordinates of 16 digits", click(T, 1234567890123456, 100)),
    ("coordinates with exponents", click(T, 1e5, 1.5e-3)),
    ("negative and fractional coordinates", click(T, -0.5, 99.999)),
    ("a click without its node id", {"type": 3, "data": {"source": 2, "type": 2, "x": 100, "y": 100}, "timestamp": T}),
    ("a click with its keys in another order", {"type": 3, "data": {"x": 100, "y": 100, "type": 2, "source": 2,
                                                                     "id": 7}, "timestamp": T}),
    ("a mouse interaction of type 20", {"type": 3, "data": {"source": 2, "type": 20, "id": 7, "x": 100, "y": 100},
                                        "timestamp": T}),
    ("mutation source as a float", {"type": 3, "data": {"source": 0.0}, "timestamp": T + 1}),
    ("scroll source as a string", {"type": 3, "data": {"source": "3"}, "timestamp": T + 1}),
    ("console level with a space", console(T + 1, level="error ")),
    ("console level Error", console(T + 1, level="Error")),
    ("another plugin at level error", {"type": 6, "data": {"plugin": "rrweb/sequential-id@1",
                                                           "payload": {"level": "error"}}, "timestamp": T + 1}),
    ("nested source before data's own", {"type": 3, "conversionData": {"source": 1},
                                         "data": {"source": 2, "type": 2, "id": 7, "x": 1, "y": 1}, "timestamp": T}),
]


@pytest.mark.parametrize("odd", [e for _, e in HOSTILE_EVENTS], ids=[name for name, _ in HOSTILE_EVENTS])
def test_odd_event_shapes_are_read_as_the_agent_api_reads_them(new_session: Callable[[], Session],
                                                               odd: Event) -> None:
    """Events the agent API accepts with odd field types: what is a click, a reaction, an error or a position is
    decided as the agent API decides it (a JSON integer, not a string, float or boolean)."""
    session = new_session()
    session.send([click(T - 10), click(T - 5), odd, click(T + 2), click(T + 1_500), mouse_move(T + 1_600)])
    assert_matches_reference(session)


def test_a_flood_of_clicks_is_bounded(new_session: Callable[[], Session]) -> None:
    """250 clicks at one spot in one millisecond: a run looks at 100 clicks after its first, so three rage
    clicks (101, 101 and 48 clicks), as the reference counts them."""
    session = new_session()
    for _ in range(5):
        session.send([click(T)] * 50)
    _, counts = assert_matches_reference(session)
    assert counts.rage_click_count == 3


# --- the reference on random sessions ---------------------------------------------------------------------------

OFFSETS = st.integers(0, 3_000) | st.sampled_from([0, 999, 1_000, 1_001, 1_999, 2_000, 2_001])
COORDINATE = st.sampled_from([100, 110, 118, 124, 129, 130, 131, 160]) | st.floats(90, 140, allow_nan=False)
"""Around one spot, so that distances near 30 px are common; floats as the agent may send them."""


@st.composite
def random_event(draw: st.DrawFn) -> Event:
    ts = T + draw(OFFSETS)
    kind = draw(st.sampled_from(["click", "click", "click", "button", "mutation", "scroll", "input", "selection",
                                 "meta", "move", "mouseup", "resize", "error", "warn", "custom", "unplaced"]))
    if kind == "click":
        return click(ts, draw(COORDINATE), draw(COORDINATE))
    if kind == "button":
        return button(ts, draw(st.sampled_from(["Pay", " Pay\n", "Buy now", "it's"])), draw(COORDINATE),
                      draw(COORDINATE))
    if kind == "unplaced":
        return {"type": 3, "data": {"source": 2, "type": 2, "id": 9}, "timestamp": ts}
    makers: dict[str, Callable[[int], Event]] = {
        "mutation": mutation, "scroll": scroll, "input": text_input, "selection": selection, "meta": meta,
        "move": mouse_move, "mouseup": mouse_up, "resize": resize, "error": console, "custom": custom,
        "warn": lambda t: console(t, level="warn"),
    }
    return makers[kind](ts)


Batches = list[tuple[list[Event], bool]]


@st.composite
def batched_session(draw: st.DrawFn) -> tuple[Batches, Batches, list[int]]:
    """Events cut into batches sent in any order (each written compact, as the agent writes it, or not: the
    ingest view reads the first without a JSON parse), a second phase of late batches, and batches redelivered."""
    events = draw(st.lists(random_event(), min_size=1, max_size=40))
    late = draw(st.lists(random_event(), max_size=12))

    def batches(items: list[Event]) -> Batches:
        cut, out = 0, []
        while cut < len(items):
            size = draw(st.integers(1, 10))
            out.append((items[cut:cut + size], draw(st.booleans())))
            cut += size
        return draw(st.permutations(out))

    first = batches(events)
    redelivered = draw(st.lists(st.integers(0, len(first) - 1), max_size=2, unique=True))
    return first, batches(late), redelivered


@hypothesis_settings(max_examples=40, deadline=None)
@given(case=batched_session())
def test_random_sessions_match_the_reference(ch: Client, database: str,
                                             case: tuple[Batches, Batches, list[int]]) -> None:
    """Random sessions, batched at random, some batches redelivered, then late batches and a second move: every
    move's rows and counts are the reference's, and after the second store the table holds exactly its rows."""
    first, late, redelivered = case
    session = Session(ch, database)
    batch_ids = [session.send(batch, compact=compact) for batch, compact in first]
    for index in redelivered:
        session.redeliver(batch_ids[index])
    rows, _ = assert_matches_reference(session)
    store_signal_rows(ch, database, [session.id], rows, moved_before=[])
    for batch, compact in late:
        session.send(batch, compact=compact)
    rows, _ = assert_matches_reference(session)
    store_signal_rows(ch, database, [session.id], rows, moved_before=[session.id])
    assert stored_signals(ch, session.id) == sorted((r.kind, r.ts, r.label, r.batch_id, r.seq) for r in rows)


# --- the schema -------------------------------------------------------------------------------------------------


def test_migration_5_extends_the_kinds_and_is_idempotent(settings: Settings, chdb_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """On a database at migration 5 (an interrupted run is re-run there, before any later migration widens the
    kinds again), applying its statements once more changes nothing."""
    database = f"k_{uuid.uuid4().hex[:10]}"
    ch = create_client(chdb_url, database=database)
    try:
        with monkeypatch.context() as before:
            before.setattr(clickhouse_migrations, "MIGRATIONS", tuple(m for m in MIGRATIONS if m.version <= 5))
            assert migrate(ch, settings, database)[-1] == 5
        kind_type = ch.query("SELECT type FROM system.columns WHERE database = {d:String} AND table = "
                             "'conversion_events' AND name = 'kind'", parameters={"d": database}).result_rows[0][0]
        assert kind_type == SIGNAL_KINDS_ENUM
        session = Session(ch, database)
        session.send([button(T), button(T + 100), button(T + 200)])
        before_rerun = session.computed()
        (migration,) = [m for m in MIGRATIONS if m.version == 5]
        assert migration.name == "behaviour_signals"
        for statement in migration.statements(settings, database):  # applied again, as after an interrupted run
            ch.command(statement)
        assert session.computed() == before_rerun
        assert before_rerun[1] == SignalCounts(1, 3, 0)
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        ch.close()


def test_the_backfill_reads_events_stored_before_migration_5(settings: Settings, chdb_url: str) -> None:
    """A database that recorded events before migration 5 existed: the migration fills ``signal_inputs`` from
    ``events`` (labels from ``conversion_events``), and the signals over it are the reference's."""
    database = f"b_{uuid.uuid4().hex[:10]}"
    ch = create_client(chdb_url, database=database)
    try:
        for migration in MIGRATIONS:
            if migration.version < 5 and settings.mode in migration.modes:
                for statement in migration.statements(settings, database):
                    ch.command(statement)
        session = Session(ch, database)
        session.send([bardrr.full_snapshot(T - 10), button(T), bardrr.link_click(T + 100), button(T + 200),
                      click(T + 300, 812, 34, node=5), console(T + 400)])
        session.send([mutation(T + 2_000), click(T + 2_500)])
        assert ch.query("EXISTS TABLE signal_inputs").result_rows[0][0] == 0
        assert 5 in migrate(ch, settings, database)
        rows, counts = assert_matches_reference(session)
        assert counts == SignalCounts(rage_click_count=1, dead_click_count=5, error_click_count=4)
        assert {r.label for r in rows} == {bardrr.BUTTON_LABEL, bardrr.LINK_LABEL, ""}
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        ch.close()


def test_migration_6_gives_an_older_view_the_current_query(settings: Settings, chdb_url: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A database migrated to 5 when its view parsed every click (any other query stands for it here): migration 6
    swaps the query in place, and what ingest writes from then on is the reference's."""
    database = f"m_{uuid.uuid4().hex[:10]}"
    ch = create_client(chdb_url, database=database)
    try:
        with monkeypatch.context() as before:
            before.setattr(clickhouse_migrations, "MIGRATIONS", tuple(m for m in MIGRATIONS if m.version <= 5))
            assert migrate(ch, settings, database)[-1] == 5
        ch.command("ALTER TABLE signal_inputs_mv MODIFY QUERY SELECT session_id, app_name, "
                   "fromUnixTimestamp64Milli(ts, 'UTC') AS ts, 'click' AS role, batch_id, seq, 0. AS x, 0. AS y, "
                   "'' AS label, fromUnixTimestamp64Milli(received_at, 'UTC') AS received_at FROM ingest WHERE 0")
        assert [version for version in migrate(ch, settings, database) if version <= 6] == [6]  # later ones too
        query = ch.query("SELECT as_select FROM system.tables WHERE database = {d:String} AND name = "
                         "'signal_inputs_mv'", parameters={"d": database}).result_rows[0][0]
        assert "extractGroups" in query
        session = Session(ch, database)
        session.send([button(T), button(T + 100), button(T + 200), console(T + 300)])
        rows, counts = assert_matches_reference(session)
        assert counts == SignalCounts(rage_click_count=1, dead_click_count=3, error_click_count=3)
        assert migrate(ch, settings, database) == []
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        ch.close()


def test_queries_bind_every_value() -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    sql, parameters = signals.signals_query("bard", ids)
    assert parameters == {"p0": [str(i) for i in ids]}
    assert "{p0: Array(UUID)}" in sql and str(ids[0]) not in sql
    assert sql == signals.signals_query("bard", [uuid.uuid4()])[0]
    row = SignalRow(ids[0], APP, T, "dead_click", "'); DROP TABLE x; --", ids[1], 3)
    sql, parameters = signals.delete_statement("bard", [row])
    assert "DROP" not in sql and str(ids[0]) not in sql
    assert parameters["p1"] == [(str(ids[0]), "dead_click", T, row.label, str(ids[1]), 3)]
    with pytest.raises(ValueError):
        signals.signals_query("bard; DROP", ids)
