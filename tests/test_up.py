"""``bard up`` as a user runs it: a subprocess with its own data directory, database, exchange, queue and free
ports. It answers ``/healthz``, takes a bardrr batch all the way to ClickHouse and PostgreSQL, and stops
cleanly on SIGTERM. chDB opens one data directory per process, so ClickHouse is read afterwards by another
subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest

from bard.settings import Settings
from tests import bardrr_events as bardrr
from tests.bard_process import BARD, WAIT_SECONDS, Bard
from tests.conftest import AMQP_URL
from tests.ingest_support import ingest_rows, message_body, publish


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
    assert warehouse["tagged"] == [["page", "/products/42"], ["click", bardrr.BUTTON_LABEL],
                                   ["click", bardrr.LINK_LABEL], ["custom", bardrr.CUSTOM_TAG]]
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


def agent_workers(bard: Bard) -> set[int]:
    """The agent API's worker processes of a running ``bard up`` (spawned: ``spawn_main`` in their command)."""
    assert bard.process is not None
    pid = bard.process.pid
    found = set()
    for child in " ".join(f.read_text() for f in Path(f"/proc/{pid}/task").glob("*/children")).split():
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in command and b"resource_tracker" not in command:
            found.add(int(child))
    return found


def nice_of(pid: int, tid: int | str | None = None) -> int:
    stat = Path(f"/proc/{pid}/task/{tid or pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])  # field 19 of stat: the nice value


async def until_dead(pid: int) -> None:
    stat = Path(f"/proc/{pid}/stat")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    # Gone, or a zombie ("Z") that bard up has not reaped yet.
    while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert loop.time() < deadline, f"{pid} still alive"
        await asyncio.sleep(0.02)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_an_agent_api_worker_that_dies_is_replaced_while_the_others_serve(bard: Bard) -> None:
    bard.env["BARD_AGENT_API_WORKERS"] = "2"
    bard.start()
    async with httpx.AsyncClient(timeout=30) as http:
        await wait_until_healthy(bard, http)
        # A worker answers as soon as it is up; bard up is up once all are (a worker that dies before that
        # fails the start, as a worker that cannot start at all must).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while "Bard is up" not in bard.log():
            assert loop.time() < deadline, bard.log()
            await asyncio.sleep(0.05)
        before = agent_workers(bard)
        assert len(before) == 2, before
        victim = min(before)
        subprocess.run(["kill", "-KILL", str(victim)], check=True)
        await until_dead(victim)  # until then it may still accept a connection, and die under it
    agent = f"http://127.0.0.1:{bard.agent_port}"
    # New connections (the victim's died with it): the listening socket is bard up's, and the kernel hands each
    # new connection to a live worker, so the other one answers meanwhile.
    async with httpx.AsyncClient(timeout=30) as http:
        token = (await http.get(f"{agent}/authenticate")).json()["accessToken"]
        answer = await http.post(f"{agent}/record", headers=bardrr.record_headers(token, "shop"),
                                 json=bardrr.record_body(bardrr.first_batch()))
        assert answer.is_success, answer.text
        deadline = loop.time() + WAIT_SECONDS
        while (after := agent_workers(bard)) == before - {victim} and loop.time() < deadline:
            await asyncio.sleep(0.1)
        assert len(after) == 2 and victim not in after, after
        # The main process yields the CPU to the workers (BARD_UP_NICE, 10), the replacement included.
        assert bard.process is not None
        threads = [nice_of(bard.process.pid, tid) for tid in os.listdir(f"/proc/{bard.process.pid}/task")]
        # Most at 10; one at 0, the spawner's; chDB gives some threads a priority of its own.
        assert threads.count(10) > len(threads) / 2 and threads.count(0) == 1, threads
        assert {nice_of(pid) for pid in after} == {0}, after
    assert bard.stop() == 0, bard.log()
    log = bard.log()
    assert f"an agent API worker (pid {victim}) died with exit code -9; starting another" in log
    assert "Traceback" not in log


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_client_that_sends_the_whole_oversized_body_before_reading_reads_the_413(
    bard: Bard, framing: str
) -> None:
    """Over a real socket, as a naive client does it: write all 12 MB, then read. The answer must be the 413,
    not a connection reset (the server closing with unread data in its buffer would send one)."""
    bard.start()
    async with httpx.AsyncClient(timeout=30) as http:
        await wait_until_healthy(bard, http)
        token = (await http.get(f"http://127.0.0.1:{bard.agent_port}/authenticate")).json()["accessToken"]
    body = b"x" * (12 * 1024 * 1024)
    headers = [f"{k}: {v}" for k, v in bardrr.record_headers(token, "shop").items()]
    if framing == "content-length":
        headers.append(f"Content-Length: {len(body)}")
        payload = body
    else:
        headers.append("Transfer-Encoding: chunked")
        size = 64 * 1024
        payload = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                           for i in range(0, len(body), size)) + b"0\r\n\r\n"
    head = ("\r\n".join(["POST /record HTTP/1.1", f"Host: 127.0.0.1:{bard.agent_port}", *headers]) + "\r\n\r\n")

    def send_all_then_read() -> bytes:
        with socket.create_connection(("127.0.0.1", bard.agent_port), timeout=30) as sock:
            sock.sendall(head.encode() + payload)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            return answer

    for _ in range(3):
        answer = await asyncio.to_thread(send_all_then_read)
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer[:300]
        assert b'"error":"body_too_large"' in rest, rest[-300:]
    assert bard.stop() == 0, bard.log()


def idle_connection_closed_after(port: int, seconds: float) -> bool:
    """One keep-alive request, then ``seconds`` of silence: whether the server has closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        sock.settimeout(seconds)
        try:
            rest = sock.recv(65536)  # the body's bytes, if any came after the head
            while rest:
                rest = sock.recv(65536)
        except TimeoutError:
            return False  # still open
        return True


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_idle_connections_are_kept_as_long_as_the_setting_says_on_both_apis(bard: Bard) -> None:
    """BARD_KEEP_ALIVE_SECONDS reaches every server of bard up: the agent API's workers and the replayer API."""
    bard.env["BARD_KEEP_ALIVE_SECONDS"] = "1"
    bard.start()
    async with httpx.AsyncClient(timeout=30) as http:
        await wait_until_healthy(bard, http)
    for port in (bard.agent_port, bard.replayer_port):
        assert await asyncio.to_thread(idle_connection_closed_after, port, 3.0), port
