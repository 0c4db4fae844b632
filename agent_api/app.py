"""The agent API as a Starlette app: ``create_app(settings)``; ``create_app_from_environ`` for uvicorn.

Routes (the bardrr 2.3.1 contract, see DESIGN.md): ``GET /authenticate`` -> ``{"accessToken"}``,
``POST /record`` (a batch of rrweb events), ``GET /healthz`` (alive), ``GET /readyz`` (PostgreSQL and
RabbitMQ reachable) and ``GET /metrics`` (Prometheus; open like ``/healthz``, :mod:`bard.metrics` says why).
The PostgreSQL pool and the RabbitMQ publisher open in the lifespan and reach handlers through
``request.state``; accepted batches are kept by :class:`agent_api.storage.BatchStore` (the upsert
and the publish as one unit, concurrent batches grouped).

The checks of ``/record`` run cheapest first, and none writes anything: declared size (413), token (401),
content type (415), ``appName`` (400), streamed size (413), then the body (400). Only a batch that passed
every check is stored, with its ``User-Agent`` read (:mod:`agent_api.user_agents`) and the country of its client
address (:mod:`agent_api.countries`, the address picked by :mod:`bard.client_address`); neither is ever a reason
to refuse, and the address is not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent_api.batches import parse_app_name, parse_batch
from agent_api.countries import country_of
from agent_api.errors import AgentApiError, BodyTooLarge, InvalidRequest, RateLimited, UnsupportedContentType
from agent_api.publisher import BatchPublisher
from agent_api.storage import POSTGRES_EXCEPTIONS, BatchStore
from agent_api.tokens import TokenAuthority
from agent_api.user_agents import user_agent_reader
from bard.client_address import ClientAddresses
from bard.logs import configure_logging
from bard.metrics import RequestMetrics, metrics
from bard.rate_limit import TokenBucketLimiter, retry_after_seconds
from bard.settings import Settings, split_origins, with_secrets

log = logging.getLogger(__name__)

# Beside the store workers' connections (BARD_AGENT_STORE_WORKERS), two serve /readyz and slack: N processes
# need N * (workers + 2) PostgreSQL connections.
SPARE_PG_CONNECTIONS = 2
DEPENDENCY_TIMEOUT_SECONDS = 5.0


async def authenticate(request: Request) -> Response:
    address = request.state.client_addresses.of(request) or "unknown"
    wait = request.state.authenticate_limiter.try_acquire(address)
    if wait:
        raise RateLimited(retry_after_seconds(wait))
    return JSONResponse({"accessToken": request.state.tokens.issue()})


async def record(request: Request) -> Response:
    started = time.perf_counter()
    settings: Settings = request.state.settings
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Content-Length", "not a number")
        if int(declared) > limit:
            raise BodyTooLarge(limit)
    request.state.tokens.verify_header(request.headers.get("authorization"))
    content_type = request.headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        raise UnsupportedContentType(content_type)
    app_name = parse_app_name(request.headers.get("appname"))
    body = await read_body(request, limit)
    batch = parse_batch(
        body, app_name, max_idle_default_ms=settings.max_idle_default_ms, max_idle_max_ms=settings.max_idle_max_ms,
        client=request.state.user_agents.describe(request.headers.get("user-agent")),
        country=country_of(request.state.client_addresses.of(request)),
    )
    batch_id = uuid.uuid4()
    await request.state.batch_store.store(batch, batch_id, int(time.time() * 1000))
    # Server-Timing: the time spent in Bard, apart from what the network and a busy client add.
    elapsed_ms = (time.perf_counter() - started) * 1000
    return JSONResponse({"batchId": str(batch_id), "events": len(batch.timestamps)},
                        headers={"Server-Timing": f"record;dur={elapsed_ms:.2f}"})


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it grows past ``limit`` (a Content-Length can lie or be absent)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    problems: dict[str, str] = {}
    try:
        async with asyncio.timeout(2.0):
            await request.state.pg_pool.fetchval("SELECT 1")
    except POSTGRES_EXCEPTIONS as exc:
        problems["PostgreSQL"] = type(exc).__name__
    if not request.state.publisher.is_ready:
        problems["RabbitMQ"] = "not connected"
    if problems:
        return JSONResponse({"status": "unavailable", "dependencies": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


async def agent_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": "http_error", "message": exc.detail}, status_code=exc.status_code,
                        headers=exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises it to the server, which logs the traceback; the client still gets JSON.
    return JSONResponse({"error": "internal_error", "message": "an unexpected error; see the server's log"},
                        status_code=500)


async def keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: handlers set no session state, and asyncpg still rolls back an open transaction.
    This saves the default reset query's round trip on every release, one per batch."""


def create_app(settings: Settings) -> Starlette:
    tokens = TokenAuthority(
        settings.jwt_secret,
        ttl_seconds=settings.jwt_ttl_seconds,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # min_size=0: the service starts while PostgreSQL is down and answers 503 until it is back.
        pg_pool = await asyncpg.create_pool(
            settings.postgres_url,
            min_size=0,
            max_size=settings.agent_store_workers + SPARE_PG_CONNECTIONS,
            timeout=DEPENDENCY_TIMEOUT_SECONDS,
            command_timeout=DEPENDENCY_TIMEOUT_SECONDS,
            reset=keep_session,
        )
        publisher = BatchPublisher(settings, timeout_seconds=DEPENDENCY_TIMEOUT_SECONDS)
        batch_store = BatchStore(
            pg_pool, publisher, workers=settings.agent_store_workers, message_bytes=settings.agent_message_bytes,
            timeout_seconds=DEPENDENCY_TIMEOUT_SECONDS,
        )
        try:
            await publisher.start()
            yield {
                "settings": settings,
                "tokens": tokens,
                "user_agents": user_agent_reader(),  # built here (~0.4 s, once per process), not by a request
                "authenticate_limiter": TokenBucketLimiter(settings.authenticate_rate_per_minute),
                "client_addresses": ClientAddresses.from_setting(settings.trusted_proxies),
                "pg_pool": pg_pool,
                "publisher": publisher,
                "batch_store": batch_store,
            }
        finally:
            log.info("stopping: %d batches stored in %d groups", batch_store.batches_stored, batch_store.groups_stored)
            await publisher.close()
            await pg_pool.close()

    routes = [
        Route("/authenticate", authenticate, methods=["GET"]),
        Route("/record", record, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestMetrics, api="agent", routes=routes),
            Middleware(
                CORSMiddleware,
                allow_origins=split_origins(settings.agent_cors_origins),
                allow_methods=["GET", "POST"],
                # What bardrr sends: Content-Type (also on its GET /authenticate), authorization, appName.
                allow_headers=["authorization", "appname", "content-type"],
                max_age=600,
            )
        ],
        exception_handlers={AgentApiError: agent_api_error, HTTPException: http_error, Exception: unexpected_error},
        lifespan=lifespan,
    )


def create_app_from_environ() -> Starlette:
    """The entry point for ``uvicorn --factory`` (one call per worker process)."""
    settings = with_secrets(Settings.from_environ())
    configure_logging(settings)
    return create_app(settings)
