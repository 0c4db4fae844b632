"""``bard up`` as a user runs it: a subprocess with its own data directory, database, exchange, queue and free
ports. It answers ``/healthz``, takes a bardrr batch all the way to ClickHouse and PostgreSQL, and stops
cleanly on SIGTERM. chDB opens one data directory per process, so ClickHouse is read afterwards by another
subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest

from bard.settings import Settings
from tests import bardrr_events as bardrr
from tests.conftest import AMQP_URL, PG_SERVER
from tests.ingest_support import ingest_rows, message_body, publish

BARD = Path(sys.executable).with_name("bard")
WAIT_SECONDS = 90.0  # a ceiling for a busy machine, never a performance assertion

READ_WAREHOUSE = """
import json, sys
from clickhouse.client import create_client
client = create_client(sys.argv[1], database=sys.argv[2])
rows = lambda sql: [list(r) for r in client.query(sql).result_rows]
print(json.dumps({
    "events": rows("SELECT count() FROM events FINAL")[0][0],
    "types": [r[0] for r in rows("SELECT type FROM events FINAL ORDER BY ts, seq")],
    "tagged": rows("SELECT kind, label FROM conversion_events FINAL ORDER BY ts"),
    "errors": rows("SELECT count() FROM ingest_errors")[0][0],
}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Bard:
    def __init__(self, tmp_path: Path) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.data_dir = tmp_path / "var"
        self.database = f"bard_up_{suffix}"
        self.agent_port, self.replayer_port = free_port(), free_port()
        self.queue = f"bard.up.{suffix}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BARD_")},
            "BARD_DATA_DIR": str(self.data_dir),
            "BARD_POSTGRES_URL": f"{PG_SERVER}/{self.database}",
            "BARD_AMQP_URL": AMQP_URL,
            "BARD_AMQP_EXCHANGE": self.queue,
            "BARD_AMQP_QUEUE": self.queue,
            "BARD_AGENT_API_PORT": str(self.agent_port),
            "BARD_REPLAYER_API_PORT": str(self.replayer_port),
        }
        self.stdout, self.stderr = tmp_path / "stdout", tmp_path / "stderr"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen([str(BARD), "up"], env=self.env, stdout=out, stderr=err)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT_SECONDS)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def read_warehouse(self) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", READ_WAREHOUSE, f"chdb://{(self.data_dir / 'clickhouse').resolve()}", "bard"],
            capture_output=True, check=True, timeout=WAIT_SECONDS, cwd=Path(__file__).parent.parent,
        )
        return json.loads(out.stdout)

    async def drop_services(self) -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await conn.close()
        connection = await aio_pika.connect(AMQP_URL)
        async with connection, connection.channel() as channel:
            await channel.queue_delete(self.queue)
            await channel.exchange_delete(self.queue)


@pytest.fixture
def bard(tmp_path: Path) -> Iterator[Bard]:
    bard = Bard(tmp_path)
    yield bard
    bard.kill()
    asyncio.run(bard.drop_services())


async def wait_until_healthy(bard: Bard, http: httpx.AsyncClient) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while loop.time() < deadline:
        assert bard.process is not None
        if bard.process.poll() is not None:
            pytest.fail(f"bard up exited with {bard.process.returncode}:\n{bard.log()}")
        try:
            if (await http.get(f"http://127.0.0.1:{bard.agent_port}/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    pytest.fail(f"bard up did not answer /healthz:\n{bard.log()}")


async def messages_ready(bard: Bard) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection, connection.channel() as channel:
        queue = await channel.declare_queue(bard.queue, passive=True)
        assert queue.declaration_result.message_count is not None
        return queue.declaration_result.message_count


async def wait_until_delivered(bard: Bard) -> None:
    """Until no message waits in the queue: the consumer holds (or has inserted) the batch; stopping Bard then
    inserts what it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while loop.time() < deadline:
        if await messages_ready(bard) == 0:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"the batch was not delivered to the consumer:\n{bard.log()}")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_bard_up_ingests_a_batch_and_stops_cleanly(bard: Bard) -> None:
    bard.start()
    session = str(uuid.uuid4())
    events = bardrr.first_batch()
    async with httpx.AsyncClient(timeout=30) as http:
        await wait_until_healthy(bard, http)
        agent = f"http://127.0.0.1:{bard.agent_port}"
        token = (await http.get(f"{agent}/authenticate")).json()["accessToken"]
        answer = await http.post(f"{agent}/record", headers=bardrr.record_headers(token, "shop"),
                                 json=bardrr.record_body(events, session))
        assert answer.is_success, answer.text
    await wait_until_delivered(bard)

    conn = await asyncpg.connect(bard.env["BARD_POSTGRES_URL"])
    try:
        row = await conn.fetchrow(
            "SELECT app_name, event_count, error_count, first_event_at, last_event_at FROM active_sessions "
            "WHERE session_id = $1", uuid.UUID(session))
    finally:
        await conn.close()
    assert row is not None
    assert dict(row) == {"app_name": "shop", "event_count": 10, "error_count": 1,
                         "first_event_at": events[0]["timestamp"], "last_event_at": events[-1]["timestamp"]}

    assert bard.stop() == 0, bard.log()
    assert await messages_ready(bard) == 0  # nothing requeued: the consumer inserted what it held
    log = bard.log()
    assert f"http://127.0.0.1:{bard.agent_port}" in log
    token_file = bard.data_dir / "dashboard_token"
    assert token_file.read_text().strip() in log  # how to reach the dashboard API, printed at start
    assert "Traceback" not in log

    warehouse = bard.read_warehouse()
    assert warehouse["events"] == 10
    assert warehouse["types"] == [e["type"] for e in events]
    assert warehouse["tagged"] == [["click", bardrr.BUTTON_LABEL], ["click", bardrr.LINK_LABEL],
                                   ["custom", bardrr.CUSTOM_TAG]]
    assert warehouse["errors"] == 0


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_bard_up_names_the_port_it_cannot_listen_on(bard: Bard) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", bard.agent_port))
        taken.listen()
        bard.start()
        assert bard.process is not None
        assert bard.process.wait(timeout=WAIT_SECONDS) != 0
    log = bard.log()
    assert "BARD_AGENT_API_PORT" in log
    assert "Traceback" not in log


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_bard_consumer_alone_inserts_and_stops_cleanly(bard: Bard) -> None:
    """``bard consumer``, production's one-part command, on the schema ``bard migrate`` made."""
    subprocess.run([str(BARD), "migrate"], env=bard.env, check=True, capture_output=True, timeout=WAIT_SECONDS)
    settings = Settings.from_mapping({k: v for k, v in bard.env.items() if k.startswith("BARD_")})
    session = str(uuid.uuid4())
    events = bardrr.first_batch()
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await publish(connection, settings, message_body(ingest_rows(events, session)))
    with bard.stdout.open("wb") as out, bard.stderr.open("wb") as err:
        bard.process = subprocess.Popen([str(BARD), "consumer"], env=bard.env, stdout=out, stderr=err)
    await wait_until_delivered(bard)
    assert bard.stop() == 0, bard.log()
    assert await messages_ready(bard) == 0
    warehouse = bard.read_warehouse()
    assert (warehouse["events"], warehouse["errors"]) == (10, 0)
    assert warehouse["tagged"] == [["click", bardrr.BUTTON_LABEL], ["custom", bardrr.CUSTOM_TAG]]
