"""``bard up`` as a user runs it, in a subprocess with its own data directory, database, exchange, queue and free
ports (chDB opens one data directory per process, so it cannot share the test process's)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import aio_pika

from bard import postgres
from tests.conftest import AMQP_URL, PG_SERVER

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
    def __init__(self, tmp_path: Path, **settings: str) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.data_dir = tmp_path / "var"
        self.database = f"bard_up_{suffix}"
        self.agent_port, self.replayer_port = free_port(), free_port()
        # `bard consumer`'s and `bard session-ender`'s; never the defaults, which a benchmark may hold.
        self.consumer_metrics_port, self.ender_metrics_port = free_port(), free_port()
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
            "BARD_CONSUMER_METRICS_PORT": str(self.consumer_metrics_port),
            "BARD_ENDER_METRICS_PORT": str(self.ender_metrics_port),
            **settings,
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
        await postgres.drop_database(f"{PG_SERVER}/{self.database}")
        connection = await aio_pika.connect(AMQP_URL)
        async with connection, connection.channel() as channel:
            await channel.queue_delete(self.queue)
            await channel.exchange_delete(self.queue)


