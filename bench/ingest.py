"""Benchmark: ingest through the real processes, from bardrr-shaped HTTP batches to rows in ClickHouse.

    .venv/bin/python bench/ingest.py --agents 200 --rate 50 --duration 30 --workers 2

What runs (each a real ``bard`` command, on throwaway names: a PostgreSQL database, an exchange and queue, a
data directory with a fresh chDB):

- ``bard migrate``; ``bard agent-api --workers W`` (uvicorn worker processes); ``bard consumer`` (the embedded
  consumer and chDB, one process, as in ``bard up``);
- this process: N simulated agents, each one session on keep-alive connections of its own, sending 10-event
  batches at ``--rate`` events/s, open loop (each batch leaves when it is due, answered or not, and its latency
  is timed from then: see ``send_batches``). The first batch carries Meta and a FullSnapshot of tens of KB
  (``--snapshot-products``); later ones mouse moves and scrolls with a marked button click, a custom event and
  a console error now and then, and in every third batch a click the agent left unmarked (on the link, or on a
  plain node), which the agent API looks up in PostgreSQL. The agents start at random moments of the first
  ``--ramp`` seconds (real users do not all open the page in the same instant), then the load runs
  ``--duration`` seconds more at its full rate; at most ``--max-batches`` per agent. Each agent gets its token
  from ``/authenticate`` first (the bench raises ``BARD_AUTHENTICATE_RATE_PER_MINUTE``: every agent comes from
  127.0.0.1), and sends a browser's ``User-Agent``, one of :data:`BROWSER_USER_AGENTS` (40 distinct strings, as
  the agent API reads and caches each).

When the load ends, the bench waits until the queue is empty, reads the peak memory of the processes, stops the
consumer (which inserts what it holds), then opens the chDB directory itself and reports:

- events/s accepted: events in 2xx answers / load time; ``/record`` latency p50, p99, max, as the client saw it
  and inside the agent API (its ``Server-Timing: record;dur=``), and any other ``Server-Timing`` entry by name
  (stage timings, when an investigation adds them to the agent API); the same for the requests sent after the
  ramp (the load at its full rate), and the client p99 of each 5 s of the run;
- the CPU of each part over the load (as ``bench/cpu_split.py`` reads it) and the CPU Bard's parts spent per
  batch; the generator's own CPU and how late its event loop ran;
- events/s landed: events visible in ``events`` (``FINAL``) / (last ``inserted_at`` - first ``received_at``),
  and whether every accepted event landed exactly once;
- accepted-to-queryable lag p50, p99, max: ``inserted_at - received_at`` per event (both server clocks);
- peak RSS (VmHWM) of the consumer process and of the largest agent API worker.

The load generator shares the machine with what it measures: on 2 cores it takes CPU from the agent API. So
by default (``--client lean``) each agent is a bare asyncio protocol on one keep-alive connection, writing
pre-built request heads and parsing answers with httptools (uvicorn's parser), on uvloop: about 60 % of
aiohttp's CPU per request, measured side by side (BENCHMARKS.md). Real agents run in browsers on other
machines and cost Bard's machine nothing. ``--client aiohttp`` keeps the earlier generator for comparison.

``--consumer-only --events N`` measures the consumer alone: N events, built into queue messages by the agent
API's own code (``parse_batch`` then ``ingest_rows``) for ``--agents`` sessions, are published straight to the
queue first, one message per batch (the agent API's worst case: a lone batch; under load it sends a group's rows
as one message); then the consumer (the ``Consumer`` class ``bard consumer`` runs, here in the bench's process so
that its CPU time can be read) takes them all, and the bench reports the wall time, the events/s and the CPU
time per message (chDB's insert threads included). No HTTP, no lag (the messages waited on purpose).

    .venv/bin/python bench/ingest.py --consumer-only --events 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import httptools
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent_api.batches import parse_batch  # noqa: E402
from bard import postgres  # noqa: E402
from bard.broker import declare_topology  # noqa: E402
from bard.settings import Settings  # noqa: E402
from clickhouse.client import create_client  # noqa: E402
from clickhouse.consumer import Consumer  # noqa: E402
from tests import bardrr_events as bardrr  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import machine  # noqa: E402
from cpu_split import shares_since, snapshot  # noqa: E402

BARD = Path(sys.executable).with_name("bard")
EVENTS_PER_BATCH = 10


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    sent_s: list[float] = field(default_factory=list)  # when each request left, seconds into the load
    server_sent_s: list[float] = field(default_factory=list)  # the same, for each entry of server_ms
    server_ms: list[float] = field(default_factory=list)  # the agent API's own Server-Timing
    # Every other Server-Timing entry, by name (stages of a /record, when the agent API reports them)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[int | str] = field(default_factory=Counter)
    events_accepted: int = 0
    accepted_after_ramp: int = 0
    batches_sent: int = 0
    started: float = 0.0  # perf_counter's clock, as every moment of the load
    ended: float = 0.0
    cpu_seconds: float = 0.0  # the load generator's own CPU time
    system_seconds: float = 0.0  # the part of it in the kernel (sockets)
    # How late the generator's own event loop wakes a 5 ms timer: what it adds to the latencies it measures.
    loop_lag_ms: list[float] = field(default_factory=list)
    # How late each batch was, from when it was due: until its task ran (the generator's event loop behind), and
    # until its bytes were written (that, plus waiting for a free connection of the agent's and opening one).
    start_late_ms: list[float] = field(default_factory=list)
    write_late_ms: list[float] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    # With --readers: what the dashboard's readers were answered, and how long each answer took
    reads_ms: list[float] = field(default_factory=list)
    read_statuses: Counter[int | str] = field(default_factory=Counter)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=200, help="concurrent simulated agents (sessions)")
    parser.add_argument("--rate", type=float, default=50.0, help="events/s each agent sends")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load after the ramp")
    parser.add_argument("--ramp", type=float, default=5.0,
                        help="seconds over which the agents start (each at a random moment), before --duration; "
                             "throughput and latency are also reported for the requests after it")
    parser.add_argument("--max-batches", type=int, default=100_000, help="batches per agent, at most")
    parser.add_argument("--workers", type=int, default=2, help="agent API processes")
    parser.add_argument("--snapshot-products", type=int, default=30, help="size of the full snapshot (30: ~26 KB)")
    parser.add_argument("--batch-rows", type=int, default=None, help="BARD_CONSUMER_BATCH_ROWS for the consumer")
    parser.add_argument("--batch-seconds", type=float, default=None, help="BARD_CONSUMER_BATCH_SECONDS")
    parser.add_argument("--setting", action="append", default=[], metavar="BARD_NAME=VALUE",
                        help="another Bard setting for every process (repeatable)")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for the queue to empty")
    parser.add_argument("--postgres", default="postgresql://localhost:5432", help="PostgreSQL server")
    parser.add_argument("--amqp", default="amqp://guest:guest@localhost:5672/", help="RabbitMQ URL")
    parser.add_argument("--port", type=int, default=0, help="agent API port (default: a free one)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--consumer-only", action="store_true", help="measure the consumer alone (see above)")
    parser.add_argument("--up", action="store_true",
                        help="run `bard up` (every part in one process) instead of separate agent API and consumer")
    parser.add_argument("--client", choices=("lean", "aiohttp"), default="lean",
                        help="the agents' HTTP client (see above)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the load generator's event loop")
    parser.add_argument("--schedule", choices=("open", "closed"), default="open",
                        help="open loop, latency from when each batch was due; or closed loop (see send_batches)")
    parser.add_argument("--connections", type=int, default=6,
                        help="connections each agent may open at once in the open loop (a browser's 6 per host)")
    parser.add_argument("--readers", type=int, default=0,
                        help="with --up: dashboard users reading at once during the load, each replaying one "
                             "active session after another (GET /v1/sessions/{id}/events), from the replayer API "
                             "that shares bard up's main process")
    parser.add_argument("--events", type=int, default=200_000, help="events to preload with --consumer-only")
    return parser.parse_args()


def run_loop(coroutine: Any, loop: str) -> Any:
    """Run the load on asyncio's own event loop or uvloop's (what uvicorn runs the agent API on)."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(args: argparse.Namespace, data_dir: Path, suffix: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BARD_")}
    env.update({
        "BARD_DATA_DIR": str(data_dir),
        "BARD_POSTGRES_URL": f"{args.postgres}/bard_bench_{suffix}",
        "BARD_AMQP_URL": args.amqp,
        "BARD_AMQP_EXCHANGE": f"bard.bench.{suffix}",
        "BARD_AMQP_QUEUE": f"bard.bench.{suffix}",
        "BARD_AGENT_API_PORT": str(port),
        "BARD_JWT_SECRET": uuid.uuid4().hex,
        "BARD_DASHBOARD_TOKEN": uuid.uuid4().hex,
        "BARD_AUTHENTICATE_RATE_PER_MINUTE": "1000000",
        "BARD_LOG_LEVEL": "WARNING",
        "BARD_CONSUMER_METRICS_PORT": str(free_port()),
        "BARD_ENDER_METRICS_PORT": str(free_port()),
    })
    if args.batch_rows is not None:
        env["BARD_CONSUMER_BATCH_ROWS"] = str(args.batch_rows)
    if args.batch_seconds is not None:
        env["BARD_CONSUMER_BATCH_SECONDS"] = str(args.batch_seconds)
    for setting in args.setting:
        name, sep, value = setting.partition("=")
        if not sep or not name.startswith("BARD_"):
            raise SystemExit(f"--setting wants BARD_NAME=VALUE, got {setting!r}")
        env[name] = value
    return env


def first_batch(start: int, products: int) -> list[dict[str, Any]]:
    events = bardrr.first_batch(start)
    events[1] = bardrr.full_snapshot(start + 1, products=products)
    return events


def later_batch(start: int, n: int) -> list[dict[str, Any]]:
    events = bardrr.later_batch(start, size=EVENTS_PER_BATCH)
    # Now and then what funnels look for and what error counts count.
    if n % 5 == 0:
        events[3] = bardrr.button_click(start + 160)
    if n % 7 == 0:
        events[6] = bardrr.custom_event(start + 310)
    if n % 11 == 0:
        events[8] = bardrr.console_error(start + 410)
    if n % 3 == 0:  # a click the agent leaves unmarked, on the link or a plain node: looked up in PostgreSQL
        events[5] = bardrr.link_click(start + 260, node_id=bardrr.LINK_ID if n % 6 == 0 else 7)
    return events


class Answer:
    """What a load generator needs of an HTTP answer."""

    __slots__ = ("status", "timing", "body")

    def __init__(self, status: int | str, timing: str = "", body: bytes = b"") -> None:
        self.status, self.timing, self.body = status, timing, body


class LeanConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time, as an agent's ``fetch`` does; the
    answer is parsed by httptools. Only what the bench needs: status, Server-Timing, body."""

    def __init__(self) -> None:
        self._transport: Any = None  # asyncio's Transport, or uvloop's (which is no subclass of it)
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._timing = b""
        self._body: list[bytes] = []

    @classmethod
    async def open(cls, host: str, port: int) -> LeanConnection:
        _, protocol = await asyncio.get_running_loop().create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("the connection closed before the answer"))

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"server-timing":
            self._timing = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            answer = Answer(self._parser.get_status_code(), self._timing.decode(), b"".join(self._body))
            self._waiter.set_result(answer)

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def request(self, head: bytes, body: bytes = b"") -> Answer:
        assert self._transport is not None
        self._timing, self._body = b"", []
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.writelines((head, body))
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class LeanAgentClient:
    """An agent's requests over :class:`LeanConnection` s: one per request in flight, up to ``connections``
    (a browser opens at most 6 to one host), each kept alive and reopened when the server closed it. A request
    that finds them all busy waits for one, and that wait counts in its latency."""

    def __init__(self, host: str, port: int, connections: int = 6) -> None:
        self._host, self._port = host, port
        self._idle: list[LeanConnection] = []
        self._free = asyncio.Semaphore(connections)

    async def send(self, head: bytes, body: bytes = b"", on_write: Any = None) -> Answer:
        async with self._free:
            connection = self._idle.pop() if self._idle else None
            try:
                if connection is None or not connection.is_open:
                    connection = await LeanConnection.open(self._host, self._port)
                if on_write is not None:
                    on_write()
                async with asyncio.timeout(30):
                    answer = await connection.request(head, body)
            except (ConnectionError, TimeoutError) as exc:
                if connection is not None:
                    connection.close()
                return Answer(type(exc).__name__)
            self._idle.append(connection)
            return answer

    def close(self) -> None:
        for connection in self._idle:
            connection.close()


BROWSER_USER_AGENTS = [
    template.format(version=version)
    for template in (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{version}.0.0.0 "
        "Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/{version}.0 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS {version}_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/{version}.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{version}.0.0.0 "
        "Mobile Safari/537.36",
    )
    for version in range(120, 130)
]


def agent_headers(token: str, app_name: str) -> dict[str, str]:
    return {**bardrr.record_headers(token, app_name), "User-Agent": random.choice(BROWSER_USER_AGENTS)}


def request_head(method: str, path: str, host: str, headers: dict[str, str], length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def lean_agent(base: str, args: argparse.Namespace, load: Load, deadline: float, app_name: str) -> None:
    host_port = base.removeprefix("http://")
    host, _, port = host_port.partition(":")
    client = LeanAgentClient(host, int(port), connections=1 if args.schedule == "closed" else args.connections)
    await start_moment(args)
    try:
        answer = await client.send(request_head("GET", "/authenticate", host_port, {}))
        token = json.loads(answer.body)["accessToken"]
        headers = agent_headers(token, app_name)

        async def post(body: bytes, on_write: Any) -> Answer:
            head = request_head("POST", "/record", host_port, headers, len(body))
            return await client.send(head, body, on_write)

        await send_batches(post, args, load, deadline)
    finally:
        client.close()


async def aiohttp_agent(http: aiohttp.ClientSession, base: str, args: argparse.Namespace, load: Load,
                        deadline: float, app_name: str) -> None:
    await start_moment(args)
    async with http.get(f"{base}/authenticate") as answer:
        token = (await answer.json())["accessToken"]
    headers = agent_headers(token, app_name)

    async def post(body: bytes, on_write: Any) -> Answer:
        on_write()  # aiohttp tells no moment of writing: this is when the request was handed to it
        try:
            async with http.post(f"{base}/record", data=body, headers=headers) as answer:
                await answer.read()
                return Answer(answer.status, answer.headers.get("Server-Timing", ""))
        except aiohttp.ClientError as exc:
            return Answer(type(exc).__name__)

    await send_batches(post, args, load, deadline)


async def start_moment(args: argparse.Namespace) -> None:
    """Agents do not start in step: each waits for a random moment of the ramp (at least of its first batch
    interval), then authenticates and sends its first batch at once, as a page load does. (Authenticating first
    and waiting after would leave the connection idle long enough for the server's keep-alive timeout, 5 s in
    uvicorn, to close it under the next request.)"""
    await asyncio.sleep(random.uniform(0, max(EVENTS_PER_BATCH / args.rate, args.ramp)))


async def send_batches(post: Any, args: argparse.Namespace, load: Load, deadline: float) -> None:
    """One agent's session: batch n is due ``n * 10 / rate`` seconds after the first, until the deadline.

    Open loop (``--schedule open``, the default): each batch leaves when it is due, whether or not the earlier
    ones were answered (on another connection of the agent's, as a browser does), and its latency is timed from
    when it was due, as wrk2 does: a stall of the server counts for every batch that was due during it, not
    for the one request that happened to be waiting (coordinated omission). A generator that falls behind
    sends what is due at once, and how late it was is reported on its own.

    Closed loop (``--schedule closed``, how this bench measured before): the agent waits for each answer
    before it sends the next batch, a late agent skips ahead rather than catching up, and latency is timed from
    the send. It hides a server's stalls; it is kept to measure how much."""
    session = str(uuid.uuid4())
    load.sessions.append(session)
    interval = EVENTS_PER_BATCH / args.rate
    first_due = time.perf_counter()
    in_flight: set[asyncio.Task[None]] = set()

    async def one(n: int, due: float) -> None:
        started = time.perf_counter()
        now = bardrr.now_ms()
        events = first_batch(now, args.snapshot_products) if n == 0 else later_batch(now, n)
        body = msgspec.json.encode(bardrr.record_body(events, session))
        written = [started]
        answer = await post(body, lambda: written.__setitem__(0, time.perf_counter()))
        answered = time.perf_counter()
        timed_from = due if args.schedule == "open" else written[0]
        load.latencies_ms.append((answered - timed_from) * 1000)
        load.start_late_ms.append((started - due) * 1000)
        load.write_late_ms.append((written[0] - due) * 1000)
        sent_s = due - load.started
        load.sent_s.append(sent_s)
        for name, value in server_timing(answer.timing):
            if name == "record":
                load.server_ms.append(value)
                load.server_sent_s.append(sent_s)
            else:
                load.stages_ms.setdefault(name, []).append(value)
        load.statuses[answer.status] += 1
        load.batches_sent += 1
        if isinstance(answer.status, int) and 200 <= answer.status < 300:
            load.events_accepted += len(events)
            if sent_s >= args.ramp:
                load.accepted_after_ramp += len(events)

    due = first_due
    for n in range(args.max_batches):
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        if time.perf_counter() >= deadline:
            break
        if args.schedule == "open":
            task = asyncio.create_task(one(n, due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            due += interval
        else:
            await one(n, time.perf_counter())
            due = max(due + interval, time.perf_counter() - interval)
    # Every batch that was due is answered (or times out) before the load ends: none is left out of the tail.
    await asyncio.gather(*in_flight)


def server_timing(header: str) -> list[tuple[str, float]]:
    """``name;dur=1.5, other;dur=2`` -> ``[("name", 1.5), ("other", 2.0)]``; entries without a duration skipped."""
    entries = []
    for entry in header.split(","):
        name, _, params = entry.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                entries.append((name, float(value)))
    return entries


async def read_replays(args: argparse.Namespace, load: Load, deadline: float) -> None:
    """A dashboard user during the load: replays one active session after another (all of its events so far),
    from the replayer API, which ``bard up`` serves from the process that also runs the consumer and chDB."""
    base = f"http://127.0.0.1:{args.replayer_port}"
    headers = {"Authorization": f"Bearer {args.dashboard_token}"}
    await asyncio.sleep(args.ramp)
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as http:
        while time.perf_counter() < deadline:
            session = random.choice(load.sessions)
            started = time.perf_counter()
            try:
                async with http.get(f"{base}/v1/sessions/{session}/events") as answer:
                    await answer.read()
                    load.read_statuses[answer.status] += 1
            except aiohttp.ClientError as exc:
                load.read_statuses[type(exc).__name__] += 1
            load.reads_ms.append((time.perf_counter() - started) * 1000)


async def watch_loop_lag(load: Load, deadline: float) -> None:
    while time.perf_counter() < deadline:
        asked = time.perf_counter()
        await asyncio.sleep(0.005)
        load.loop_lag_ms.append((time.perf_counter() - asked) * 1000 - 5)


async def generate(args: argparse.Namespace, base: str) -> Load:
    load = Load()
    cpu_before, system_before = time.process_time(), os.times().system
    load.started = time.perf_counter()
    deadline = load.started + args.ramp + args.duration
    apps = [f"bench-{i % 5}" for i in range(args.agents)]
    ticker = asyncio.create_task(watch_loop_lag(load, deadline))
    readers = [asyncio.create_task(read_replays(args, load, deadline)) for _ in range(args.readers)]
    if args.client == "lean":
        await asyncio.gather(*(lean_agent(base, args, load, deadline, app) for app in apps))
    else:
        connector = aiohttp.TCPConnector(limit=args.agents * (1 if args.schedule == "closed" else args.connections))
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
            await asyncio.gather(*(aiohttp_agent(http, base, args, load, deadline, app) for app in apps))
    load.ended = time.perf_counter()
    await asyncio.gather(ticker, *readers)
    load.cpu_seconds = time.process_time() - cpu_before
    load.system_seconds = os.times().system - system_before
    return load


async def wait_ready(base: str, timeout: float, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            for process in processes:
                if process.poll() is not None:
                    raise SystemExit(f"{process.args!r} exited with {process.returncode}")
            try:
                async with http.get(f"{base}/readyz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the agent API did not become ready")


async def messages_ready(amqp_url: str, queue_name: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection, connection.channel() as channel:
        queue = await channel.declare_queue(queue_name, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def wait_drained(amqp_url: str, queue_name: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await messages_ready(amqp_url, queue_name) == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise SystemExit(f"the queue did not drain in {timeout} s")


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Every child of the process, whichever of its threads started it (bard up spawns its workers from one)."""
    found = []
    for children_file in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in children_file.read_text().split()]
        except FileNotFoundError:  # the thread ended
            continue
    return found


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


BARD_PARTS = ("postgres", "rabbitmq", "bard consumer", "bard up", "agent API")


def after_ramp(load: Load, ramp_s: float) -> dict[str, Any]:
    """``/record`` latency of the requests sent once every agent had started: the load at its full rate."""
    client = [ms for sent, ms in zip(load.sent_s, load.latencies_ms, strict=True) if sent >= ramp_s]
    inside = [ms for sent, ms in zip(load.server_sent_s, load.server_ms, strict=True) if sent >= ramp_s]
    seconds = max(1e-9, load.ended - load.started - ramp_s)
    return {"requests": len(client), "accepted_per_s": round(load.accepted_after_ramp / seconds, 1),
            "client_ms": {"p50": round(quantile(client, 0.5), 2), "p99": round(quantile(client, 0.99), 2)},
            "inside_ms": {"p50": round(quantile(inside, 0.5), 2), "p99": round(quantile(inside, 0.99), 2)}}


def p99_by_window(load: Load, window_s: float) -> list[float]:
    """The client p99 of the requests sent in each ``window_s`` of the load: where in the run the tail is."""
    windows: dict[int, list[float]] = {}
    for sent, latency in zip(load.sent_s, load.latencies_ms, strict=True):
        windows.setdefault(int(sent // window_s), []).append(latency)
    return [round(quantile(windows[w], 0.99), 1) for w in sorted(windows)]


def spread(values: list[float]) -> dict[str, float]:
    return {"p50": round(quantile(values, 0.5), 2), "p99": round(quantile(values, 0.99), 2),
            "max": round(max(values, default=float("nan")), 2)}


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def read_warehouse(data_dir: Path) -> dict[str, Any]:
    client = create_client(f"chdb://{(data_dir / 'clickhouse').resolve()}", database="bard")
    try:
        (landed, distinct, first_received, last_inserted, p50, p99, worst) = client.query(
            """
            SELECT count(), uniqExact(batch_id, seq),
                   toUnixTimestamp64Milli(min(received_at)), toUnixTimestamp64Milli(max(inserted_at)),
                   quantileExact(0.5)(lag), quantileExact(0.99)(lag), max(lag)
            FROM (SELECT *, toUnixTimestamp64Milli(inserted_at) - toUnixTimestamp64Milli(received_at) AS lag
                  FROM events FINAL)
            """
        ).result_rows[0]
        broken = client.query("SELECT count() FROM ingest_errors").result_rows[0][0]
        tagged = client.query("SELECT count() FROM conversion_events FINAL").result_rows[0][0]
    finally:
        client.close()
    span = max(1, last_inserted - first_received) / 1000
    return {"landed": landed, "distinct": distinct, "span_s": span, "landed_per_s": landed / span,
            "lag_ms": {"p50": p50, "p99": p99, "max": worst}, "broken": broken, "tagged": tagged,
            "last_inserted_ms": last_inserted}


async def drop_services(env: dict[str, str], postgres_server: str) -> None:
    await postgres.drop_database(env["BARD_POSTGRES_URL"])
    connection = await aio_pika.connect(env["BARD_AMQP_URL"])
    async with connection, connection.channel() as channel:
        await channel.queue_delete(env["BARD_AMQP_QUEUE"])
        await channel.exchange_delete(env["BARD_AMQP_EXCHANGE"])


async def preload(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Publish ``args.events`` events as the agent API would have, spread over ``args.agents`` sessions."""
    settings = Settings.from_mapping({k: v for k, v in env.items() if k.startswith("BARD_")})
    sessions = [str(uuid.uuid4()) for _ in range(args.agents)]
    batches = max(1, args.events // EVENTS_PER_BATCH)
    connection = await aio_pika.connect(settings.amqp_url)
    published = 0
    async with connection, connection.channel(publisher_confirms=True) as channel:
        exchange, _ = await declare_topology(channel, settings)
        in_flight: list[Any] = []
        for n in range(batches):
            session = sessions[n % len(sessions)]
            nth = n // len(sessions)
            now = bardrr.now_ms()
            events = first_batch(now, args.snapshot_products) if nth == 0 else later_batch(now, nth)
            body = msgspec.json.encode(bardrr.record_body(events, session))
            batch = parse_batch(body, f"bench-{n % 5}", max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)
            rows = batch.ingest_rows(uuid.uuid4(), now)
            message = aio_pika.Message(rows, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            in_flight.append(exchange.publish(message, routing_key=settings.amqp_queue))
            published += len(events)
            if len(in_flight) >= 500:
                await asyncio.gather(*in_flight)
                in_flight.clear()
        await asyncio.gather(*in_flight)
    return published


async def consume_preloaded(args: argparse.Namespace, env: dict[str, str], published: int) -> dict[str, Any]:
    """Run :class:`Consumer` (the code of ``bard consumer``) in this process until every preloaded row is in."""
    settings = Settings.from_mapping({k: v for k, v in env.items() if k.startswith("BARD_")})
    client = create_client(settings.resolved_clickhouse_url, database=settings.resolved_clickhouse_database)
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        async with Consumer(settings, client, connection) as consumer:
            while consumer.stats.rows_inserted < published:
                await asyncio.sleep(0.005)
            wall, cpu = time.perf_counter() - wall_before, time.process_time() - cpu_before
        landed = client.query("SELECT count() FROM events FINAL").result_rows[0][0]
    finally:
        await connection.close()
        client.close()
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "landed": landed,
            "batches": {"by_size": consumer.stats.batches_by_size, "by_time": consumer.stats.batches_by_time}}


def consumer_only(args: argparse.Namespace, speed: dict[str, Any]) -> None:
    suffix = uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory(prefix="bard-bench-") as tmp:
        env = environment(args, Path(tmp), suffix, 0)
        try:
            subprocess.run([str(BARD), "migrate"], env=env, check=True)
            published = asyncio.run(preload(args, env))
            run = asyncio.run(consume_preloaded(args, env, published))
        finally:
            asyncio.run(drop_services(env, args.postgres))
    messages = max(1, published // EVENTS_PER_BATCH)
    report = {"machine": {"cores": os.cpu_count(), "load_average_1m": os.getloadavg()[0], "speed": speed},
              "published_events": published, "landed_events": run["landed"],
              "all_landed_once": run["landed"] == published, "wall_s": run["wall_s"],
              "landed_per_s": round(published / run["wall_s"], 1), "cpu_s": run["cpu_s"],
              "cpu_us_per_message": round(run["cpu_s"] / messages * 1e6, 1), "batches": run["batches"],
              "peak_rss_mb": round(peak_rss_mb(os.getpid()), 1)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"machine: {os.cpu_count()} cores, load average {report['machine']['load_average_1m']:.2f}; "
          f"before the run: {machine.describe(speed)}")
    print(f"consumer alone: {published} events ({messages} messages) landed in {run['wall_s']} s: "
          f"{report['landed_per_s']:.0f} events/s; CPU {run['cpu_s']} s ({report['cpu_us_per_message']} us per "
          f"message, chDB included); batches {run['batches']}; all landed once: {report['all_landed_once']}; "
          f"peak RSS of this process {report['peak_rss_mb']} MB")


def read_grouping(base: str) -> float | None:
    """Batches stored per group (one PostgreSQL transaction each) from the agent API's ``/metrics``, which adds
    up every worker process; None when it cannot be read."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    totals = {sample.name: sample.value for family in text_string_to_metric_families(text)
              for sample in family.samples if not sample.labels}
    groups = totals.get("bard_agent_api_groups_stored_total")
    return round(totals["bard_agent_api_batches_accepted_total"] / groups, 2) if groups else None


def main() -> None:
    args = arguments()
    if args.readers and not args.up:
        raise SystemExit("--readers needs --up (the replayer API shares bard up's process)")
    speed = machine.measured_apart()  # before Bard starts: the VM's own speed, which drifts (bench/machine.py)
    if args.consumer_only:
        consumer_only(args, speed)
        return
    suffix = uuid.uuid4().hex[:10]
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bard-bench-") as tmp:
        data_dir = Path(tmp)
        env = environment(args, data_dir, suffix, port)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            subprocess.run([str(BARD), "migrate"], env=env, check=True)
            if args.up:  # everything in one `bard up` process: the consumer's and the API's figures are its own
                args.replayer_port = free_port()
                args.dashboard_token = env["BARD_DASHBOARD_TOKEN"]
                env["BARD_REPLAYER_API_PORT"] = str(args.replayer_port)
                consumer = api = subprocess.Popen([str(BARD), "up"], env=env, stdout=subprocess.DEVNULL)
                processes.append(consumer)
            else:
                consumer = subprocess.Popen([str(BARD), "consumer"], env=env)
                api = subprocess.Popen([str(BARD), "agent-api", "--workers", str(args.workers)], env=env)
                processes += [consumer, api]
            asyncio.run(wait_ready(base, 120, processes))
            cpu_before, cpu_started = snapshot(), time.monotonic()
            load = run_loop(generate(args, base), args.loop)
            cpu_shares = {name: round(share, 3)
                          for name, share in shares_since(cpu_before, time.monotonic() - cpu_started).items()}
            load_end_ms = time.time() * 1000
            drain_s = asyncio.run(wait_drained(env["BARD_AMQP_URL"], env["BARD_AMQP_QUEUE"], args.drain_timeout))
            grouping = read_grouping(base)
            consumer_rss = peak_rss_mb(consumer.pid)
            worker_rss = [peak_rss_mb(pid) for pid in children(api.pid)]
            api_rss = max(worker_rss or [peak_rss_mb(api.pid)])
            # Every process of Bard's (the peaks need not coincide, so this is an upper bound)
            total_rss = sum(worker_rss) + peak_rss_mb(api.pid) + (0 if args.up else peak_rss_mb(consumer.pid))
            consumer_exit = stop(consumer)
            stop(api)
            warehouse = read_warehouse(data_dir)
        finally:
            for process in processes:
                stop(process)
            asyncio.run(drop_services(env, args.postgres))

    seconds = load.ended - load.started
    report = {
        "machine": {"cores": os.cpu_count(), "load_average_1m": os.getloadavg()[0], "speed": speed},
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "postgres", "amqp", "dashboard_token")},
        "target_events_per_s": args.agents * args.rate,
        "load_seconds": round(seconds, 2),
        "batches": load.batches_sent,
        "generator_cpu": {"share_of_a_core": round(load.cpu_seconds / seconds, 3),
                          "us_per_batch": round(load.cpu_seconds / max(1, load.batches_sent) * 1e6, 1),
                          "kernel_share": round(load.system_seconds / max(load.cpu_seconds, 1e-9), 2),
                          "loop_lag_ms": {"p50": round(quantile(load.loop_lag_ms, 0.5), 2),
                                          "p99": round(quantile(load.loop_lag_ms, 0.99), 2),
                                          "max": round(max(load.loop_lag_ms, default=float("nan")), 2)}},
        # How late the generator itself was: behind it, a latency measures the generator, not Bard.
        "generator_late_ms": {"task_start": spread(load.start_late_ms), "request_written": spread(load.write_late_ms)},
        "statuses": {str(k): v for k, v in load.statuses.items()},
        "replays_read": {"statuses": {str(k): v for k, v in load.read_statuses.items()}, "ms": spread(load.reads_ms)},
        "accepted_events": load.events_accepted,
        "accepted_per_s": round(load.events_accepted / seconds, 1),
        "record_latency_ms": {"p50": round(quantile(load.latencies_ms, 0.5), 2),
                              "p99": round(quantile(load.latencies_ms, 0.99), 2),
                              "max": round(max(load.latencies_ms, default=float("nan")), 2),
                              "mean": round(statistics.fmean(load.latencies_ms), 2) if load.latencies_ms else None},
        "record_latency_p99_by_5s": p99_by_window(load, 5.0),
        "after_ramp": after_ramp(load, args.ramp),
        "record_server_ms": {"p50": round(quantile(load.server_ms, 0.5), 2),
                             "p99": round(quantile(load.server_ms, 0.99), 2),
                             "max": round(max(load.server_ms, default=float("nan")), 2)},
        "record_stages_ms": {name: {"p50": round(quantile(values, 0.5), 2), "p90": round(quantile(values, 0.9), 2),
                                    "p99": round(quantile(values, 0.99), 2), "max": round(max(values), 2)}
                             for name, values in load.stages_ms.items()},
        "cpu_during_load": cpu_shares,
        "batches_per_group": grouping,
        "bard_cpu_ms_per_batch": round(
            sum(v for k, v in cpu_shares.items() if k.startswith(BARD_PARTS)) * seconds / max(1, load.batches_sent)
            * 1000, 3),
        "landed_events": warehouse["landed"],
        "landed_per_s": round(warehouse["landed_per_s"], 1),
        "every_accepted_event_landed_once": warehouse["landed"] == warehouse["distinct"] == load.events_accepted,
        "lag_ms": warehouse["lag_ms"],
        "queue_drained_after_load_s": round(drain_s, 2),
        "last_insert_after_load_s": round((warehouse["last_inserted_ms"] - load_end_ms) / 1000, 2),
        "broken_messages": warehouse["broken"],
        "conversion_events": warehouse["tagged"],
        "peak_rss_mb": {"consumer": round(consumer_rss, 1), "agent_api_worker": round(api_rss, 1),
                        "all_of_bard": round(total_rss, 1)},
        "consumer_exit_code": consumer_exit,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"machine: {report['machine']['cores']} cores, load average {report['machine']['load_average_1m']:.2f}; "
          f"before the run: {machine.describe(speed)}")
    print(f"target {report['target_events_per_s']:.0f} events/s from {args.agents} agents for {seconds:.1f} s "
          + ("(bard up: one process)" if args.up else f"({args.workers} agent API workers)"))
    generator = report["generator_cpu"]
    print(f"load generator ({args.client}): {generator['share_of_a_core']} of a core, "
          f"{generator['us_per_batch']} us CPU per batch (building it included), "
          f"{generator['kernel_share']:.0%} of it in the kernel; its own event loop late by p50 "
          f"{generator['loop_lag_ms']['p50']} ms, p99 {generator['loop_lag_ms']['p99']} ms")
    late = report["generator_late_ms"]
    print(f"batches late from when due ({args.schedule} loop): task started p50 {late['task_start']['p50']} ms, "
          f"p99 {late['task_start']['p99']} ms, max {late['task_start']['max']} ms; request written p50 "
          f"{late['request_written']['p50']} ms, p99 {late['request_written']['p99']} ms, max "
          f"{late['request_written']['max']} ms")
    print(f"accepted: {load.events_accepted} events, {report['accepted_per_s']:.0f} events/s; "
          f"answers {report['statuses']}")
    lat = report["record_latency_ms"]
    timed_from = "from when due" if args.schedule == "open" else "from the send"
    print(f"/record latency ms ({timed_from}): p50 {lat['p50']}, p99 {lat['p99']}, max {lat['max']}")
    steady = report["after_ramp"]
    print(f"  after the {args.ramp:g} s ramp ({steady['requests']} requests, {steady['accepted_per_s']:.0f} events/s "
          f"accepted): client p50 {steady['client_ms']['p50']}, p99 {steady['client_ms']['p99']}; inside p50 "
          f"{steady['inside_ms']['p50']}, p99 {steady['inside_ms']['p99']}; client p99 by 5 s: "
          f"{report['record_latency_p99_by_5s']}")
    inside = report["record_server_ms"]
    print(f"/record time inside the agent API (Server-Timing) ms: p50 {inside['p50']}, p99 {inside['p99']}, "
          f"max {inside['max']}")
    for name, stage in report["record_stages_ms"].items():
        print(f"  stage {name:<10} p50 {stage['p50']:>8}  p90 {stage['p90']:>8}  p99 {stage['p99']:>8}  "
              f"max {stage['max']:>8}")
    print("CPU during the load, share of one core: " + ", ".join(
        f"{name} {share:.2f}" for name, share in cpu_shares.items() if share >= 0.01))
    print(f"Bard's parts (agent API, consumer, RabbitMQ, PostgreSQL): {report['bard_cpu_ms_per_batch']} ms of CPU "
          "per batch")
    print(f"grouping: {grouping} batches per PostgreSQL transaction (the agent API's /metrics, every process)")
    print(f"landed: {warehouse['landed']} events, {report['landed_per_s']:.0f} events/s; every accepted event "
          f"landed once: {report['every_accepted_event_landed_once']}; broken messages: {warehouse['broken']}")
    lag = warehouse["lag_ms"]
    print(f"accepted -> queryable lag ms: p50 {lag['p50']}, p99 {lag['p99']}, max {lag['max']}")
    print(f"queue empty {report['queue_drained_after_load_s']} s after the load ended")
    print(f"peak RSS MB: consumer {report['peak_rss_mb']['consumer']}, "
          f"agent API worker {report['peak_rss_mb']['agent_api_worker']}, all of Bard's processes at most "
          f"{report['peak_rss_mb']['all_of_bard']}")


if __name__ == "__main__":
    main()
