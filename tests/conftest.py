"""Fixtures on real services: PostgreSQL and RabbitMQ on localhost, ClickHouse through chDB.

A test opts in with a marker (``postgres``, ``rabbitmq``, ``clickhouse``); the matching fixtures refuse to
serve a test without it, and a test without a marker that reaches a driver by accident fails loudly.
Isolation: one PostgreSQL database per test run (tables emptied before each test), one ClickHouse database per
test (chDB allows one data directory per process), one exchange and queue per test.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import aio_pika
import asyncpg
import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.client import Client

from bard import postgres
from bard.settings import Settings
from clickhouse.client import create_client
from clickhouse.migrations import migrate as migrate_clickhouse
from replayer_api import sessions as replayer_sessions
from tests.replayer_support import open_api

PG_SERVER = os.environ.get("BARD_TEST_POSTGRES_SERVER", "postgresql://localhost:5432")
AMQP_URL = os.environ.get("BARD_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/")
SERVICE_MARKERS = ("postgres", "rabbitmq", "clickhouse")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a slow test first, each module's tests together and in order: the test processes
    (``./bardctl test`` runs two, a module to each at a time) then end together instead of one finishing the
    fault suite alone."""
    slow_modules = {getattr(item, "module", None) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: getattr(item, "module", None) not in slow_modules)


def _require_marker(request: pytest.FixtureRequest, marker: str) -> None:
    if request.node.get_closest_marker(marker) is None:
        pytest.fail(f"fixture {request.fixturename!r} needs @pytest.mark.{marker} on the test", pytrace=False)


@pytest.fixture(autouse=True)
def _block_unmarked_services(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that reaches a service without opting in fails instead of silently depending on it."""
    if any(request.node.get_closest_marker(m) for m in SERVICE_MARKERS):
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("this test reached a service without a service marker (postgres/rabbitmq/clickhouse)")

    monkeypatch.setattr(asyncpg, "connect", refuse)
    monkeypatch.setattr(asyncpg, "create_pool", refuse)
    monkeypatch.setattr(aio_pika, "connect_robust", refuse)
    monkeypatch.setattr(aio_pika, "connect", refuse)
    monkeypatch.setattr(clickhouse_connect, "get_client", refuse)


# --- PostgreSQL ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of this test run's own, migrated; dropped at the end."""
    name = f"bard_test_{uuid.uuid4().hex[:12]}"
    url = f"{PG_SERVER}/{name}"

    async def create() -> None:
        await postgres.ensure_database(url)
        conn = await asyncpg.connect(url)
        try:
            await postgres.migrate(conn)
        finally:
            await conn.close()

    asyncio.run(create())
    yield url
    asyncio.run(postgres.drop_database(url))


@pytest.fixture
async def pg_pool(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the run's database, emptied first; at teardown every connection must be back."""
    _require_marker(request, "postgres")
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=10)
    await pool.execute("TRUNCATE active_sessions, active_session_click_targets, funnels RESTART IDENTITY")
    yield pool
    in_use = pool.get_size() - pool.get_idle_size()
    await asyncio.wait_for(pool.close(), timeout=10)
    assert in_use == 0, f"{in_use} PostgreSQL connection(s) not released by the test"


# --- ClickHouse (chDB) -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


# --- Settings and the services behind them ----------------------------------------------------------------


@pytest.fixture
def settings(tmp_path, pg_url: str, chdb_url: str) -> Settings:
    """Settings pointing at this test's own database, exchange and queue."""
    suffix = uuid.uuid4().hex[:10]
    return Settings.from_mapping(
        {
            "BARD_DATA_DIR": str(tmp_path),
            "BARD_CLICKHOUSE_URL": chdb_url,
            "BARD_CLICKHOUSE_DATABASE": f"t_{suffix}",
            "BARD_POSTGRES_URL": pg_url,
            "BARD_AMQP_URL": AMQP_URL,
            "BARD_AMQP_EXCHANGE": f"bard.test.{suffix}",
            "BARD_AMQP_QUEUE": f"bard.test.{suffix}",
            "BARD_JWT_SECRET": "test-secret-" + suffix,
            "BARD_DASHBOARD_TOKEN": "test-dashboard-" + suffix,
        }
    )


_MIGRATED_TEMPLATES: dict[str, str] = {}
"""Per mode, a database of this process migrated once, that each test's database is copied from."""


def _migrated_copy(client: Client, settings: Settings, database: str) -> None:
    """Make ``database`` what migrating it would: a copy of a template database migrated once per process (its
    tables and views created from their own definitions, its ``schema_migrations`` rows copied). Migrating each
    test's database took 0.26-0.31 s, a copy 0.09-0.13 s; the migrations themselves are tested on databases of
    their own."""
    template = _MIGRATED_TEMPLATES.get(settings.mode)
    if template is None:
        template = f"template_{settings.mode}_{uuid.uuid4().hex[:12]}"
        migrate_clickhouse(client, settings, template)
        _MIGRATED_TEMPLATES[settings.mode] = template
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    # Tables before the views that read and fill them; the template's name never occurs in a definition otherwise.
    rows = client.query(
        "SELECT create_table_query FROM system.tables WHERE database = {db:String} ORDER BY engine LIKE '%View', name",
        parameters={"db": template},
    ).result_rows
    for (definition,) in rows:
        client.command(definition.replace(f"{template}.", f"{database}."))
    # Both names are this fixture's own, checked by check_database_name in migrate and create_client.
    client.command(f"INSERT INTO {database}.schema_migrations SELECT * FROM {template}.schema_migrations")  # noqa: S608


@pytest.fixture
def ch(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Client]:
    """A chDB client on this test's own database, migrated; the database is dropped afterwards."""
    _require_marker(request, "clickhouse")
    client = create_client(settings.resolved_clickhouse_url, database=settings.resolved_clickhouse_database)
    _migrated_copy(client, settings, settings.resolved_clickhouse_database)
    yield client
    client.command(f"DROP DATABASE IF EXISTS {settings.resolved_clickhouse_database} SYNC")


@pytest.fixture
async def amqp(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    """A connection to the local RabbitMQ; the test's exchange and queue are deleted afterwards."""
    _require_marker(request, "rabbitmq")
    connection = await aio_pika.connect_robust(settings.amqp_url)
    yield connection
    async with connection.channel() as channel:
        await channel.queue_delete(settings.amqp_queue)
        await channel.exchange_delete(settings.amqp_exchange)
    await connection.close()


# --- The replayer API, for the tests of its lists and funnels ---------------------------------------------


@pytest.fixture
async def api(settings: Settings, pg_pool: asyncpg.Pool, ch: Client) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings) as client:
        yield client


@pytest.fixture(params=["candidates", "final"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """List tests run on both ways of reading a page: candidates then newest versions, and plain FINAL (which
    deep offsets use)."""
    if request.param == "final":
        monkeypatch.setattr(replayer_sessions, "MAX_CANDIDATE_SKIP", -1)
    return str(request.param)
