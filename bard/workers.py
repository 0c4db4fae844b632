"""The agent API's worker processes under ``bard up``: started, watched, restarted, stopped in order.

The agent API needs no ClickHouse, so ``bard up`` can serve it from processes of its own (each a uvicorn
server on the listening socket that ``bard up`` opened, as ``uvicorn --workers`` does) while chDB, the
consumer, the session ender and the replayer API stay in the main process. On 2 cores that takes the agent
API's parsing and PostgreSQL round trips off the event loop that also runs the consumer's inserts
(BENCHMARKS.md, "bard up").

- **Start.** :meth:`AgentWorkers.start` spawns the workers (``spawn``: a fresh interpreter, not a fork of one
  holding chDB and open connections) and waits until each is serving; one that exits first fails ``bard up``.
- **Watch.** A worker that dies later is restarted, with a pause that grows while it keeps dying. One that dies
  ``MAX_RESTARTS`` times in ``RESTART_WINDOW_SECONDS`` ends :meth:`wait`, which ends ``bard up``.
- **Stop.** :meth:`stop` sends SIGTERM: uvicorn stops accepting and finishes the requests in flight, so every
  batch that was accepted has been published before ``bard up`` stops its consumer. A worker still running
  after ``STOP_TIMEOUT_SECONDS`` is killed.
- **Orphans.** A worker asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so a
  ``bard up`` killed with SIGKILL leaves no worker holding the port.
- **Priority.** :meth:`AgentWorkers.yield_cpu` lowers the CPU priority of the rest of ``bard up``'s process (the
  consumer, chDB's threads, the replayer API, the ender): on a busy machine the agent API's answers go first, and
  what waits is the ingest lag and the dashboard. Workers are spawned from one thread kept at the normal
  priority, so one restarted later runs at it too (a process may raise its nice value, never lower it again).
  That thread lives as long as the workers: the kernel's parent-death signal follows the thread that spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event

import uvicorn

from bard.metrics import forget_process
from bard.serving import uvicorn_options
from bard.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30.0
START_TIMEOUT_SECONDS = 60.0
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
POLL_SECONDS = 0.2

_PR_SET_PDEATHSIG = 1


class _WorkerServer(uvicorn.Server):
    """uvicorn, stopping on SIGTERM only: Ctrl-C reaches every process of the terminal's group, and the workers
    must stop when ``bard up`` tells them to (after it stopped taking new work), not all at once with it."""

    def __init__(self, config: uvicorn.Config, ready: Event) -> None:
        super().__init__(config)
        self._ready = ready

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        previous = signal.signal(signal.SIGTERM, self.handle_exit)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._ready.set()


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the worker outlives a killed parent
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def _serve(settings: Settings, sock: socket.socket, ready: Event, parent: int) -> None:
    """A worker process's body (spawned: it imports what it needs itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    from agent_api.app import create_app
    from bard.logs import configure_logging

    configure_logging(settings)
    config = uvicorn.Config(create_app(settings), lifespan="on", **uvicorn_options(settings))
    _WorkerServer(config, ready).run(sockets=[sock])


class AgentWorkers:
    """``count`` agent API processes serving ``sock``."""

    def __init__(self, settings: Settings, sock: socket.socket, count: int) -> None:
        self._settings, self._sock, self._count = settings, sock, count
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._deaths: list[float] = []  # when workers died unasked, for the restart limit
        self._stopping = False
        # Every spawn happens on this one thread: see "Priority" above.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bard-agent-api-spawner")

    def _spawn(self) -> tuple[BaseProcess, Event]:
        ready = self._context.Event()
        process = self._context.Process(
            target=_serve, args=(self._settings, self._sock, ready, os.getpid()), name="bard agent API worker",
            daemon=False,
        )
        process.start()
        return process, ready

    async def _spawn_on_spawner(self) -> tuple[BaseProcess, Event]:
        return await asyncio.get_running_loop().run_in_executor(self._spawner, self._spawn)

    async def start(self) -> None:
        """Spawn every worker; return when all are serving. Raises if one exits or none is up in time."""
        started = []
        for _ in range(self._count):
            started.append(await self._spawn_on_spawner())
            self._processes.append(started[-1][0])  # stop() reaches it even if the next spawn fails
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for process, ready in started:
            while not ready.is_set():
                if not process.is_alive():
                    raise RuntimeError(f"an agent API worker exited while starting (exit code {process.exitcode})")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"an agent API worker did not start within {START_TIMEOUT_SECONDS:g} s")
                await asyncio.sleep(0.05)

    async def wait(self) -> None:
        """Restart workers that die; return when one dies too often (it will not come back on its own)."""
        while not self._stopping:
            await asyncio.sleep(POLL_SECONDS)
            for i, process in enumerate(self._processes):
                if process.is_alive() or self._stopping:
                    continue
                now = time.monotonic()
                self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW_SECONDS] + [now]
                if len(self._deaths) > MAX_RESTARTS:
                    log.error("an agent API worker died %d times in %g s (last exit code %s); stopping",
                              len(self._deaths), RESTART_WINDOW_SECONDS, process.exitcode)
                    return
                log.warning("an agent API worker (pid %s) died with exit code %s; starting another",
                            process.pid, process.exitcode)
                if process.pid is not None:
                    forget_process(process.pid)  # its counters stay in the sum; its live gauges go
                await asyncio.sleep(min(5.0, 0.1 * 2 ** (len(self._deaths) - 1)))
                if self._stopping:
                    return
                self._processes[i], _ = await self._spawn_on_spawner()

    async def yield_cpu(self, increment: int) -> None:
        """Raise the nice value of every thread of this process by ``increment``, but the spawner's; threads made
        from now on inherit it from the thread that makes them. Linux only (nice values are per thread there)."""
        if increment <= 0 or not os.path.isdir("/proc/self/task"):
            return
        spawner = await asyncio.get_running_loop().run_in_executor(self._spawner, threading.get_native_id)
        for tid in map(int, os.listdir("/proc/self/task")):
            if tid == spawner:
                continue
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))

    async def stop(self) -> None:
        """SIGTERM to every worker; return when all have exited (killed after ``STOP_TIMEOUT_SECONDS``)."""
        self._stopping = True
        for process in self._processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while any(p.is_alive() for p in self._processes) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for process in self._processes:
            if process.is_alive():
                log.error("an agent API worker (pid %s) did not stop in %g s; killing it", process.pid,
                          STOP_TIMEOUT_SECONDS)
                process.kill()
            process.join(timeout=5)
            if process.pid is not None:
                forget_process(process.pid)
        self._spawner.shutdown(wait=False)
