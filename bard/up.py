"""``bard up`` and ``bard migrate``: every part of Bard on one machine, in one process and the agent API's workers.

``bard up`` runs, on the embedded defaults: the agent API, the replayer API, the session ender, and in
embedded mode the consumer that plays ClickHouse's RabbitMQ engine (in server mode the engine consumes the queue
itself). The agent API, which needs no ClickHouse, is served by ``BARD_AGENT_API_WORKERS`` processes of its own
(:mod:`bard.workers`); everything else shares this process and its event loop, chDB included (one process may
open a chDB directory), at a lower CPU priority than the workers (``BARD_UP_NICE``). Production runs one part
per process instead (``bard agent-api``, ``bard consumer``, ...).

Stopping (SIGINT or SIGTERM) goes from the edge inwards: the HTTP servers and the agent API's workers stop
accepting and finish their requests, so no batch is accepted after its consumer is gone; then the consumer
inserts what it was delivered (and requeues what ClickHouse will not take); then the session ender; then the
connections close. A part that stops on its own (a server that cannot start, a consumer that crashed, a worker
that keeps dying) stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import uvicorn
from starlette.applications import Starlette

from agent_api.app import create_app as create_agent_app
from bard import demo_shop, postgres
from bard.broker import declare_topology
from bard.serving import uvicorn_options
from bard.settings import Settings, SettingsError, env_name, split_origins
from bard.workers import AgentWorkers
from clickhouse.client import client_for, create_client
from clickhouse.consumer import Consumer
from clickhouse.migrations import migrate as migrate_clickhouse
from replayer_api.app import create_app as create_replayer_app
from session_ender.service import start as start_session_ender
from session_ender.service import stop as stop_session_ender

log = logging.getLogger(__name__)



async def migrate_all(settings: Settings) -> None:
    """Create the PostgreSQL database if missing, then bring both schemas up to date."""
    await postgres.ensure_database(settings.postgres_url)
    conn = await asyncpg.connect(settings.postgres_url)
    try:
        await postgres.migrate(conn)
    finally:
        await conn.close()
    if settings.mode == "server":
        # ClickHouse's RabbitMQ engine consumes Bard's queue and does not declare it: declare it first, so the
        # engine table finds its queue even when `bard migrate` runs before any agent API has started.
        connection = await aio_pika.connect_robust(settings.amqp_url)
        try:
            async with connection.channel() as channel:
                await declare_topology(channel, settings)
        finally:
            await connection.close()
    await asyncio.to_thread(_migrate_warehouse, settings)


def _migrate_warehouse(settings: Settings) -> None:
    # Bound to "default": Bard's own database may not exist yet; migrate() creates it and names it in full.
    client = create_client(settings.resolved_clickhouse_url, database="default")
    try:
        migrate_clickhouse(client, settings, settings.resolved_clickhouse_database)
    finally:
        client.close()


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to ``bard up``, which stops every part in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _listen(settings: Settings, port_setting: str) -> socket.socket:
    port = getattr(settings, port_setting)
    try:
        return socket.create_server((settings.host, port))
    except OSError as exc:
        raise SettingsError(
            f"cannot listen on {settings.host}:{port} ({env_name(port_setting)}): {exc.strerror}"
        ) from None


def _url(settings: Settings, sock: socket.socket) -> str:
    return f"http://{settings.host}:{sock.getsockname()[1]}"


async def run_all(settings: Settings) -> None:
    """Migrate, then run every part until SIGINT or SIGTERM."""
    await migrate_all(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with contextlib.AsyncExitStack() as parts:
            await _run_parts(settings, stop, parts)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    log.info("bard stopped")


async def _run_parts(settings: Settings, stop: asyncio.Event, parts: contextlib.AsyncExitStack) -> None:
    # Everything registered on ``parts`` is undone in reverse order after the servers have stopped.
    agent_sock = _listen(settings, "agent_api_port")
    parts.callback(agent_sock.close)
    replayer_sock = _listen(settings, "replayer_api_port")
    parts.callback(replayer_sock.close)
    servers: list[tuple[str, Starlette, socket.socket]] = [
        ("replayer API", create_replayer_app(settings), replayer_sock),
    ]
    demo_sock = _listen_demo(settings)
    if demo_sock is not None:
        parts.callback(demo_sock.close)
        servers.append(("demo shop", demo_shop.create_app(settings), demo_sock))
    if settings.agent_api_workers == 0:  # served from this process, on its event loop
        servers.append(("agent API", create_agent_app(settings), agent_sock))

    watched: list[asyncio.Task[Any]] = []  # parts whose end, unasked, ends ``bard up``
    if settings.mode == "embedded":
        consumer_client = await asyncio.to_thread(client_for, settings)
        parts.push_async_callback(asyncio.to_thread, consumer_client.close)
        connection = await aio_pika.connect_robust(settings.amqp_url)
        parts.push_async_callback(connection.close)
        consumer = Consumer(settings, consumer_client, connection)
        await consumer.start()
        parts.push_async_callback(consumer.stop)
        watched.append(asyncio.create_task(consumer.wait(), name="bard consumer"))

    pool = await postgres.create_pool(settings.postgres_url, min_size=1, max_size=2)
    parts.push_async_callback(pool.close)
    ender_client = await asyncio.to_thread(client_for, settings)
    parts.push_async_callback(asyncio.to_thread, ender_client.close)
    scheduler = start_session_ender(settings, pool, ender_client)
    parts.push_async_callback(stop_session_ender, scheduler)  # lets a move in progress finish

    # Started last, once everything in this process serves: a worker's first answer means Bard is up.
    workers = AgentWorkers(settings, agent_sock, settings.agent_api_workers) if settings.agent_api_workers else None

    running = [
        _Server(uvicorn.Config(app, lifespan="on", **uvicorn_options(settings)))
        for _, app, _ in servers
    ]
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]), name=f"bard {name}")
        for server, (name, _, sock) in zip(running, servers, strict=True)
    ]
    stopped = asyncio.create_task(stop.wait())
    try:
        await _wait_started(running, [*tasks, *watched], stopped)
        if all(server.started for server in running):
            if workers is not None:
                await workers.start()
                watched.append(asyncio.create_task(workers.wait(), name="bard agent API workers"))
                await workers.yield_cpu(settings.up_nice)
            urls = [("agent API", _url(settings, agent_sock)), ("replayer API", _url(settings, replayer_sock))]
            if demo_sock is not None:
                urls.append(("demo shop", _url(settings, demo_sock)))
            print(_banner(settings, urls, has_consumer=settings.mode == "embedded"), flush=True)
            await asyncio.wait([*tasks, *watched, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server in running:
            server.should_exit = True
        if workers is not None:
            await workers.stop()  # before the consumer stops: every accepted batch is published by then
        await asyncio.gather(*tasks, return_exceptions=True)
        stopped.cancel()
        for task in watched:
            task.cancel()  # only the watch: consumer.wait() shields the consumer itself
        await asyncio.gather(*watched, return_exceptions=True)
    for task in tasks + [t for t in watched if t.done() and not t.cancelled()]:
        if task.exception() is not None:
            raise RuntimeError(f"{task.get_name()} failed") from task.exception()
    if not stop.is_set():
        raise RuntimeError("a part of Bard stopped on its own; see the log above")


def _listen_demo(settings: Settings) -> socket.socket | None:
    """The demo shop's socket, or None: it is a convenience for a first look, so a port in use (another Bard, a
    test) or a missing build is said in the log and Bard runs without it."""
    if not settings.demo_port:
        return None
    if not demo_shop.is_built():
        log.warning("the demo shop is not built (%s): ./bardctl up builds it; running without it", demo_shop.BUILD)
        return None
    try:
        sock = _listen(settings, "demo_port")
    except SettingsError as exc:
        log.warning("running without the demo shop: %s", exc)
        return None
    origins = split_origins(settings.agent_cors_origins)
    if "*" not in origins and _url(settings, sock) not in origins:
        log.warning("the demo shop at %s is not in BARD_AGENT_CORS_ORIGINS: browsers will not let it record",
                    _url(settings, sock))
    return sock


async def _wait_started(running: list[_Server], tasks: list[asyncio.Task[Any]], stopped: asyncio.Task[Any]) -> None:
    """Until every server has started (its lifespan ran), one of them ended, or a stop was asked."""
    while not all(server.started for server in running):
        if stopped.done() or any(task.done() for task in tasks):
            return
        await asyncio.sleep(0.02)


def _banner(settings: Settings, urls: list[tuple[str, str]], *, has_consumer: bool) -> str:
    lines = [f"Bard is up ({settings.mode} mode, ClickHouse at {_redacted(settings.resolved_clickhouse_url)})."]
    described: dict[str, Callable[[str], str]] = {
        "agent API": lambda url: f"{url}  (point bardrr here: GET /authenticate, POST /record)",
        "replayer API": lambda url: f"{url}  (the dashboard: open it in a browser; APIs under /v1 and /api)",
        "demo shop": lambda url: f"{url}  (a demo site recorded by bardrr: click around, then watch your session)",
    }
    for name, url in urls:
        lines.append(f"  {name + ':':<16}{described[name](url)}")
    lines.append(f"  {'consumer:':<16}" + ("embedded, queue " + settings.amqp_queue if has_consumer
                                           else "none (ClickHouse's RabbitMQ engine consumes the queue)"))
    lines.append(f"  {'session ender:':<16}every {settings.ender_interval_seconds:g} s")
    lines.append(_token_line(settings))
    lines.append("Stop with Ctrl-C.")
    return "\n".join(lines)


def _token_line(settings: Settings) -> str:
    stored = Path(settings.data_dir, "dashboard_token")
    if stored.exists() and stored.read_text().strip() == settings.dashboard_token:
        where = f"generated once, kept in {stored.resolve()}"
    else:
        where = f"from {env_name('dashboard_token')}"
    return (f"  dashboard token: {settings.dashboard_token}\n"
            f"    ({where}; sign in to the dashboard with it, or send it as 'Authorization: Bearer <token>')")


def _redacted(url: str) -> str:
    # Never print a ClickHouse password.
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"
