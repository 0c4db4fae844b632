"""The session ender on real PostgreSQL and chDB: expiry by the server clock, exact moves under concurrency,
crashes and late batches, as a reader of ``sessions FINAL`` sees them (DESIGN.md invariants 4 and 5)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from clickhouse_connect.driver.client import Client

from agent_api.pages import NO_PAGES, PagesSeen
from agent_api.sessions import UPSERT_ACTIVE_SESSIONS, SessionActivity, session_parameters
from agent_api.user_agents import UNKNOWN_CLIENT, ClientDevice
from bard.settings import Settings
from clickhouse.client import create_client
from session_ender import service
from session_ender.ender import MoveStep, RunResult, SessionEnder, StepHook
from session_ender.merge import ActiveSegment, EndedSession, merge_segment

services = [pytest.mark.postgres, pytest.mark.clickhouse]

MAX_IDLE_MS = 60_000
GRACE = timedelta(seconds=10)
IDLE = timedelta(milliseconds=MAX_IDLE_MS)
T0 = 1_700_000_000_000  # client milliseconds; deliberately far from the server's clock



class InjectedCrash(Exception):
    def __init__(self, step: MoveStep) -> None:
        super().__init__(f"crash injected at {step}")
        self.step = step


class Clock:
    """The ender's "now", moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def upsert(
    conn: asyncpg.Pool | asyncpg.Connection, session_id: uuid.UUID, *, first: int, last: int, events: int,
    errors: int = 0, app: str = "shop", seen_at: datetime | None = None, client: ClientDevice = UNKNOWN_CLIENT,
    pages: PagesSeen = NO_PAGES, clicks: int = 0,
) -> None:
    """The agent API's own upsert; ``seen_at`` then pins the server time where a test controls the clock."""
    activity = SessionActivity(app, first, last, MAX_IDLE_MS, events, errors, client, pages, clicks)
    await conn.execute(UPSERT_ACTIVE_SESSIONS, *session_parameters({session_id: activity}))
    if seen_at is not None:
        await conn.execute(
            "UPDATE active_sessions SET last_seen_at = $2::timestamptz,"
            " expires_at = $2::timestamptz + max_idle_ms * interval '1 millisecond' WHERE session_id = $1",
            session_id, seen_at,
        )


async def server_now(pool: asyncpg.Pool) -> datetime:
    return await pool.fetchval("SELECT now()")


def expired_clock(seen_at: datetime) -> Clock:
    return Clock(seen_at + IDLE + GRACE + timedelta(microseconds=1))


def ended(ch: Client) -> list[tuple[object, ...]]:
    """``sessions`` as the funnel and replayer read it."""
    return [tuple(r) for r in ch.query(
        "SELECT session_id, app_name, toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(ended_at),"
        " duration_ms, event_count, error_count, date FROM sessions FINAL ORDER BY session_id"
    ).result_rows]


def one_ended(ch: Client, session_id: uuid.UUID) -> dict[str, object]:
    rows = [r for r in ended(ch) if r[0] == session_id]
    assert len(rows) == 1, rows
    keys = ("session_id", "app_name", "started_at", "ended_at", "duration_ms", "event_count", "error_count", "date")
    return dict(zip(keys, rows[0], strict=True))


async def active(pool: asyncpg.Pool) -> dict[uuid.UUID, asyncpg.Record]:
    return {r["session_id"]: r for r in await pool.fetch("SELECT * FROM active_sessions")}


def make_ender(
    settings: Settings, pool: asyncpg.Pool, ch: Client, clock: Clock, *, batch_size: int | None = None,
    on_step: StepHook | None = None,
) -> SessionEnder:
    return SessionEnder(pool, ch, grace_seconds=settings.ender_grace_seconds,
                        batch_size=batch_size or settings.ender_batch_size, clock=clock, on_step=on_step)


# --- the merge, without services -------------------------------------------------------------------------------

SID, SEG_A, SEG_B = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def segment(seg: uuid.UUID, first: int, last: int, events: int, errors: int) -> ActiveSegment:
    return ActiveSegment(session_id=SID, segment_id=seg, app_name="shop", first_event_at=first, last_event_at=last,
                         event_count=events, error_count=errors)


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        pytest.param([segment(SEG_A, 10, 20, 5, 1)], (10, 20, 5, 1, 1), id="first-move"),
        pytest.param([segment(SEG_A, 10, 20, 5, 1)] * 2, (10, 20, 5, 1, 1), id="same-snapshot-twice"),
        pytest.param([segment(SEG_A, 10, 20, 5, 1), segment(SEG_A, 10, 30, 8, 2)], (10, 30, 8, 2, 1),
                     id="newer-snapshot-replaces"),
        pytest.param([segment(SEG_A, 10, 20, 5, 1), segment(SEG_B, 5, 40, 3, 0)], (5, 40, 8, 1, 2),
                     id="late-segment-adds"),
        pytest.param([segment(SEG_A, 10, 20, 5, 1), segment(SEG_B, 25, 40, 3, 0), segment(SEG_A, 10, 20, 5, 1)],
                     (10, 40, 8, 1, 2), id="rerun-of-first-after-late"),
    ],
)
def test_merge_is_exact_when_repeated(segments: list[ActiveSegment], expected: tuple[int, ...]) -> None:
    session: EndedSession | None = None
    versions = []
    for seg in segments:
        session = merge_segment(session, seg, min_version=0)
        versions.append(session.version)
    assert session is not None
    assert (session.started_at, session.ended_at, session.event_count, session.error_count,
            len(session.segments)) == expected
    assert versions == sorted(set(versions)), "every merge raises the version"


@pytest.mark.parametrize(
    ("segments", "segment_counts"),
    [
        pytest.param((), (), id="no-segments"),
        pytest.param((SEG_A,), (), id="segments-without-counts"),
    ],
)
def test_a_row_written_by_a_loader_keeps_its_counts(
    segments: tuple[uuid.UUID, ...], segment_counts: tuple[int, ...]
) -> None:
    loaded = EndedSession(session_id=SID, app_name="shop", started_at=10, ended_at=20, event_count=40,
                          error_count=4, segments=segments, segment_event_counts=segment_counts,
                          segment_error_counts=segment_counts, version=1)
    late = segment(SEG_B, 30, 50, 5, 1)
    once = merge_segment(loaded, late, min_version=0)
    twice = merge_segment(once, late, min_version=0)
    assert (once.event_count, once.error_count, once.ended_at) == (45, 5, 50)
    assert (twice.event_count, twice.error_count) == (45, 5)


def test_version_follows_the_claim_clock() -> None:
    first = merge_segment(None, segment(SEG_A, 1, 2, 1, 0), min_version=1_000)
    assert first.version == 1_000
    assert merge_segment(first, segment(SEG_B, 3, 4, 1, 0), min_version=5_000).version == 5_000
    assert merge_segment(first, segment(SEG_B, 3, 4, 1, 0), min_version=10).version == 1_001


# --- expiry --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("past_boundary", "first", "last", "is_ended"),
    [
        pytest.param(timedelta(0), T0, T0 + 5_000, False, id="exactly-max-idle-plus-grace"),
        pytest.param(timedelta(microseconds=-1), T0, T0 + 5_000, False, id="just-before"),
        pytest.param(timedelta(microseconds=1), T0, T0 + 5_000, True, id="just-after"),
        pytest.param(-GRACE, T0, T0 + 5_000, False, id="idle-but-within-grace"),
        # Client clocks never decide: events stamped long ago or far ahead change nothing.
        pytest.param(timedelta(0), 0, 1, False, id="ancient-client-times-still-active"),
        pytest.param(timedelta(microseconds=1), 4_000_000_000_000, 4_000_000_000_001, True,
                     id="future-client-times-still-end"),
    ],
)
@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_expiry_is_decided_by_the_server_clock(
    pg_pool: asyncpg.Pool, ch: Client, settings: Settings, past_boundary: timedelta, first: int, last: int,
    is_ended: bool,
) -> None:
    seen_at = await server_now(pg_pool)
    sid = uuid.uuid4()
    await upsert(pg_pool, sid, first=first, last=last, events=3, seen_at=seen_at)
    clock = Clock(seen_at + IDLE + GRACE + past_boundary)

    result = await make_ender(settings, pg_pool, ch, clock).expire_sessions()

    assert result.ended == int(is_ended)
    assert (sid in await active(pg_pool)) is not is_ended
    assert [r[0] for r in ended(ch)] == ([sid] if is_ended else [])


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_default_clock_is_postgres_now(pg_pool: asyncpg.Pool, ch: Client, settings: Settings) -> None:
    now = await server_now(pg_pool)
    old, fresh = uuid.uuid4(), uuid.uuid4()
    await upsert(pg_pool, old, first=T0, last=T0, events=1, seen_at=now - IDLE - GRACE - timedelta(seconds=1))
    await upsert(pg_pool, fresh, first=T0, last=T0, events=1)
    ender = SessionEnder.from_settings(settings, pg_pool, ch)

    assert (await ender.expire_sessions()).ended == 1
    assert list(await active(pg_pool)) == [fresh]
    assert [r[0] for r in ended(ch)] == [old]


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_a_move_writes_what_readers_expect(pg_pool: asyncpg.Pool, ch: Client, settings: Settings) -> None:
    seen_at = await server_now(pg_pool)
    sid = uuid.uuid4()
    await upsert(pg_pool, sid, first=T0 + 500, last=T0 + 90_000, events=10, errors=2, app="checkout",
                 seen_at=seen_at)
    await upsert(pg_pool, sid, first=T0, last=T0 + 120_000, events=5, errors=1, seen_at=seen_at)

    await make_ender(settings, pg_pool, ch, expired_clock(seen_at)).expire_sessions()

    assert one_ended(ch, sid) == {
        "session_id": sid, "app_name": "checkout", "started_at": T0, "ended_at": T0 + 120_000,
        "duration_ms": 120_000, "event_count": 15, "error_count": 3,
        "date": datetime.fromtimestamp(T0 / 1000, UTC).date(),
    }


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_a_moved_session_takes_its_click_targets_along(
    pg_pool: asyncpg.Pool, ch: Client, settings: Settings
) -> None:
    seen_at = await server_now(pg_pool)
    moved, staying = uuid.uuid4(), uuid.uuid4()
    for sid, at in ((moved, seen_at), (staying, None)):
        await upsert(pg_pool, sid, first=T0, last=T0 + 10, events=2, seen_at=at)
        await pg_pool.execute("INSERT INTO active_session_click_targets VALUES ($1, $2, true, '{\"57\": \"Cart\"}')",
                              sid, T0)

    assert (await make_ender(settings, pg_pool, ch, expired_clock(seen_at)).expire_sessions()).ended == 1

    assert [r[0] for r in await pg_pool.fetch("SELECT session_id FROM active_session_click_targets")] == [staying]


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_one_run_moves_every_batch(pg_pool: asyncpg.Pool, ch: Client, settings: Settings) -> None:
    seen_at = await server_now(pg_pool)
    ids = [uuid.uuid4() for _ in range(25)]
    for i, sid in enumerate(ids):
        await upsert(pg_pool, sid, first=T0, last=T0 + i, events=i + 1, seen_at=seen_at)

    result = await make_ender(settings, pg_pool, ch, expired_clock(seen_at), batch_size=10).expire_sessions()

    assert (result.ended, result.kept, result.batches) == (25, 0, 3)
    assert await active(pg_pool) == {}
    assert sorted((r[0], r[5]) for r in ended(ch)) == sorted((sid, i + 1) for i, sid in enumerate(ids))


# --- concurrency ---------------------------------------------------------------------------------------------


async def wait_until_blocked_on_lock(pool: asyncpg.Pool, pid: int) -> None:
    """Return once backend ``pid`` waits on a row lock (a synchronisation point, not a timing assertion)."""
    async with asyncio.timeout(30):
        while await pool.fetchval("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid) != "Lock":
            await asyncio.sleep(0.01)


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_a_batch_arriving_during_a_move_keeps_the_session_active(
    pg_pool: asyncpg.Pool, ch: Client, settings: Settings
) -> None:
    seen_at = await server_now(pg_pool)
    sid = uuid.uuid4()
    await upsert(pg_pool, sid, first=T0, last=T0 + 1_000, events=10, errors=1, seen_at=seen_at)
    first_segment = (await active(pg_pool))[sid]["segment_id"]
    late_upsert: list[asyncio.Task[None]] = []

    async with pg_pool.acquire() as agent_conn:
        agent_pid = agent_conn.get_server_pid()

        async def batch_arrives(step: MoveStep, segments: Sequence[ActiveSegment]) -> None:
            if step is MoveStep.WRITTEN and not late_upsert:
                # The agent API counts a batch for this session while the move is between write and delete.
                late_upsert.append(asyncio.create_task(
                    upsert(agent_conn, sid, first=T0 + 2_000, last=T0 + 3_000, events=4, errors=2)))
                await wait_until_blocked_on_lock(pg_pool, agent_pid)

        clock = expired_clock(seen_at)
        result = await make_ender(settings, pg_pool, ch, clock, on_step=batch_arrives).expire_sessions()
        await late_upsert[0]

    assert result.ended == 1
    still_active = (await active(pg_pool))[sid]
    assert still_active["segment_id"] != first_segment, "the batch starts a new segment of the session"
    assert (still_active["event_count"], still_active["error_count"]) == (4, 2)
    assert one_ended(ch, sid)["event_count"] == 10

    # Once the late segment expires in turn, readers see one session with every event counted once.
    clock.now = still_active["last_seen_at"] + IDLE + GRACE + timedelta(microseconds=1)
    assert (await make_ender(settings, pg_pool, ch, clock).expire_sessions()).ended == 1
    merged = one_ended(ch, sid)
    assert (merged["started_at"], merged["ended_at"], merged["event_count"], merged["error_count"]) == (
        T0, T0 + 3_000, 14, 3)
    assert await active(pg_pool) == {}


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_two_enders_at_once_move_each_session_exactly_once(
    pg_pool: asyncpg.Pool, ch: Client, settings: Settings
) -> None:
    seen_at = await server_now(pg_pool)
    ids = {uuid.uuid4(): n for n in range(1, 61)}
    for sid, n in ids.items():
        await upsert(pg_pool, sid, first=T0, last=T0 + n, events=n, errors=n % 3, seen_at=seen_at)
    clock = expired_clock(seen_at)
    both_claimed = asyncio.Barrier(2)
    moved: dict[str, list[uuid.UUID]] = {"a": [], "b": []}

    def recorder(name: str) -> StepHook:
        async def on_step(step: MoveStep, segments: Sequence[ActiveSegment]) -> None:
            if step is MoveStep.CLAIMED and not moved[name]:
                await both_claimed.wait()  # both enders hold a claimed batch at the same moment
            if step is MoveStep.DELETED:
                moved[name].extend(s.session_id for s in segments)
        return on_step

    other_pool = await asyncpg.create_pool(settings.postgres_url, min_size=1, max_size=2)
    other_ch = create_client(settings.resolved_clickhouse_url, database=settings.resolved_clickhouse_database)
    try:
        a = make_ender(settings, pg_pool, ch, clock, batch_size=7, on_step=recorder("a"))
        b = make_ender(settings, other_pool, other_ch, clock, batch_size=7, on_step=recorder("b"))
        results: tuple[RunResult, RunResult] = await asyncio.gather(a.expire_sessions(), b.expire_sessions())
    finally:
        await other_pool.close()
        other_ch.close()

    assert moved["a"] and moved["b"], "both enders moved sessions"
    assert not set(moved["a"]) & set(moved["b"])
    assert sorted(moved["a"] + moved["b"]) == sorted(ids)
    assert sum(r.ended for r in results) == len(ids)
    assert await active(pg_pool) == {}
    written = ch.query("SELECT count() FROM sessions").result_rows[0][0]  # without FINAL: every insert counts
    assert written == len(ids), "each session written once"
    assert {r[0]: (r[5], r[6]) for r in ended(ch)} == {sid: (n, n % 3) for sid, n in ids.items()}


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_a_stalled_ender_loses_its_rows_and_its_late_write_never_wins(
    pg_pool: asyncpg.Pool, ch: Client, settings: Settings
) -> None:
    seen_at = await server_now(pg_pool)
    sid = uuid.uuid4()
    await upsert(pg_pool, sid, first=T0, last=T0 + 1_000, events=10, seen_at=seen_at)
    clock = expired_clock(seen_at)
    stalled_at_read, other_moved = asyncio.Event(), asyncio.Event()

    async def stall(step: MoveStep, segments: Sequence[ActiveSegment]) -> None:
        if step is MoveStep.READ:
            stalled_at_read.set()
            await other_moved.wait()  # hangs after reading, before writing its (by then stale) merge

    stalled = SessionEnder(pg_pool, ch, grace_seconds=settings.ender_grace_seconds, batch_size=10, clock=clock,
                           on_step=stall, lock_idle_timeout_seconds=0.2)
    stalled_run = asyncio.create_task(stalled.expire_sessions())
    other_ch = create_client(settings.resolved_clickhouse_url, database=settings.resolved_clickhouse_database)
    try:
        other = make_ender(settings, pg_pool, other_ch, clock)
        async with asyncio.timeout(30):
            await stalled_at_read.wait()
            # A batch for the session waits on the stalled ender's row lock until PostgreSQL ends that idle
            # transaction; then it is counted, and another ender moves the session.
            await upsert(pg_pool, sid, first=T0, last=T0 + 2_000, events=5, seen_at=seen_at)
            assert (await other.expire_sessions()).ended == 1
        other_moved.set()
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await stalled_run  # it writes its stale row to ClickHouse, then finds its transaction gone
    finally:
        other_moved.set()
        other_ch.close()

    assert ch.query("SELECT count() FROM sessions").result_rows[0][0] == 2, "both enders wrote"
    merged = one_ended(ch, sid)
    assert (merged["event_count"], merged["ended_at"]) == (15, T0 + 2_000)
    assert await active(pg_pool) == {}


# --- crashes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", list(MoveStep), ids=[s.value for s in MoveStep])
@pytest.mark.parametrize("late", [False, True], ids=["first-move", "late-segment-move"])
@pytest.mark.parametrize("batch_between", [False, True], ids=["rerun", "batch-then-rerun"])
@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_a_crash_at_any_step_then_a_rerun_is_exact(
    pg_pool: asyncpg.Pool, ch: Client, settings: Settings, step: MoveStep, late: bool, batch_between: bool
) -> None:
    seen_at = await server_now(pg_pool)
    sid, bystander = uuid.uuid4(), uuid.uuid4()
    clock = expired_clock(seen_at)
    expected_events, expected_errors = 0, 0
    if late:  # the session already ended once; the crashing move merges its late segment
        await upsert(pg_pool, sid, first=T0, last=T0 + 1_000, events=7, errors=1, seen_at=seen_at)
        await make_ender(settings, pg_pool, ch, clock).expire_sessions()
        expected_events, expected_errors = 7, 1
    await upsert(pg_pool, sid, first=T0 + 5_000, last=T0 + 6_000, events=10, errors=2, seen_at=seen_at)
    await upsert(pg_pool, bystander, first=T0, last=T0 + 9, events=3, seen_at=seen_at)
    expected_events, expected_errors = expected_events + 10, expected_errors + 2

    async def crash(at: MoveStep, segments: Sequence[ActiveSegment]) -> None:
        if at is step:
            raise InjectedCrash(at)

    with pytest.raises(InjectedCrash):
        await make_ender(settings, pg_pool, ch, clock, on_step=crash).expire_sessions()
    assert set(await active(pg_pool)) == {sid, bystander}, "a crashed move deletes nothing"

    if batch_between:  # the agent API counts a batch before the rerun: the same segment grows
        await upsert(pg_pool, sid, first=T0 + 6_500, last=T0 + 8_000, events=5, errors=1, seen_at=seen_at)
        expected_events, expected_errors = expected_events + 5, expected_errors + 1

    result = await make_ender(settings, pg_pool, ch, clock).expire_sessions()

    assert result.ended == 2
    assert await active(pg_pool) == {}
    merged = one_ended(ch, sid)
    assert (merged["event_count"], merged["error_count"]) == (expected_events, expected_errors)
    assert merged["started_at"] == (T0 if late else T0 + 5_000)
    assert merged["ended_at"] == (T0 + 8_000 if batch_between else T0 + 6_000)
    assert one_ended(ch, bystander)["event_count"] == 3
    # After ClickHouse merges the parts, plain reads agree with FINAL.
    ch.command("OPTIMIZE TABLE sessions FINAL")
    assert ch.query("SELECT count(), sum(event_count) FROM sessions").result_rows[0] == (2, expected_events + 3)


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_a_late_batch_after_the_end_gives_one_merged_session(
    pg_pool: asyncpg.Pool, ch: Client, settings: Settings
) -> None:
    seen_at = await server_now(pg_pool)
    sid = uuid.uuid4()
    await upsert(pg_pool, sid, first=T0 + 1_000, last=T0 + 2_000, events=10, errors=1, seen_at=seen_at)
    clock = expired_clock(seen_at)
    await make_ender(settings, pg_pool, ch, clock).expire_sessions()

    # A late batch (its events even stamped before the session's start) reopens the session as a new segment.
    later = seen_at + timedelta(minutes=5)
    await upsert(pg_pool, sid, first=T0, last=T0 + 500, events=3, errors=0, seen_at=later)
    await upsert(pg_pool, sid, first=T0 + 4_000, last=T0 + 9_000, events=6, errors=2, seen_at=later)
    clock.now = later + IDLE + GRACE + timedelta(microseconds=1)
    assert (await make_ender(settings, pg_pool, ch, clock).expire_sessions()).ended == 1

    merged = one_ended(ch, sid)
    assert (merged["started_at"], merged["ended_at"], merged["duration_ms"]) == (T0, T0 + 9_000, 9_000)
    assert (merged["event_count"], merged["error_count"]) == (19, 3)
    segments = ch.query("SELECT segments FROM sessions FINAL WHERE session_id = {s:UUID}",
                        parameters={"s": sid}).result_rows[0][0]
    assert len(segments) == 2


# --- the service ---------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_the_scheduler_runs_on_its_interval_without_overlapping(
    pg_pool: asyncpg.Pool, ch: Client, settings: Settings
) -> None:
    seen_at = await server_now(pg_pool)
    sid = uuid.uuid4()
    await upsert(pg_pool, sid, first=T0, last=T0, events=1, seen_at=seen_at)
    fast = settings.replace(ender_interval_seconds=0.02)

    class ObservedEnder(SessionEnder):
        runs = 0
        running = 0
        most_running = 0
        release_first = asyncio.Event()
        third_run = asyncio.Event()

        async def expire_sessions(self) -> RunResult:
            self.runs += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            try:
                if self.runs == 1:
                    await self.release_first.wait()
                return await super().expire_sessions()
            finally:
                self.running -= 1
                if self.runs >= 3:
                    self.third_run.set()

    ender = ObservedEnder(pg_pool, ch, grace_seconds=fast.ender_grace_seconds, batch_size=fast.ender_batch_size,
                          clock=expired_clock(seen_at))
    skipped = asyncio.Event()
    skips = 0

    def on_skip(event: JobEvent) -> None:
        nonlocal skips
        skips += 1
        if skips >= 2:
            skipped.set()

    scheduler = service.start(fast, pg_pool, ch, ender=ender)
    scheduler.add_listener(on_skip, EVENT_JOB_MAX_INSTANCES)
    try:
        job = scheduler.get_job(service.JOB_ID)
        assert job.trigger.interval == timedelta(seconds=0.02)
        assert (job.max_instances, job.coalesce) == (1, True)
        async with asyncio.timeout(30):
            await skipped.wait()  # ticks came while the first run was still going, and were skipped
            ender.release_first.set()
            await ender.third_run.wait()  # and the job keeps running on its interval afterwards
    finally:
        ender.release_first.set()
        await service.stop(scheduler)
    assert not scheduler.running
    assert ender.running == 0, "stop() waited for the run in progress"
    assert ender.most_running == 1
    assert await active(pg_pool) == {}
    assert [r[0] for r in ended(ch)] == [sid]


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_run_moves_sessions_until_sigterm(
    pg_pool: asyncpg.Pool, ch: Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    now = await server_now(pg_pool)
    sid = uuid.uuid4()
    await upsert(pg_pool, sid, first=T0, last=T0, events=2, seen_at=now - IDLE - GRACE - timedelta(seconds=1))
    caplog.set_level("INFO", logger="session_ender")

    running = asyncio.create_task(service.run(settings.replace(ender_interval_seconds=3600)))
    async with asyncio.timeout(30):
        while not await active(pg_pool) == {}:
            await asyncio.sleep(0.01)
        while not any("1 ended" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.01)
        signal.raise_signal(signal.SIGTERM)
        await running

    assert [r[0] for r in ended(ch)] == [sid]
    run_lines = [r.getMessage() for r in caplog.records if r.name == "session_ender.ender"]
    assert len(run_lines) == 1 and "1 ended" in run_lines[0] and " s" in run_lines[0]
