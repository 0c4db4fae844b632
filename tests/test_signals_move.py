"""Behaviour signals through the session ender's move, end to end: the events go into ``ingest`` as the consumer
inserts them, the session is active in PostgreSQL, the ender moves it, and ``sessions`` carries the counts while
``conversion_events`` holds the signals (so the session list, the markers and funnels see them). A late batch
moves the session again: the signals are computed over all of its events, and one the late batch takes away is
gone. The definitions' edges are tested in test_signals.py against the plain-Python reference."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from clickhouse_connect.driver.client import Client

from agent_api.batches import parse_batch
from bard.settings import Settings
from session_ender.ender import SessionEnder
from tests import bardrr_events as bardrr
from tests.replayer_support import insert_active

pytestmark = [pytest.mark.postgres, pytest.mark.clickhouse]

T0 = 1_767_225_600_000


def ingest(ch: Client, session_id: uuid.UUID, events: list[dict[str, Any]]) -> None:
    body = json.dumps({"sessionId": str(session_id), "events": events}, separators=(",", ":")).encode()
    batch = parse_batch(body, "shop", max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)
    ch.raw_insert("ingest", insert_block=batch.ingest_rows(uuid.uuid4(), T0), fmt="JSONEachRow")


async def move_everything(settings: Settings, pool: asyncpg.Pool, ch: Client) -> int:
    latest: datetime = await pool.fetchval("SELECT max(expires_at) FROM active_sessions")
    moment = latest + timedelta(seconds=settings.ender_grace_seconds, microseconds=1)
    ender = SessionEnder(pool, ch, grace_seconds=settings.ender_grace_seconds, batch_size=100, clock=lambda: moment)
    return (await ender.expire_sessions()).ended


def counts(ch: Client, session_id: uuid.UUID) -> tuple[int, int, int]:
    [row] = ch.query("SELECT rage_click_count, dead_click_count, error_click_count FROM sessions FINAL "
                     "WHERE session_id = {s:UUID}", parameters={"s": session_id}).result_rows
    return int(row[0]), int(row[1]), int(row[2])


def signals(ch: Client, session_id: uuid.UUID) -> list[tuple[str, str, int]]:
    rows = ch.query("SELECT DISTINCT toString(kind), label, toUnixTimestamp64Milli(ts) FROM conversion_events "
                    "WHERE session_id = {s:UUID} AND kind IN ('rage_click', 'dead_click', 'error_click') "
                    "ORDER BY 3, 1", parameters={"s": session_id}).result_rows
    return [(kind, label, int(ts)) for kind, label, ts in rows]


def click(ts: int, x: int = 812, y: int = 34) -> dict[str, Any]:
    """A click on the page's button, at (x, y): the agent tags it with the button's text."""
    event = bardrr.button_click(ts)
    event["data"] = {**event["data"], "x": x, "y": y}
    return event


async def test_the_move_counts_signals_and_a_late_batch_recomputes_them(settings: Settings, pg_pool: asyncpg.Pool,
                                                                        ch: Client) -> None:
    sid, quiet = uuid.uuid4(), uuid.uuid4()
    page = [bardrr.meta(T0), bardrr.full_snapshot(T0 + 1, products=3)]
    # A rage click over two batches (3 clicks within 1 s, within 30 px of the first), then a lone click that
    # nothing answers (dead) and after which the console shows an error 200 ms later (an error click too).
    ingest(ch, sid, [*page, click(T0 + 1_000), click(T0 + 1_300, x=830)])
    ingest(ch, sid, [click(T0 + 1_600, y=50), bardrr.scroll(T0 + 1_650), click(T0 + 5_000),
                     bardrr.console_error(T0 + 5_200)])
    ingest(ch, quiet, [*page, click(T0 + 1_000), bardrr.scroll(T0 + 1_100)])
    await insert_active(pg_pool, sid, "shop", T0, T0 + 5_200, events=10, errors=1)
    await insert_active(pg_pool, quiet, "shop", T0, T0 + 1_100, events=4)
    assert await move_everything(settings, pg_pool, ch) == 2

    label = " ".join(bardrr.BUTTON_TEXT.split())  # the button's text as the agent API tags it
    assert counts(ch, quiet) == (0, 0, 0) and signals(ch, quiet) == []
    # The scroll at 1650 answers each click of the rage run (650, 350 and 50 ms after them): none is dead. The
    # click at 5000 has no reaction within 1 s (a console error is none), and an error 200 ms after it.
    assert signals(ch, sid) == [("rage_click", label, T0 + 1_000), ("dead_click", label, T0 + 5_000),
                                ("error_click", label, T0 + 5_000)]
    assert counts(ch, sid) == (1, 1, 1)

    # A late batch: a mutation 500 ms after the lone click saves it from being dead; the session moves again.
    ingest(ch, sid, [bardrr.mutation_adding_link(T0 + 5_500, 900, "More")])
    await insert_active(pg_pool, sid, "shop", T0 + 5_500, T0 + 5_500, events=1)
    assert await move_everything(settings, pg_pool, ch) == 1
    assert signals(ch, sid) == [("rage_click", label, T0 + 1_000), ("error_click", label, T0 + 5_000)]
    assert counts(ch, sid) == (1, 0, 1)
    [(moved,)] = ch.query("SELECT count() FROM sessions FINAL WHERE session_id = {s:UUID}",
                          parameters={"s": sid}).result_rows
    assert moved == 1
