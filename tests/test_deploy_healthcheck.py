"""The containers' health probe: which service a container runs, and what healthy means for each, against real
HTTP servers, the real PostgreSQL and the real RabbitMQ."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aio_pika
import pytest
from click.testing import CliRunner

from bard.broker import declare_topology
from bard.settings import Settings
from deploy.healthcheck import (
    default_max_lag,
    healthcheck,
    probe,
    probe_consumer,
    probe_http,
    probe_session_ender,
    running_command_lines,
    service_of,
)


@pytest.mark.parametrize(
    ("command_lines", "service"),
    [
        pytest.param([["tini", "--", "bard", "agent-api", "--workers", "2"]], "agent-api", id="tini"),
        pytest.param([["/opt/bard/bin/python", "/opt/bard/bin/bard", "session-ender"]], "session-ender",
                     id="script-through-interpreter"),
        pytest.param([["sh", "-c", "true"], ["/usr/local/bin/bard", "replayer-api"]], "replayer-api", id="second"),
        pytest.param([["bard", "--help"]], None, id="no-service"),
        pytest.param([["python", "-m", "deploy.healthcheck"]], None, id="the-probe-itself"),
        pytest.param([["bardic", "agent-api"]], None, id="other-program"),
        pytest.param([], None, id="nothing"),
    ],
)
def test_service_of(command_lines: list[list[str]], service: str | None) -> None:
    assert service_of(command_lines) == service


def test_running_command_lines_reads_proc(tmp_path: Path) -> None:
    for pid, argv in {"1": b"tini\0--\0bard\0migrate\0", "12": b"", "7": b"/opt/bard/bin/bard\0up\0"}.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(argv)
    (tmp_path / "self").mkdir()
    assert running_command_lines(tmp_path) == [["tini", "--", "bard", "migrate"], ["/opt/bard/bin/bard", "up"]]
    assert service_of(running_command_lines(tmp_path)) == "migrate"


# --- HTTP services ---------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" and self.server.healthy else 503  # type: ignore[attr-defined]
        self.send_response(status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.healthy = True  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1", ""])
def test_an_api_that_answers_healthz_is_healthy(api_server: ThreadingHTTPServer, host: str) -> None:
    verdict = probe_http(host, api_server.server_address[1])
    assert verdict.healthy, verdict.reason


def test_an_api_that_answers_an_error_is_unhealthy(api_server: ThreadingHTTPServer) -> None:
    api_server.healthy = False  # type: ignore[attr-defined]
    verdict = probe_http("0.0.0.0", api_server.server_address[1])
    assert not verdict.healthy and "answered 503" in verdict.reason


def test_an_api_that_does_not_listen_is_unhealthy(api_server: ThreadingHTTPServer) -> None:
    port = api_server.server_address[1]
    api_server.shutdown()
    api_server.server_close()
    verdict = probe_http("0.0.0.0", port)
    assert not verdict.healthy and "did not answer" in verdict.reason


def test_up_needs_both_apis(api_server: ThreadingHTTPServer) -> None:
    port = api_server.server_address[1]
    both = Settings.from_mapping({"BARD_AGENT_API_PORT": str(port), "BARD_REPLAYER_API_PORT": str(port)})
    assert probe("up", both).healthy
    with socket_closed() as closed_port:
        one = both.replace(replayer_api_port=closed_port)
    verdict = probe("up", one)
    assert not verdict.healthy and f":{closed_port}/healthz did not answer" in verdict.reason


class socket_closed:
    """A port nothing listens on (bound, then released)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_command_exit_codes(api_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    port = str(api_server.server_address[1])
    runner = CliRunner()
    healthy = runner.invoke(healthcheck, ["agent-api"], env={"BARD_AGENT_API_PORT": port})
    assert healthy.exit_code == 0 and healthy.output.startswith("healthy: agent-api:")
    api_server.healthy = False  # type: ignore[attr-defined]
    sick = runner.invoke(healthcheck, ["agent-api"], env={"BARD_AGENT_API_PORT": port})
    assert sick.exit_code == 1 and sick.output.startswith("unhealthy: agent-api:")
    misconfigured = runner.invoke(healthcheck, ["agent-api"], env={"BARD_AGENT_API_PORT": "x"})
    assert misconfigured.exit_code == 1 and "BARD_AGENT_API_PORT" in misconfigured.output
    assert runner.invoke(healthcheck, ["migrate"]).exit_code == 0
    assert runner.invoke(healthcheck, ["postgres"]).exit_code == 2  # not a Bard service


# --- session ender -------------------------------------------------------------------------------------------


def test_default_max_lag_follows_the_ender_settings() -> None:
    settings = Settings.from_mapping({"BARD_ENDER_INTERVAL_SECONDS": "5", "BARD_ENDER_GRACE_SECONDS": "20"})
    assert default_max_lag(settings) == 20 + 6 * 5 + 60


async def _add_session(pool, expired_seconds_ago: float) -> None:
    await pool.execute(
        """INSERT INTO active_sessions (session_id, app_name, first_event_at, last_event_at, max_idle_ms,
                                        event_count, error_count, expires_at)
           VALUES ($1, 'shop', 0, 0, 60000, 1, 0, now() - make_interval(secs => $2))""",
        uuid.uuid4(), expired_seconds_ago,
    )


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("expired_seconds_ago", "healthy"),
    [
        pytest.param(None, True, id="no-sessions"),
        pytest.param(-300.0, True, id="not-yet-expired"),
        pytest.param(30.0, True, id="expired-within-the-lag"),
        pytest.param(3600.0, False, id="expired-an-hour-ago"),
    ],
)
async def test_session_ender_is_judged_by_overdue_sessions(
    pg_pool, settings: Settings, expired_seconds_ago: float | None, healthy: bool
) -> None:
    if expired_seconds_ago is not None:
        await _add_session(pg_pool, expired_seconds_ago)
    verdict = await probe_session_ender(settings, max_lag_seconds=120)
    assert verdict.healthy is healthy, verdict.reason
    if not healthy:
        assert "the session ender is not moving sessions" in verdict.reason


@pytest.mark.postgres
async def test_session_ender_is_unhealthy_without_postgres(settings: Settings) -> None:
    unreachable = settings.replace(postgres_url="postgresql://localhost:1/bard")
    verdict = await probe_session_ender(unreachable, max_lag_seconds=120)
    assert not verdict.healthy and "PostgreSQL did not answer" in verdict.reason


@pytest.mark.postgres
async def test_session_ender_is_unhealthy_without_its_table(pg_pool, settings: Settings) -> None:
    elsewhere = settings.replace(postgres_url=settings.postgres_url.rsplit("/", 1)[0] + "/postgres")
    verdict = await probe_session_ender(elsewhere, max_lag_seconds=120)
    assert not verdict.healthy and "active_sessions" in verdict.reason


# --- consumer ------------------------------------------------------------------------------------------------


@pytest.mark.rabbitmq
async def test_consumer_is_judged_by_the_consumers_on_its_queue(amqp, settings: Settings) -> None:
    missing = await probe_consumer(settings)
    assert not missing.healthy and "cannot be inspected" in missing.reason
    channel = await amqp.channel()
    _, queue = await declare_topology(channel, settings)
    idle = await probe_consumer(settings)
    assert not idle.healthy and "has no consumer" in idle.reason

    async def leave_it(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        pass

    tag = await queue.consume(leave_it)
    try:
        busy = await probe_consumer(settings)
        assert busy.healthy and "1 consumer" in busy.reason
    finally:
        await queue.cancel(tag)
        await channel.close()


@pytest.mark.rabbitmq
async def test_consumer_is_unhealthy_without_rabbitmq(settings: Settings) -> None:
    verdict = await probe_consumer(settings.replace(amqp_url="amqp://guest:guest@localhost:1/"))
    assert not verdict.healthy and "RabbitMQ did not answer" in verdict.reason


def test_probe_refuses_unknown_services() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        probe("postgres", Settings.from_mapping({}))

