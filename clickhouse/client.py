"""One client factory from a URL: ``chdb://<dir>`` (embedded) or ``http(s)://user:password@host:port/db``.

Both give a clickhouse-connect ``Client``. chDB opens one data directory per process for the life of the
process and serialises the calls made through one client, so callers that want parallel queries create one
client per thread; every call blocks, so async code runs it off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from bard.settings import Settings
from clickhouse.sql import check_database_name


def create_client(url: str, database: str | None = None) -> Client:
    """Open a client for ``url``. ``database`` overrides the database named in the URL."""
    if url.startswith("chdb://"):
        client = clickhouse_connect.get_client(dsn=url)
        if database:
            # The embedded engine is Bard's own: make sure the database exists before binding to it.
            check_database_name(database)
            client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
            client.database = database
        return client
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported ClickHouse URL scheme {parts.scheme!r}")
    return clickhouse_connect.get_client(
        host=parts.hostname or "localhost",
        port=parts.port or (8443 if parts.scheme == "https" else 8123),
        username=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        database=database or parts.path.lstrip("/") or "default",
        secure=parts.scheme == "https",
    )


def client_for(settings: Settings) -> Client:
    """A client on Bard's database. Call once per thread that needs its own (chDB serialises one client)."""
    return create_client(settings.resolved_clickhouse_url, database=settings.resolved_clickhouse_database)
