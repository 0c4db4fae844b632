"""The session ender as a scheduled job: inside ``bard up`` (:func:`start`) or alone (``bard session-ender``,
:func:`run`, which answers its metrics on ``BARD_ENDER_METRICS_PORT``; under ``bard up`` they are on the APIs'
``/metrics``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from clickhouse_connect.driver.client import Client

from bard.metrics import metrics_server
from bard.postgres import create_pool
from bard.settings import Settings
from clickhouse.client import client_for
from session_ender.ender import SessionEnder

log = logging.getLogger(__name__)

JOB_ID = "session_ender"


def start(
    settings: Settings, pool: asyncpg.Pool, ch_client: Client, *, ender: SessionEnder | None = None
) -> AsyncIOScheduler:
    """A started scheduler running the ender every ``ender_interval_seconds``, first at once.

    ``max_instances=1`` keeps a run from overlapping the previous one in this process (a tick that finds the
    job running is skipped); ``coalesce`` turns ticks missed while the loop was busy into one run. Other
    processes are kept apart by the row locks (see :mod:`session_ender.ender`). The caller ends it with
    :func:`stop` (or ``shutdown()``, which cancels a move in progress: safe, it rolls back). Must be called with
    the event loop running.
    """
    ender = ender or SessionEnder.from_settings(settings, pool, ch_client)
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        ender.expire_sessions,
        "interval",
        seconds=settings.ender_interval_seconds,
        id=JOB_ID,
        name="session ender",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    return scheduler


async def stop(scheduler: AsyncIOScheduler) -> None:
    """Stop scheduling, let a move in progress finish, then shut the scheduler down."""
    scheduler.pause()
    job = scheduler.get_job(JOB_ID)
    ender = getattr(job.func, "__self__", None) if job is not None else None
    if isinstance(ender, SessionEnder):
        await ender.idle()
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback (call_soon_threadsafe): let it run


async def run(settings: Settings) -> None:
    """``bard session-ender``: open PostgreSQL and ClickHouse, run the job until SIGINT or SIGTERM."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        with metrics_server(settings.host, settings.ender_metrics_port, "ender_metrics_port") as port:
            if port is not None:
                log.info("metrics on http://%s:%d/metrics", settings.host, port)
            pool = await create_pool(settings.postgres_url, min_size=1, max_size=2)
            try:
                ch_client = await asyncio.to_thread(client_for, settings)
                try:
                    await _serve(settings, pool, ch_client, stopping)
                finally:
                    await asyncio.to_thread(ch_client.close)
            finally:
                await pool.close()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _serve(settings: Settings, pool: asyncpg.Pool, ch_client: Client, stopping: asyncio.Event) -> None:
    scheduler = start(settings, pool, ch_client)
    log.info("session ender every %.3g s, grace %.3g s, batches of %d", settings.ender_interval_seconds,
             settings.ender_grace_seconds, settings.ender_batch_size)
    await stopping.wait()
    log.info("session ender stopping")
    await stop(scheduler)
