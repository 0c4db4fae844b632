"""``/api`` deep offset pages (``replayer_api.legacy.deep_session_page``): a sample estimates a window, one
``FINAL`` pass counts and sorts it. Every answer is held to the simple way (the page read ``FINAL`` and sorted
whole, the count beside it) and to a plain-Python reference, on real chDB: every sort both ways, filters, page
boundaries and the list's end, sessions with several versions (later ones replacing earlier ones, inserted in
either order), and samples tuned so that windows fit exactly, hold the page, or miss it."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from clickhouse.session_filters import AppNameFilter, DurationFilter, ErrorsFilter, Filters, StartedAtFilter
from replayer_api import legacy, sessions
from replayer_api.sessions import Session
from replayer_api.warehouse import Warehouse
from tests.replayer_support import BASE_MS, EndedSession, insert_sessions

HOUR = 3_600_000
APPS = ("shop", "blog", "admin")


class RecordingWarehouse(Warehouse):
    """The real warehouse, keeping the text of every query it ran: which way a page was read."""

    def __init__(self, client: Client) -> None:
        super().__init__([client])
        self.queries: list[str] = []

    async def rows(self, sql: str, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        self.queries.append(sql)
        return await super().rows(sql, parameters)

    def plain_reads(self) -> int:
        """Pages read the simple way (``sessions.final_sessions``: whole rows, by offset; the sample's bounds are
        read by offset too, but only their sort key)."""
        whole_rows = ", ".join(sessions.READ) + " FROM sessions FINAL"
        return sum(sql.startswith("SELECT " + whole_rows) and " OFFSET " in sql for sql in self.queries)


def rfc_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def history(count: int = 240, seed: int = 11) -> tuple[list[tuple[int, list[EndedSession]]], list[EndedSession]]:
    """Inserts as the session ender's moves leave them, ``(version, rows)`` in insert order, and the newest row of
    each session. Ties on every sort key; a quarter of the sessions moved again with other values (start, length,
    errors, app: so they change place and filter), some a third time, a few of those inserted before the second
    move (a stalled older write: the higher version still wins)."""
    rng = random.Random(seed)
    ids = [rfc_id(rng) for _ in range(count - 4)]
    # Ids at the edges of the text order: digits against letters, the first and last possible.
    ids += [uuid.UUID("00000000-0000-4000-8000-000000000000"), uuid.UUID("9fffffff-ffff-4fff-bfff-ffffffffffff"),
            uuid.UUID("a0000000-0000-4000-8000-000000000000"), uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff")]

    def row(session_id: uuid.UUID, i: int) -> EndedSession:
        return EndedSession(session_id, APPS[rng.randrange(3)], BASE_MS + (i // 3) * HOUR,
                            rng.choice((0, 1_000, 5_000, 5_000, 90_000, rng.randrange(200_000))),
                            rng.choice((0, 0, 0, 1, 3)), rng.choice((1, 10, 250)))

    first = [row(session_id, i) for i, session_id in enumerate(ids)]
    second = [row(s.session_id, rng.randrange(count)) for s in rng.sample(first, count // 4)]
    third = [row(s.session_id, rng.randrange(count)) for s in rng.sample(second, count // 12)]
    stalled = {s.session_id for s in third[: len(third) // 2]}
    inserts = [(1, first[: count // 2]), (1, first[count // 2:]),
               (3, [s for s in third if s.session_id in stalled]),
               (2, second),
               (3, [s for s in third if s.session_id not in stalled])]
    newest = {s.session_id: s for s in first} | {s.session_id: s for s in second} | {s.session_id: s for s in third}
    return inserts, list(newest.values())


def insert_history(ch: Client, inserts: Sequence[tuple[int, list[EndedSession]]]) -> None:
    for version, rows in inserts:
        if rows:
            insert_sessions(ch, rows, version=version)


DAY1 = BASE_MS + 24 * HOUR
FILTERS: dict[str, tuple[Filters, Callable[[EndedSession], bool]]] = {
    "none": ((), lambda s: True),
    "app-no-errors": ((AppNameFilter(names=("blog",)), ErrorsFilter(has_errors=False)),
                      lambda s: s.app_name == "blog" and s.error_count == 0),
    "date-length": ((StartedAtFilter(after_ms=DAY1, before_ms=DAY1 + 48 * HOUR),
                     DurationFilter(min_ms=1_000, max_ms=90_000)),
                    lambda s: DAY1 <= s.started_ms < DAY1 + 48 * HOUR and 1_000 <= s.duration_ms <= 90_000),
}
KEYS: dict[str, Callable[[EndedSession], Any]] = {
    "sessionId": lambda s: str(s.session_id),
    "length": lambda s: s.duration_ms,
    "date": lambda s: s.started_ms,
    "appName": lambda s: s.app_name,
    "errorCount": lambda s: s.error_count,
}


def reference(newest: list[EndedSession], keep: Callable[[EndedSession], bool], sort_by: str, direction: str
              ) -> list[Session]:
    """The list as the original dashboard meant it: the sort key, ties by session id text ascending."""
    by_id = sorted((s for s in newest if keep(s)), key=lambda s: str(s.session_id))
    ordered = sorted(by_id, key=KEYS[sort_by], reverse=direction == "DESC")  # stable: ids stay ascending
    return [Session(s.session_id, s.app_name, s.started_ms, s.ended_ms, s.duration_ms, s.event_count, s.error_count)
            for s in ordered]


def boundaries(size: int, limit: int) -> list[int]:
    """Offsets at page edges, the middle, the list's end and past it."""
    offsets = {0, limit - 1, limit, size // 2, size - limit, size - 1, size, size + 1, 10 * size + 7}
    return sorted(o for o in offsets if o >= 0)


async def simple_page(warehouse: Warehouse, session_filter: Filters, column: sessions.Column,
                      direction: str, limit: int, offset: int) -> tuple[list[Session], int]:
    """The way deep pages were read before: ``FINAL``, sorted whole, and the count."""
    page = await legacy.plain_page(warehouse, session_filter, column, direction, limit, offset)
    return page, await sessions.count_sessions(warehouse, session_filter)


# (SAMPLE_RATE, WINDOW_SIGMAS): a coarse sample with a wide window, so the page is read from the window; a sample
# so coarse and a window so narrow that many windows miss the page and it is read the simple way.
SAMPLES = {"coarse": (4, 4), "missing": (8, 0)}
# Each filter with its own page size.
LIMITS = {"none": 5, "app-no-errors": 7, "date-length": 1}


@pytest.mark.clickhouse
@pytest.mark.parametrize("sort_by", list(KEYS))
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("sample", list(SAMPLES))
async def test_deep_pages_match_the_simple_way(ch: Client, monkeypatch: pytest.MonkeyPatch, sort_by: str,
                                               direction: str, sample: str) -> None:
    rate, sigmas = SAMPLES[sample]
    monkeypatch.setattr(legacy, "SAMPLE_RATE", rate)
    monkeypatch.setattr(legacy, "WINDOW_SIGMAS", sigmas)
    inserts, newest = history()
    insert_history(ch, inserts)
    warehouse = RecordingWarehouse(ch)
    column = sessions.LEGACY_SORT_COLUMNS[sort_by]
    calls = fell_back = 0
    for name, (session_filter, keep) in FILTERS.items():
        expected = reference(newest, keep, sort_by, direction)
        limit = LIMITS[name]
        for offset in boundaries(len(expected), limit):
            plain_reads = warehouse.plain_reads()
            page, count = await legacy.deep_session_page(warehouse, session_filter, column, direction, limit, offset)
            calls += 1
            fell_back += warehouse.plain_reads() > plain_reads
            where = f"{name}, {limit} from {offset}"
            assert count == len(expected), where
            assert page == expected[offset:offset + limit], where
            assert (page, count) == await simple_page(warehouse, session_filter, column, direction, limit,
                                                      offset), where
    assert fell_back < calls  # pages came from windows
    if sample == "missing":
        assert fell_back > 0  # and some the simple way


@pytest.mark.clickhouse
async def test_an_exact_sample_never_falls_back(ch: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every session sampled, the window's edges are exact positions: the counts always prove it holds the
    page, at every offset, so the plain read never runs (the windows themselves are what the other test checks)."""
    monkeypatch.setattr(legacy, "SAMPLE_RATE", 1)
    monkeypatch.setattr(legacy, "WINDOW_SIGMAS", 0)
    inserts, newest = history(count=120, seed=3)
    insert_history(ch, inserts)
    for sort_by, direction in zip(KEYS, ("ASC", "DESC", "ASC", "DESC", "ASC"), strict=True):
        warehouse = RecordingWarehouse(ch)
        expected = reference(newest, lambda s: True, sort_by, direction)
        for offset in range(0, len(expected) + 2, 4):
            page, count = await legacy.deep_session_page(warehouse, (),
                                                         sessions.LEGACY_SORT_COLUMNS[sort_by], direction, 5, offset)
            assert (page, count) == (expected[offset:offset + 5], len(expected)), (sort_by, direction, offset)
        assert warehouse.plain_reads() == 0, (sort_by, direction)


@pytest.mark.clickhouse
async def test_a_window_that_misses_is_read_the_simple_way(ch: Client, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=legacy.__name__)
    monkeypatch.setattr(legacy, "SAMPLE_RATE", 8)
    monkeypatch.setattr(legacy, "WINDOW_SIGMAS", 0)
    inserts, newest = history()
    insert_history(ch, inserts)
    warehouse = RecordingWarehouse(ch)
    expected = reference(newest, lambda s: True, "date", "DESC")
    for offset in range(0, len(expected), 7):
        page, count = await legacy.deep_session_page(warehouse, (), sessions.START, "DESC", 5, offset)
        assert (page, count) == (expected[offset:offset + 5], len(expected)), offset
    assert warehouse.plain_reads() > 0
    assert "misses offset" in caplog.text


@pytest.mark.clickhouse
@pytest.mark.parametrize("ids", ["none-sampled", "mixed"])
async def test_ids_outside_the_sample_span_still_answer_exactly(ch: Client, monkeypatch: pytest.MonkeyPatch,
                                                               ids: str) -> None:
    """Ids that are not RFC 4122/9562 (their low 64 bits do not start 10) are never sampled: the estimate is off
    or missing, the answer is not."""
    monkeypatch.setattr(legacy, "SAMPLE_RATE", 2)
    rng = random.Random(4)
    inserts, newest = history(count=90, seed=6)

    def renamed(session_id: uuid.UUID) -> uuid.UUID:
        if ids == "mixed" and session_id.int % 2:
            return session_id
        return uuid.UUID(int=session_id.int & ~(1 << 63))  # variant bits 00: below the sample's span

    inserts = [(v, [EndedSession(renamed(s.session_id), s.app_name, s.started_ms, s.duration_ms, s.error_count,
                                 s.event_count) for s in rows]) for v, rows in inserts]
    newest = [EndedSession(renamed(s.session_id), s.app_name, s.started_ms, s.duration_ms, s.error_count,
                           s.event_count) for s in newest]
    insert_history(ch, inserts)
    warehouse = RecordingWarehouse(ch)
    for sort_by, direction in (("date", "DESC"), ("sessionId", "ASC"), ("errorCount", "ASC")):
        expected = reference(newest, lambda s: True, sort_by, direction)
        for offset in (0, 4, rng.randrange(len(expected)), len(expected) - 3, len(expected), len(expected) + 9):
            page, count = await legacy.deep_session_page(warehouse, (),
                                                         sessions.LEGACY_SORT_COLUMNS[sort_by], direction, 5, offset)
            assert (page, count) == (expected[offset:offset + 5], len(expected)), (sort_by, direction, offset)


@pytest.mark.clickhouse
async def test_windows_too_wide_are_read_the_simple_way(ch: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A window estimated wider than MAX_WINDOW is not read; one found wider (its array cut short) is not used."""
    monkeypatch.setattr(legacy, "MAX_WINDOW", 20)
    monkeypatch.setattr(legacy, "SAMPLE_RATE", 2)
    monkeypatch.setattr(legacy, "WINDOW_SIGMAS", 0)
    rng = random.Random(12)
    # Half the ids below the sample's span: windows hold about twice the rows the sample expects.
    rows = [EndedSession(rfc_id(rng) if i % 2 else uuid.UUID(int=rng.getrandbits(63)), APPS[i % 3],
                         BASE_MS + (i // 2) * HOUR, 1_000 * (i % 7), i % 3) for i in range(120)]
    insert_sessions(ch, rows)
    warehouse = RecordingWarehouse(ch)
    expected = reference(rows, lambda s: True, "length", "DESC")
    for offset in (0, 2, 11, 30, 60, 117, 500):
        page, count = await legacy.deep_session_page(warehouse, (), sessions.DURATION, "DESC", 5,
                                                     offset)
        assert (page, count) == (expected[offset:offset + 5], len(expected)), offset
    assert warehouse.plain_reads() > 0


@pytest.mark.clickhouse
async def test_a_later_version_moves_a_session_across_the_page(ch: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A session at the page's first place whose next move lengthens it past the page and out of a filter: it
    leaves the page (the next one takes its place), and shows where its newest row puts it."""
    monkeypatch.setattr(legacy, "SAMPLE_RATE", 1)
    rng = random.Random(9)
    rows = [EndedSession(rfc_id(rng), "shop", BASE_MS + i * HOUR, 1_000 * (i + 1), i % 2) for i in range(40)]
    insert_sessions(ch, rows)
    warehouse = Warehouse([ch])
    by_length = sessions.LEGACY_SORT_COLUMNS["length"]
    page, count = await legacy.deep_session_page(warehouse, (), by_length, "ASC", 5, 10)
    assert [s.session_id for s in page] == [s.session_id for s in rows[10:15]] and count == 40
    moved = rows[10]
    insert_sessions(ch, [EndedSession(moved.session_id, "blog", moved.started_ms, 500_000, 3)], version=2)
    page, count = await legacy.deep_session_page(warehouse, (), by_length, "ASC", 5, 10)
    assert [s.session_id for s in page] == [s.session_id for s in rows[11:16]] and count == 40
    last, _ = await legacy.deep_session_page(warehouse, (), by_length, "ASC", 5, 39)
    assert last == [Session(moved.session_id, "blog", moved.started_ms, moved.started_ms + 500_000, 500_000, 10, 3)]
    shop = (AppNameFilter(names=("shop",)),)
    page, count = await legacy.deep_session_page(warehouse, shop, by_length, "ASC", 5, 10)
    assert [s.session_id for s in page] == [s.session_id for s in rows[11:16]] and count == 39
    assert (page, count) == await simple_page(warehouse, shop, by_length, "ASC", 5, 10)


# --- through the app: /api/sessions answers the same JSON either way -------------------------------------------

HTTP_CASES: list[dict[str, Any]] = [
    {},
    {"sortBy": "sessionId", "sortOrder": "ascending", "perPage": 7},
    {"sortBy": "length", "perPage": 3},
    {"sortBy": "appName", "sortOrder": "ascending", "perPage": 4},
    {"sortBy": "errorCount", "filter_0": "Has Errors?", "yesOrNo": "no", "perPage": 6},
    {"sortBy": "date", "sortOrder": "ascending", "filter_0": "appName", "textContent": "admin", "filter_1": "length",
     "minLength": 1_000, "maxLength": 90_000, "perPage": 2},
    {"filter_0": "date", "startDate": "2026-01-02", "endDate": "2026-01-03", "sortBy": "length",
     "sortOrder": "ascending", "perPage": 5},
]


@pytest.mark.postgres
@pytest.mark.clickhouse
@pytest.mark.parametrize("params", HTTP_CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "defaults"
                                                    for c in HTTP_CASES])
async def test_api_answers_the_same_either_way(api: httpx.AsyncClient, ch: Client, monkeypatch: pytest.MonkeyPatch,
                                              params: dict[str, Any]) -> None:
    monkeypatch.setattr(legacy, "SAMPLE_RATE", 2)
    inserts, _ = history()
    insert_history(ch, inserts)
    for page_number in range(0, 100, 7):
        query = {**params, "pageNum": page_number}
        monkeypatch.setattr(legacy, "DEEP_OFFSET", -1)  # every page by sample and window
        deep = await api.get("/api/sessions", params=query)
        monkeypatch.setattr(legacy, "DEEP_OFFSET", 10**18)  # every page as before
        simple = await api.get("/api/sessions", params=query)
        assert deep.status_code == simple.status_code == 200
        assert deep.json() == simple.json(), query
        if not simple.json()["sessions"]:
            break
