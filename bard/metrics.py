"""Bard's Prometheus metrics: the ``/metrics`` exposition, the HTTP request histogram, and the small metrics
server of ``bard consumer`` and ``bard session-ender``.

Each part defines its own metrics beside the code that counts (:mod:`agent_api.storage`,
:mod:`agent_api.publisher`, :mod:`clickhouse.consumer`, :mod:`session_ender.ender`); this module has what the
parts share. Every name starts with ``bard_``; the README lists them.

**Processes.** When ``PROMETHEUS_MULTIPROC_DIR`` is set (``bard up`` and ``bard agent-api`` set it, see
:mod:`bard.metrics_directory`), every process writes its values to files there and ``/metrics`` serves the
sum over every file, so a scrape that reaches any worker sees all of them: under ``bard up`` the agent API's
workers, the consumer, the session ender and the replayer API all write to one directory, and either API's
``/metrics`` shows all of Bard (scrape one of them). Counters of a worker that died stay in the sum (its file
stays), so totals never go backwards when a worker is restarted; :func:`forget_process` drops only its live
gauges. Without the variable (one process, or a test that builds an app in process) the values live in
memory and ``/metrics`` serves prometheus_client's default registry, with its process and GC collectors.

**Access.** ``/metrics`` is open on both APIs, like ``/healthz``, and so are the metrics ports: an
operator's scraper carries no browser cookie, and what the metrics say is no user data: counts, durations and
sizes, labelled only by values Bard chooses from short fixed lists (route templates, never a path with a session
id in it; methods; status codes; outcomes), never by anything a client sends. A request cannot add a label
value, so nobody can grow the output either. What remains visible is how busy Bard is; where that matters, keep
``/metrics`` off the public load balancer (the agent API faces the internet, the scraper need not).

**Cost.** The request histogram is a pure ASGI middleware that caches the labelled child per (route, method,
status): a request costs two ``perf_counter`` calls, a dict lookup and one ``observe`` (two value updates,
writes to a memory map in multiprocess mode), a few microseconds (``bench/metrics_overhead.py``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder, start_http_server
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bard.metrics_directory import ENVIRONMENT_VARIABLE
from bard.settings import SettingsError, env_name

UNMATCHED = "unmatched"
"""The route label of every request whose path no route knows: one value, however many paths are tried."""

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"

# From a millisecond (health checks) to the 5 s dependency timeout and beyond; the /record floor is 50 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUEST_SECONDS = Histogram(
    "bard_http_request_duration_seconds",
    "HTTP requests served and their duration (until the last byte of the answer), by API, route template, "
    "method and status code",
    ["api", "route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)


def multiprocess_mode() -> bool:
    # prometheus_client's own variable, read as prometheus_client reads it (at import, and in its collector).
    return bool(os.environ.get(ENVIRONMENT_VARIABLE))


def exposition_registry() -> Collector:
    """What ``/metrics`` serves: every process's files in multiprocess mode, else this process's registry."""
    if not multiprocess_mode():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


async def metrics(request: Request) -> Response:
    """``GET /metrics``: the Prometheus text format (OpenMetrics when the scraper asks for it). No parameters."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(exposition_registry()), headers={"Content-Type": content_type})


def forget_process(pid: int) -> None:
    """Bookkeeping for a worker that died: its live gauges leave the sum (its counters stay)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)


class RequestMetrics:
    """ASGI middleware: every HTTP request into :data:`HTTP_REQUEST_SECONDS`, labelled by the template of the
    route that matched (``/v1/sessions/{session_id}``, never the id), so the labels stay a short list.

    The router leaves the route it matched in the scope. A request answered before the router (a 401 of the
    credentials middleware, a CORS preflight) is matched here against the same ``routes``, as the router would;
    a path no route knows is :data:`UNMATCHED`. Installed first, so it times everything the app does.
    """

    def __init__(self, app: ASGIApp, *, api: str, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.api = api
        self.routes = routes
        self._observers: dict[tuple[str, str, int], Callable[[float], None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts: the app raised, and the server answers 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) if route is not None else self._template(scope)
        method = scope["method"]
        key = (template or UNMATCHED, method if method in METHODS else OTHER_METHOD, status)
        observe = self._observers.get(key)
        if observe is None:
            observe = HTTP_REQUEST_SECONDS.labels(self.api, key[0], key[1], str(status)).observe
            self._observers[key] = observe
        observe(seconds)

    def _template(self, scope: Scope) -> str:
        partial = UNMATCHED
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return getattr(route, "path", UNMATCHED)
            if match is Match.PARTIAL and partial is UNMATCHED:
                partial = getattr(route, "path", UNMATCHED)
        return partial


@contextlib.contextmanager
def metrics_server(host: str, port: int, port_setting: str) -> Iterator[int | None]:
    """A small HTTP server answering the metrics on ``host:port`` (a thread of prometheus_client's), for a
    process that serves no API; yields the port, or None when ``port`` is 0 (off)."""
    if port == 0:
        yield None
        return
    try:
        server, thread = start_http_server(port, addr=host, registry=exposition_registry())
    except OSError as exc:
        raise SettingsError(f"cannot listen on {host}:{port} ({env_name(port_setting)}): {exc.strerror}") from None
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
