"""The replayer API as an app: ``create_app(settings)``.

The lifespan opens what handlers use, reached through ``request.state``: ``pg`` (asyncpg pool), ``funnels``
(the funnel store on it), ``warehouse`` (a few ClickHouse clients, see :mod:`replayer_api.warehouse`) and
``database`` (the ClickHouse database the funnel engine reads).

``GET /metrics`` (Prometheus) is open, like ``/healthz``: a scraper has no cookie, and the metrics hold no user
data (:mod:`bard.metrics` says why, for both APIs). Under ``bard up`` it also shows the agent API's workers,
the consumer and the session ender, which share this process or its metrics directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bard.client_address import ClientAddresses
from bard.errors import error_body
from bard.metrics import RequestMetrics, metrics
from bard.postgres import create_pool
from bard.settings import Settings, split_origins
from clickhouse.client import client_for
from funnels import FunnelQueryFailed, InvalidFunnel
from replayer_api import legacy, v1
from replayer_api.auth import (
    RequireCredentials,
    credentials_for,
    log_in,
    log_out,
    login_limiter_for,
    show_login,
    trusted_origins_for,
)
from replayer_api.dashboard import Dashboard
from replayer_api.errors import ApiError, error_response
from replayer_api.funnel_store import FunnelStore
from replayer_api.openapi import openapi_document
from replayer_api.security_headers import SecurityHeaders
from replayer_api.warehouse import Warehouse

log = logging.getLogger(__name__)

# chDB serialises the calls made through one client: two clients let two queries run at once on two cores.
CLICKHOUSE_CLIENTS = 2


READY_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    """Alive: the process answers. Orchestrators restart on this; load balancers ask /readyz."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready: PostgreSQL and ClickHouse answer within 2 s; 503 names the one that does not. The same answers as
    the agent API's ``/readyz``: ``{"status": "ready"}``, or ``unavailable`` with a problem by dependency."""
    problems = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await request.state.pg.fetchval("SELECT 1")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        problems["PostgreSQL"] = str(exc) or type(exc).__name__
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            if not await request.state.warehouse.ping():
                problems["ClickHouse"] = "ping failed"
    except TimeoutError:
        problems["ClickHouse"] = "TimeoutError"
    except ApiError as exc:
        problems["ClickHouse"] = exc.message
    if problems:
        return JSONResponse({"status": "unavailable", "dependencies": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


async def invalid_funnel(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidFunnel)
    return JSONResponse(error_body("invalid_request", str(exc), field=exc.path or "funnel"), status_code=400)


async def funnel_query_failed(request: Request, exc: Exception) -> Response:
    log.error("funnel query failed: %s", exc)
    return JSONResponse(error_body("dependency_failed", str(exc), dependency="ClickHouse"), status_code=502)


async def http_error(request: Request, exc: Exception) -> Response:
    """The router's own answers (a method a route does not take: 405) in JSON, like every other error."""
    assert isinstance(exc, HTTPException)
    return JSONResponse(error_body("http_error", exc.detail), status_code=exc.status_code, headers=exc.headers)


async def postgres_unavailable(request: Request, exc: Exception) -> Response:
    log.error("PostgreSQL unavailable: %s", exc)
    return JSONResponse(error_body("dependency_unavailable", f"PostgreSQL is unavailable: {exc}",
                                   dependency="PostgreSQL"), status_code=503)


def create_app(settings: Settings, *, clickhouse_clients: int = CLICKHOUSE_CLIENTS) -> Starlette:
    credentials = credentials_for(settings)
    dashboard = Dashboard(settings.dashboard_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        pool = await create_pool(settings.postgres_url)
        try:
            warehouse = await Warehouse.open(lambda: client_for(settings), clickhouse_clients)
        except BaseException:
            await pool.close()
            raise
        try:
            yield {"pg": pool, "funnels": FunnelStore(pool), "warehouse": warehouse,
                   "database": settings.resolved_clickhouse_database}
        finally:
            warehouse.close()
            await pool.close()

    middleware = []
    origins = split_origins(settings.replayer_cors_origins)
    if origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=origins, allow_credentials=True,
                                     allow_methods=["GET", "POST", "PUT", "DELETE"],
                                     allow_headers=["Authorization", "Content-Type"]))
    middleware += [
        Middleware(SecurityHeaders),
        # Replays are large and repetitive JSON; level 5 keeps the CPU cost of compressing them moderate.
        Middleware(GZipMiddleware, minimum_size=1000, compresslevel=5),
        Middleware(RequireCredentials, credentials=credentials, trusted_origins=trusted_origins_for(settings)),
    ]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/login", show_login, methods=["GET"]),
        Route("/login", log_in, methods=["POST"]),
        Route("/logout", log_out, methods=["GET", "POST"]),
        Route("/v1/openapi.json", openapi_document, methods=["GET"]),
        *v1.ROUTES,
        *legacy.ROUTES,
        Route("/{path:path}", dashboard.serve, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestMetrics, api="replayer", routes=routes), *middleware],
        lifespan=lifespan,
        exception_handlers={
            ApiError: error_response,
            HTTPException: http_error,
            InvalidFunnel: invalid_funnel,
            FunnelQueryFailed: funnel_query_failed,
            ConnectionError: postgres_unavailable,
            asyncpg.PostgresConnectionError: postgres_unavailable,
            asyncpg.InterfaceError: postgres_unavailable,
        },
    )
    app.state.credentials = credentials
    app.state.login_limiter = login_limiter_for(settings)
    app.state.client_addresses = ClientAddresses.from_setting(settings.trusted_proxies)
    return app
