"""The fault suite's machinery: private PostgreSQL and RabbitMQ servers that can really be restarted, Bard's
real processes on them, an open-loop bardrr load, and a ledger that says what a fault cost.

Used by ``bench/faults.py`` (every scenario, at a bench's scale, with a report) and ``tests/test_faults.py``
(the same scenarios, smaller, with assertions). Nothing is mocked: a fault is a real server stopping, a real
process killed with SIGKILL, a real ClickHouse table gone.

- :class:`PrivatePostgres` and :class:`PrivateRabbitMQ` run servers of their own on free ports (the machine's
  own, which other work uses, are never restarted): ``initdb`` + ``pg_ctl`` as the ``postgres`` user, and a
  RabbitMQ node of its own name, port and data directory.
- :class:`Load` is N agents, each one session sending a 10-event batch every ``interval`` seconds, open loop:
  a batch leaves when it is due, whether the last one was answered or not. Every event of a session has a
  timestamp of its own, so what landed can be matched to what was sent, event by event.
- :func:`account` reads the warehouse afterwards: events accepted (a 2xx answer) but not visible to readers
  (``FINAL``, as the replayer reads), events visible twice, and events that landed although their batch got an
  error (a client that retries such a batch would make it visible twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from tests import bardrr_events as bardrr
from tests.bard_process import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
BARD = VENV_BIN / "bard"
PYTHON = VENV_BIN / "python"
EVENTS_PER_BATCH = 10


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.1)


# --- private servers -------------------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return versions[-1].parent


class PrivatePostgres:
    """A PostgreSQL server of its own (trust auth on loopback), stopped and started for real."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "postgres"
        self.port = free_port()
        self.bin = _postgres_bin()
        self._as_postgres = os.geteuid() == 0  # the server refuses to run as root
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/bard"

    def _run(self, *command: str) -> None:
        argv = [str(self.bin / command[0]), *command[1:]]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def create(self) -> None:
        self.dir.mkdir(parents=True)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir), "-w", "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: the server ends every session (what a restart by an operator or a package upgrade does)."""
        self._run("pg_ctl", "-D", str(self.dir), "-w", "-m", mode, "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")


class PrivateRabbitMQ:
    """A RabbitMQ node of its own name, port and data directory (no plugins), stopped and started for real."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "rabbitmq"
        self.port = free_port()
        self.node = f"bard-faults-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_DIST_PORT": str(free_port()),
                "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"), "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(self.dir / "pid"), "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config")}

    def create(self) -> None:
        self.dir.mkdir(parents=True)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text("")  # guest may connect from 127.0.0.1, the default
        if os.geteuid() == 0:  # Debian's rabbitmq-server runs the node as the rabbitmq user
            user = pwd.getpwnam("rabbitmq")
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
        self.start()

    def start(self) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), f"RabbitMQ on {self.port}", timeout=90)

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, "stop"], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: not port_open(self.port), f"RabbitMQ on {self.port} to stop", timeout=60)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, TimeoutError):
            self.stop()


# --- Bard's processes ------------------------------------------------------------------------------------------


class Bard:
    """Bard's settings for one run, and its commands as processes on them."""

    def __init__(self, root: Path, postgres: PrivatePostgres, rabbitmq: PrivateRabbitMQ, **settings: str) -> None:
        self.data_dir = root / "var"
        self.agent_port, self.replayer_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BARD_")}
        self.env.update({
            "BARD_DATA_DIR": str(self.data_dir),
            "BARD_POSTGRES_URL": postgres.url,
            "BARD_AMQP_URL": rabbitmq.url,
            "BARD_AGENT_API_PORT": str(self.agent_port),
            "BARD_REPLAYER_API_PORT": str(self.replayer_port),
            "BARD_AUTHENTICATE_RATE_PER_MINUTE": "1000000",
            "BARD_LOG_LEVEL": "WARNING",
            "BARD_CONSUMER_METRICS_PORT": str(free_port()),
            "BARD_ENDER_METRICS_PORT": str(free_port()),
            **settings,
        })
        self.log_dir = root / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *command: str) -> subprocess.Popen[bytes]:
        name = "-".join(command) + f"-{len(self.processes)}"
        with (self.log_dir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen([str(BARD), *command], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def run(self, *command: str) -> None:
        subprocess.run([str(BARD), *command], env=self.env, check=True, capture_output=True)

    def wait_ready(self, process: subprocess.Popen[bytes], port: int, timeout: float = 90) -> None:
        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"bard exited with {process.returncode}:\n{self.logs()}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            return False
        wait_for(ready, f"Bard ready on {port}", timeout)

    @staticmethod
    def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.log_dir.glob("*"))


# --- the load and its ledger -----------------------------------------------------------------------------------


@dataclass
class Sent:
    session: str
    timestamps: list[int]
    due: float  # seconds into the load
    outcome: str  # "200", "503 PostgreSQL", "ConnectError", ...

    @property
    def accepted(self) -> bool:
        return self.outcome.startswith("2")


@dataclass
class Load:
    """``agents`` sessions, each a 10-event batch every ``interval`` s, open loop, until :meth:`stop`."""

    port: int
    agents: int = 20
    interval: float = 0.5
    max_idle_ms: int = 60_000  # the sessions' MAX_IDLE_TIME: they expire this long after their last event
    sent: list[Sent] = field(default_factory=list)
    started: float = 0.0
    _stopping: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self.started = time.perf_counter()
        # Idle connections are dropped after 2 s, before uvicorn's keep-alive timeout (5 s) closes them: otherwise
        # a batch sent on a connection the server is closing at that instant fails, whatever the fault.
        limits = httpx.Limits(max_connections=self.agents * 6, max_keepalive_connections=self.agents * 6,
                              keepalive_expiry=2.0)
        self._http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30, limits=limits)
        self._tasks = [asyncio.create_task(self._agent(i)) for i in range(self.agents)]

    def now(self) -> float:
        return time.perf_counter() - self.started

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*self._tasks)
        await self._http.aclose()

    async def _token(self) -> str:
        while not self._stopping:
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                answer = await self._http.get("/authenticate")
                if answer.status_code == 200:
                    return str(answer.json()["accessToken"])
            await asyncio.sleep(0.2)
        return ""

    async def _agent(self, number: int) -> None:
        await asyncio.sleep(self.interval * number / self.agents)  # spread the agents over one interval
        token = await self._token()
        session, t0 = str(uuid.uuid4()), bardrr.now_ms()
        headers = bardrr.record_headers(token, f"faults-{number % 3}")
        in_flight: set[asyncio.Task[None]] = set()
        due = self.now()
        n = 0
        while not self._stopping:
            events = bardrr.first_batch(t0) if n == 0 else bardrr.later_batch(t0 + 2_000 + 500 * n)
            task = asyncio.create_task(self._send(session, headers, events, due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            n += 1
            due += self.interval
            await asyncio.sleep(max(0.0, due - self.now()))
        await asyncio.gather(*in_flight)

    async def _send(self, session: str, headers: dict[str, str], events: list[dict[str, Any]], due: float) -> None:
        body = msgspec.json.encode(bardrr.record_body(events, session, max_idle_time=self.max_idle_ms))
        try:
            answer = await self._http.post("/record", content=body, headers=headers)
            outcome = str(answer.status_code)
            if answer.status_code >= 500:
                outcome += " " + _dependency(answer)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        self.sent.append(Sent(session, [e["timestamp"] for e in events], due, outcome))


def _dependency(answer: httpx.Response) -> str:
    """What a 5xx names: the dependency that went away, or its error code."""
    try:
        body = answer.json()
    except ValueError:
        return "(no JSON)"
    return str(body.get("dependency") or body.get("error") or "(unnamed)")


@dataclass
class Outage:
    """When the batches that failed were due, against when the fault began and ended (seconds into the load)."""

    fault_at: float
    restored_at: float
    last_failure: float | None  # when the last batch that failed was due

    @property
    def recovery_s(self) -> float:
        """How long after the dependency was back a batch due then still failed (0: the next one succeeded).
        By when each was due, not answered: one that waited out the outage in a queue says nothing of when
        Bard recovered."""
        if self.last_failure is None:
            return 0.0
        return max(0.0, self.last_failure - self.restored_at)


def outage(load: Load, fault_at: float, restored_at: float) -> Outage:
    return Outage(fault_at, restored_at, max((s.due for s in load.sent if not s.accepted), default=None))


@dataclass
class Accounting:
    batches: int
    accepted_events: int
    refused_events: int
    lost: int  # accepted, not visible
    twice: int  # visible more than once
    landed_though_refused: int
    outcomes: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def query_warehouse(data_dir: Path, sql: str) -> list[list[Any]]:
    """The rows of ``sql`` over the chDB directory of ``data_dir``, read by a process of its own: chDB opens a
    directory in one process only, and this one may hold another."""
    script = (
        "import json, sys\n"
        "from clickhouse.client import create_client\n"
        "c = create_client('chdb://' + sys.argv[1], database='bard')\n"
        "print(json.dumps(c.query(sys.argv[2]).result_rows))\n"
    )
    out = subprocess.run([str(PYTHON), "-c", script, str((data_dir / "clickhouse").resolve()), sql], cwd=ROOT,
                         check=True, capture_output=True, text=True)
    return list(msgspec.json.decode(out.stdout))


def read_events(data_dir: Path) -> list[tuple[str, int]]:
    """(session, timestamp) of every event readers see (``FINAL``)."""
    rows = query_warehouse(data_dir, "SELECT toString(session_id), toUnixTimestamp64Milli(ts) FROM events FINAL")
    return [(s, int(ts)) for s, ts in rows]


def account(load: Load, visible: list[tuple[str, int]]) -> Accounting:
    seen = Counter(visible)
    accepted = {(s.session, ts) for s in load.sent if s.accepted for ts in s.timestamps}
    refused = {(s.session, ts) for s in load.sent if not s.accepted for ts in s.timestamps} - accepted
    return Accounting(
        batches=len(load.sent),
        accepted_events=len(accepted),
        refused_events=len(refused),
        lost=sum(1 for key in accepted if key not in seen),
        twice=sum(n - 1 for n in seen.values() if n > 1),
        landed_though_refused=sum(1 for key in refused if key in seen),
        outcomes=dict(Counter(s.outcome for s in load.sent)),
    )


@contextlib.asynccontextmanager
async def bard_on(root: Path, postgres: PrivatePostgres, rabbitmq: PrivateRabbitMQ, **settings: str) -> Any:
    """A migrated :class:`Bard` whose processes are all stopped on the way out, whatever happened."""
    bard = Bard(root, postgres, rabbitmq, **settings)
    try:
        await asyncio.to_thread(bard.run, "migrate")
        yield bard
    finally:
        for process in bard.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@contextlib.contextmanager
def services(keep: bool = False) -> Any:
    """A temporary directory with a private PostgreSQL and RabbitMQ in it, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="bard-faults-"))
    root.chmod(0o755)  # the servers run as their own users
    postgres, rabbitmq = PrivatePostgres(root), PrivateRabbitMQ(root)
    try:
        postgres.create()
        rabbitmq.create()
        yield root, postgres, rabbitmq
    finally:
        rabbitmq.destroy()
        postgres.destroy()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# --- scenarios -------------------------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    accounting: Accounting
    outage: Outage | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"scenario": self.scenario, **self.accounting.as_dict(), **self.notes}
        if self.outage is not None:
            found.update(fault_at_s=round(self.outage.fault_at, 2), restored_at_s=round(self.outage.restored_at, 2),
                         recovery_s=round(self.outage.recovery_s, 2))
        return found


async def queue_depth(rabbitmq: PrivateRabbitMQ, queue: str = "bard.events") -> int:
    import aio_pika

    connection = await aio_pika.connect(rabbitmq.url)
    async with connection, connection.channel() as channel:
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def drained(rabbitmq: PrivateRabbitMQ, timeout: float = 120) -> None:
    """Until the queue is empty: every accepted batch was delivered to a consumer."""
    deadline = time.monotonic() + timeout
    while await queue_depth(rabbitmq) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError("the queue did not drain")
        await asyncio.sleep(0.2)


async def _up(bard: Bard) -> subprocess.Popen[bytes]:
    process = bard.start("up")
    await asyncio.to_thread(bard.wait_ready, process, bard.agent_port)
    return process


async def _up_under_load(bard: Bard, load: Load, before: float) -> tuple[subprocess.Popen[bytes], Load]:
    """``bard up`` started, and ``load`` on it for ``before`` seconds."""
    up = await _up(bard)
    await load.start()
    await asyncio.sleep(before)
    return up, load


async def _loaded(bard: Bard, rabbitmq: PrivateRabbitMQ, up: subprocess.Popen[bytes], load: Load) -> Accounting:
    """Stop the load, let the consumer take the rest, stop Bard, and count what readers see."""
    await load.stop()
    await drained(rabbitmq)
    exit_code = Bard.stop(up)
    if exit_code != 0:
        raise RuntimeError(f"bard up exited with {exit_code}:\n{bard.logs()}")
    return account(load, await asyncio.to_thread(read_events, bard.data_dir))


async def dependency_restart(root: Path, postgres: PrivatePostgres, rabbitmq: PrivateRabbitMQ, which: str, *,
                             agents: int, interval: float, before: float, down: float, after: float) -> Result:
    """PostgreSQL or RabbitMQ stopped for ``down`` seconds and started again, under load, behind ``bard up``."""
    server = postgres if which == "postgres" else rabbitmq
    async with bard_on(root, postgres, rabbitmq) as bard:
        up, load = await _up_under_load(bard, Load(bard.agent_port, agents=agents, interval=interval), before)
        fault_at = load.now()
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(down)
        await asyncio.to_thread(server.start)
        restored_at = load.now()
        await asyncio.sleep(after)
        accounting = await _loaded(bard, rabbitmq, up, load)
        return Result(f"{which} restarted", accounting, outage(load, fault_at, restored_at))


async def bard_killed(root: Path, postgres: PrivatePostgres, rabbitmq: PrivateRabbitMQ, *, agents: int,
                      interval: float, before: float, after: float) -> Result:
    """``bard up`` killed with SIGKILL under load, and started again on the same data."""
    async with bard_on(root, postgres, rabbitmq) as bard:
        up, load = await _up_under_load(bard, Load(bard.agent_port, agents=agents, interval=interval), before)
        fault_at = load.now()
        up.kill()
        await asyncio.to_thread(up.wait)
        # The workers die with it (PR_SET_PDEATHSIG): nothing may hold the port when bard up starts again.
        await asyncio.to_thread(wait_for, lambda: not port_open(bard.agent_port), "the agent API's port to close", 30)
        up = await _up(bard)
        restored_at = load.now()
        await asyncio.sleep(after)
        accounting = await _loaded(bard, rabbitmq, up, load)
        return Result("bard up killed (SIGKILL) and started again", accounting, outage(load, fault_at, restored_at))


def _child(bard: Bard, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYTHON), "-m", "tests.fault_children", *args], env=bard.env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def read_sessions(bard: Bard) -> dict[str, int]:
    """Each ended session readers see (``FINAL``), with its event count."""
    rows = query_warehouse(bard.data_dir, "SELECT toString(session_id), event_count FROM sessions FINAL")
    return {s: int(n) for s, n in rows}


async def active_sessions(postgres: PrivatePostgres) -> int:
    import asyncpg

    conn = await asyncpg.connect(postgres.url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM active_sessions"))
    finally:
        await conn.close()


async def ender_killed(root: Path, postgres: PrivatePostgres, rabbitmq: PrivateRabbitMQ, step: str, *,
                       agents: int, interval: float, before: float) -> Result:
    """The session ender killed with SIGKILL inside a move (at ``step``), then run again on the same data."""
    # grace 0: every session has expired by the time the ender runs; a long interval keeps bard up's own
    # ender from moving them first (it runs once at start, before any session exists).
    settings = {"BARD_ENDER_GRACE_SECONDS": "0", "BARD_ENDER_INTERVAL_SECONDS": "3600"}
    async with bard_on(root, postgres, rabbitmq, **settings) as bard:
        load = Load(bard.agent_port, agents=agents, interval=interval, max_idle_ms=1_000)
        up, load = await _up_under_load(bard, load, before)
        accounting = await _loaded(bard, rabbitmq, up, load)
        await asyncio.sleep(1.5)  # every session idle for longer than its MAX_IDLE_TIME
        killed = await asyncio.to_thread(_child, bard, "ender", "--kill-at", step)
        if killed.returncode != -signal.SIGKILL:
            raise RuntimeError(f"the ender was not killed at {step}: {killed.returncode}\n{killed.stdout}"
                               f"{killed.stderr}")
        rerun = await asyncio.to_thread(_child, bard, "ender")
        if rerun.returncode != 0:
            raise RuntimeError(f"the rerun failed:\n{rerun.stdout}{rerun.stderr}")
        ended = await asyncio.to_thread(read_sessions, bard)
        expected = Counter(s.session for s in load.sent if s.accepted for _ in s.timestamps)
        wrong_counts = sum(1 for session, n in expected.items() if ended.get(session) != n)
        notes = {"killed": killed.stdout.strip(), "rerun": rerun.stdout.strip(), "sessions": len(expected),
                 "sessions_ended": len(ended), "sessions_with_wrong_counts": wrong_counts,
                 "left_active": await active_sessions(postgres)}
        return Result(f"session ender killed at '{step}'", accounting, notes=notes)


async def inserts_failing(root: Path, postgres: PrivatePostgres, rabbitmq: PrivateRabbitMQ, *, agents: int,
                          interval: float, before: float, down: float, after: float) -> Result:
    """The consumer's inserts fail for ``down`` seconds (its table renamed away), under load; the agent API
    (``bard agent-api``) and the consumer (Bard's, in a process of its own) as production runs them."""
    async with bard_on(root, postgres, rabbitmq) as bard:
        api = bard.start("agent-api", "--workers", "1")
        await asyncio.to_thread(bard.wait_ready, api, bard.agent_port)
        consumer = subprocess.Popen([str(PYTHON), "-m", "tests.fault_children", "consumer"], env=bard.env, cwd=ROOT,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert consumer.stdin is not None and consumer.stdout is not None

        async def command(line: str, expected: str) -> str:
            assert consumer.stdin is not None and consumer.stdout is not None
            if line:
                consumer.stdin.write(line + "\n")
                consumer.stdin.flush()
            answer = (await asyncio.to_thread(consumer.stdout.readline)).strip()
            if not answer.startswith(expected):
                raise RuntimeError(f"the consumer answered {answer!r} to {line!r}")
            return answer

        try:
            await command("", "ready")
            load = Load(bard.agent_port, agents=agents, interval=interval)
            await load.start()
            await asyncio.sleep(before)
            fault_at = load.now()
            await command("break", "break")
            await asyncio.sleep(down)
            await command("mend", "mend")
            restored_at = load.now()
            await asyncio.sleep(after)
            await load.stop()
            await drained(rabbitmq)
            stopped = await command("stop", "stopped")
            if consumer.wait(timeout=60) != 0:
                raise RuntimeError(f"the consumer exited with {consumer.returncode}")
        finally:
            if consumer.poll() is None:
                consumer.kill()
                consumer.wait()
            consumer.stdin.close()
            consumer.stdout.close()
            Bard.stop(api)
        accounting = account(load, await asyncio.to_thread(read_events, bard.data_dir))
        failed = int(stopped.split()[2])  # "stopped after N failed inserts"
        return Result("consumer's inserts failing", accounting, outage(load, fault_at, restored_at),
                      notes={"failed_inserts": failed})
