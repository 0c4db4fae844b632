"""The move of ended sessions from PostgreSQL ``active_sessions`` to ClickHouse ``sessions``.

A move is one PostgreSQL transaction per batch:

1. **claim**: ``SELECT ... FOR UPDATE SKIP LOCKED`` the rows whose ``expires_at`` (server time, last_seen_at +
   max idle) lies more than the grace before now; enders on other machines skip the locked rows and claim
   others, so each row has one mover at a time;
2. **read**: the ended sessions of the whole batch from ClickHouse ``sessions``, in one query, the highest
   ``version`` of each (what ``FINAL`` shows);
3. **write**: every merged session (:mod:`session_ender.merge`), in one insert, each with a higher version,
   its behaviour signals (:mod:`session_ender.signals`) computed over all of its events then in ClickHouse:
   the counts in the row, then the signals as ``conversion_events`` rows (after the row: the store looks up
   earlier signals only for sessions already in ``sessions``);
4. **delete**: the claimed rows whose ``segment_id`` and ``last_seen_at`` are unchanged since the claim;
5. **commit**, which releases the locks.

Why the row lock is held across the ClickHouse write rather than a lease column: a lock dies with the
connection, so a crashed ender frees its rows at once and the rerun waits for no lease; and while the lock is
held no batch can change the row, so the ClickHouse read-modify-write of one session is serialised across
enders (the next move of that session can only claim the row after this commit, so it reads after this
write). The cost: the agent API's upsert of a session being moved waits for the commit (one batch's ClickHouse
read and insert, tens of milliseconds), and only sessions already idle past their timeout are ever locked.
That upsert then finds the row gone and creates a new one with a new segment: the session stays active, and a
later move merges the late events into the ended session.

An ender that hangs instead of crashing holds its locks until PostgreSQL's
``idle_in_transaction_session_timeout`` (set per transaction) ends its transaction; another ender may then move
the same rows. If the hung one wakes and writes its merge late, that merge is stale, and it loses to the newer
one because a version is never below the claim's PostgreSQL time in microseconds (:func:`merge_segment`); its
delete then fails with its transaction. The delete's guard on ``last_seen_at`` and ``segment_id`` keeps any
row changed after the claim active, should the lock ever not cover it.

A crash at any step leaves PostgreSQL as it was (the transaction rolls back). If it came after the ClickHouse
write, ``sessions`` already holds the merged row while the active row remains; the rerun merges the same
segment again, which *replaces* that segment's counts instead of adding them, so readers never see doubled
counts, even if a batch updated the row between the crash and the rerun.

Metrics (Prometheus, see :mod:`bard.metrics`): sessions ended and kept active, counted per committed batch (a
run that fails later keeps what it moved); each run's duration; failed runs; the time of the last run that
succeeded, which an alert can watch for an ender that stopped moving.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg
import msgspec
from clickhouse_connect.driver.client import Client
from prometheus_client import Counter, Gauge, Histogram

from bard.settings import Settings
from session_ender.merge import COLUMNS, ActiveSegment, EndedSession, as_columns, merge_segment
from session_ender.signals import signal_rows, store_signal_rows

log = logging.getLogger(__name__)


SESSIONS_ENDED = Counter("bard_session_ender_sessions_ended_total",
                         "Sessions moved from PostgreSQL to ClickHouse (ended)")
SESSIONS_KEPT = Counter("bard_session_ender_sessions_kept_total",
                        "Sessions claimed for a move that changed meanwhile and stay active")
RUN_SECONDS = Histogram("bard_session_ender_run_duration_seconds",
                        "Runs of the session ender (every expired session, batch after batch), failed ones included",
                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0))
FAILURES = Counter("bard_session_ender_failures_total",
                   "Runs that failed (PostgreSQL or ClickHouse); what their committed batches moved stays moved")
LAST_SUCCESS = Gauge("bard_session_ender_last_success_timestamp_seconds",
                     "When the last run that succeeded ended (Unix time)", multiprocess_mode="max")


class MoveStep(StrEnum):
    """The points of a move at which the step hook is called (tests inject crashes there)."""

    CLAIMED = "claimed"  # rows locked in PostgreSQL; nothing read or written yet
    READ = "read"  # ended sessions read from ClickHouse and merged; nothing written yet
    WRITTEN = "written"  # merged sessions inserted into ClickHouse; PostgreSQL rows untouched
    DELETED = "deleted"  # PostgreSQL rows deleted; the transaction is not committed yet


StepHook = Callable[[MoveStep, Sequence[ActiveSegment]], Awaitable[None]]
Clock = Callable[[], datetime]


class BatchResult(msgspec.Struct, frozen=True):
    claimed: int
    ended: int  # claimed rows deleted from PostgreSQL: moved
    kept: int  # claimed rows that changed after the claim and stay active


class RunResult(msgspec.Struct, frozen=True):
    ended: int
    kept: int
    batches: int
    seconds: float


CLAIM = """
SELECT session_id, segment_id, app_name, first_event_at, last_event_at, event_count, error_count,
       browser, browser_major, os, device_type, viewport_width, viewport_height, entry_url, entry_path, exit_path,
       page_count, click_count, rage_click_count, dead_click_count, error_click_count, country, last_seen_at,
       (extract(epoch FROM statement_timestamp()) * 1000000)::bigint AS claimed_at_us
FROM active_sessions
WHERE expires_at < COALESCE($1::timestamptz, now()) - $2::interval
ORDER BY expires_at
LIMIT $3
FOR UPDATE SKIP LOCKED
"""

DELETE_UNCHANGED = """
DELETE FROM active_sessions AS a
USING unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS moved(session_id, segment_id, last_seen_at)
WHERE a.session_id = moved.session_id
  AND a.segment_id = moved.segment_id
  AND a.last_seen_at = moved.last_seen_at
"""

# Every stored version of the batch's sessions; the highest is kept (argMax by version, done in Python): what FINAL
# shows, without FINAL's merge work (measured ~40% cheaper on a table of 100 unmerged parts).
READ_ENDED = """
SELECT session_id, app_name, toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(ended_at),
       event_count, error_count, segments, segment_event_counts, segment_error_counts, version,
       browser, browser_major, os, device_type, entry_url, entry_path, viewport_width, viewport_height, exit_path,
       page_count, click_count, rage_click_count, dead_click_count, error_click_count,
       segment_page_counts, segment_click_counts, segment_rage_click_counts, segment_dead_click_counts,
       segment_error_click_counts, country
FROM sessions
WHERE session_id IN {ids:Array(UUID)}
"""
"""The columns of :data:`session_ender.merge.COLUMNS`, in that order (times as milliseconds)."""


class SessionEnder:
    """Moves expired sessions; one instance per process (several processes may run at once).

    ``clock`` decides "now" for expiry; by default PostgreSQL's own clock, the one that set ``last_seen_at``.
    ``on_step`` is awaited at each :class:`MoveStep` with the claimed batch; an exception it raises aborts the
    move there, as a crash would.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        ch_client: Client,
        *,
        grace_seconds: float,
        batch_size: int,
        clock: Clock | None = None,
        on_step: StepHook | None = None,
        lock_idle_timeout_seconds: float = 60.0,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._pool = pool
        self._ch = ch_client
        self._database: str = ch_client.database or "default"  # the client's own: where its unqualified reads go
        self._grace = timedelta(seconds=grace_seconds)
        self.batch_size = batch_size
        self._clock = clock
        self._on_step = on_step
        self._lock_idle_timeout = f"{int(lock_idle_timeout_seconds * 1000)}ms"
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    def from_settings(
        cls, settings: Settings, pool: asyncpg.Pool, ch_client: Client, *,
        clock: Clock | None = None, on_step: StepHook | None = None,
    ) -> SessionEnder:
        return cls(pool, ch_client, grace_seconds=settings.ender_grace_seconds,
                   batch_size=settings.ender_batch_size, clock=clock, on_step=on_step)

    async def expire_sessions(self) -> RunResult:
        """Move every session expired now, batch after batch; logs one line."""
        started = time.perf_counter()
        ended = kept = batches = 0
        self._idle.clear()
        try:
            while True:
                batch = await self.move_batch()
                if batch.claimed:
                    batches += 1
                ended += batch.ended
                kept += batch.kept
                SESSIONS_ENDED.inc(batch.ended)
                SESSIONS_KEPT.inc(batch.kept)
                if batch.claimed < self.batch_size:
                    break
        except BaseException as exc:
            RUN_SECONDS.observe(time.perf_counter() - started)
            if isinstance(exc, Exception):  # not a cancellation (a stop): those roll back and are no failure
                FAILURES.inc()
            log.error("session ender run failed after %d ended, %d kept active, %d batches, in %.3f s",
                      ended, kept, batches, time.perf_counter() - started)
            raise
        finally:
            self._idle.set()
        result = RunResult(ended=ended, kept=kept, batches=batches, seconds=time.perf_counter() - started)
        RUN_SECONDS.observe(result.seconds)
        LAST_SUCCESS.set_to_current_time()
        log.info("session ender: %d ended, %d kept active, %d batches, in %.3f s",
                 result.ended, result.kept, result.batches, result.seconds)
        return result

    async def idle(self) -> None:
        """Return when no run is in progress."""
        await self._idle.wait()

    async def move_batch(self) -> BatchResult:
        """Claim up to ``batch_size`` expired rows, write them to ClickHouse, delete the unchanged ones."""
        now = self._clock() if self._clock is not None else None
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('idle_in_transaction_session_timeout', $1, true)",
                               self._lock_idle_timeout)
            rows = await conn.fetch(CLAIM, now, self._grace, self.batch_size)
            if not rows:
                return BatchResult(claimed=0, ended=0, kept=0)
            segments = [
                ActiveSegment(session_id=r[0], segment_id=r[1], app_name=r[2], first_event_at=r[3],
                              last_event_at=r[4], event_count=r[5], error_count=r[6], browser=r[7],
                              browser_major=r[8], os=r[9], device_type=r[10], viewport_width=r[11],
                              viewport_height=r[12], entry_url=r[13], entry_path=r[14], exit_path=r[15],
                              page_count=r[16], click_count=r[17], rage_click_count=r[18], dead_click_count=r[19],
                              error_click_count=r[20], country=r[21])
                for r in rows  # by position, in CLAIM's order: ~2x faster than by name for a batch of 5,000
            ]
            await self._step(MoveStep.CLAIMED, segments)

            ids = [s.session_id for s in segments]
            previous = await asyncio.to_thread(self._read_ended, ids)
            signals, counts = await asyncio.to_thread(signal_rows, self._ch, self._database, ids)
            claimed_at_us = max(r["claimed_at_us"] for r in rows)
            # The signals are the whole session's (not a segment's): their counts replace the merged ones.
            merged = [msgspec.structs.replace(merge_segment(previous.get(s.session_id), s, min_version=claimed_at_us),
                                              **counts[s.session_id]._asdict()) for s in segments]
            await self._step(MoveStep.READ, segments)

            # Synchronous even where a server profile turns async inserts on: the next move must read this row.
            await asyncio.to_thread(self._ch.insert, "sessions", as_columns(merged), column_names=COLUMNS,
                                    column_oriented=True, settings={"async_insert": 0})
            await asyncio.to_thread(store_signal_rows, self._ch, self._database, ids, signals,
                                    moved_before=previous.keys())
            await self._step(MoveStep.WRITTEN, segments)

            status = await conn.execute(
                DELETE_UNCHANGED,
                [r["session_id"] for r in rows], [r["segment_id"] for r in rows], [r["last_seen_at"] for r in rows],
            )
            deleted = int(status.rsplit(" ", 1)[1])
            await self._step(MoveStep.DELETED, segments)
        return BatchResult(claimed=len(rows), ended=deleted, kept=len(rows) - deleted)

    async def _step(self, step: MoveStep, segments: Sequence[ActiveSegment]) -> None:
        if self._on_step is not None:
            await self._on_step(step, segments)

    def _read_ended(self, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, EndedSession]:
        result = self._ch.query(READ_ENDED, parameters={"ids": session_ids})
        latest: dict[uuid.UUID, EndedSession] = {}
        for row in result.result_rows:
            known = latest.get(row[0])
            if known is not None and known.version >= row[9]:
                continue
            stored: dict[str, Any] = {column: tuple(value) if isinstance(value, list) else value
                                      for column, value in zip(COLUMNS, row, strict=True)}
            latest[row[0]] = EndedSession(**stored)
        return latest
