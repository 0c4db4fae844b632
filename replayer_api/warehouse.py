"""ClickHouse as the replayer API reaches it: a few clients, each used by one query at a time, off the loop.

chDB runs a query inside the calling thread and serialises the calls made through one client, so parallel
requests need several clients; a client server over HTTP is not async either. :class:`Warehouse` keeps a small
pool of clients and runs every call in a worker thread with one client checked out for its duration.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from replayer_api.errors import DependencyDown, DependencyFailed

log = logging.getLogger(__name__)
T = TypeVar("T")
CLICKHOUSE_CODE = re.compile(r"Code: (\d+)")


class Warehouse:
    def __init__(self, clients: Sequence[Client]) -> None:
        if not clients:
            raise ValueError("a warehouse needs at least one client")
        self._clients = list(clients)
        self._idle: asyncio.Queue[Client] = asyncio.Queue()
        for client in self._clients:
            self._idle.put_nowait(client)

    @classmethod
    async def open(cls, connect: Callable[[], Client], size: int) -> Warehouse:
        clients = [await asyncio.to_thread(connect) for _ in range(size)]
        return cls(clients)

    def close(self) -> None:
        for client in self._clients:
            client.close()

    async def rows(self, sql: str, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one query; ``sql`` holds ``{name:Type}`` placeholders bound from ``parameters``."""
        client = await self._idle.get()
        try:
            result = await asyncio.to_thread(client.query, sql, parameters=dict(parameters))
        except OperationalError as exc:
            raise DependencyDown("ClickHouse", str(exc).splitlines()[0]) from exc
        except DatabaseError as exc:
            log.exception("ClickHouse query failed: %s", sql)
            code = CLICKHOUSE_CODE.search(str(exc))
            raise DependencyFailed("ClickHouse", f"code {code.group(1)}" if code else "query error") from exc
        finally:
            self._idle.put_nowait(client)
        return [tuple(row) for row in result.result_rows]

    async def call(self, work: Callable[[Client], T]) -> T:
        """Run blocking ``work`` with a client of its own, in a worker thread (e.g. the funnel engine)."""
        client = await self._idle.get()
        try:
            return await asyncio.to_thread(work, client)
        except OperationalError as exc:
            raise DependencyDown("ClickHouse", str(exc).splitlines()[0]) from exc
        finally:
            self._idle.put_nowait(client)

    async def ping(self) -> bool:
        client = await self._idle.get()
        try:
            return bool(await asyncio.to_thread(client.ping))
        finally:
            self._idle.put_nowait(client)
