"""The containers' health probe: ``python -m deploy.healthcheck [SERVICE]`` (or ``bard healthcheck``) exits 0 when
the service is healthy and 1 when it is not, printing one line that says why (Docker and ECS keep it).

What healthy means depends on the service:

- ``agent-api``, ``replayer-api``: the process answers ``GET /healthz`` on its port. This is liveness, for the
  orchestrator that restarts a stuck process; load balancers ask ``/readyz`` instead, which also checks the
  dependencies, so that a database outage takes tasks out of rotation without killing them all.
- ``session-ender`` has no port, so the probe looks at the job's effect: PostgreSQL answers, and no active session
  has been expired for longer than a few of the ender's intervals. A crashed scheduler, or one that cannot reach
  ClickHouse, leaves expired sessions piling up, and that is what an operator needs to see.
- ``consumer``: RabbitMQ answers and Bard's queue has a consumer.
- ``up``: both APIs answer. ``migrate`` is a one-shot and always healthy while it runs.

Without SERVICE the probe finds the ``bard`` command this container runs among its processes' command lines, so
the image's one ``HEALTHCHECK`` fits every service; compose and ECS name the service explicitly.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from bard.settings import Settings, SettingsError

SERVICES = ("agent-api", "replayer-api", "session-ender", "consumer", "up", "migrate")
TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str


def service_of(command_lines: Iterable[Sequence[str]]) -> str | None:
    """The Bard service named on the first command line that runs ``bard <service>``
    (``tini -- bard agent-api``, ``/opt/bard/bin/python /opt/bard/bin/bard replayer-api``, ...)."""
    for argv in command_lines:
        for program, argument in zip(argv, argv[1:], strict=False):
            if Path(program).name == "bard" and argument in SERVICES:
                return argument
    return None


def running_command_lines(proc: Path = Path("/proc")) -> list[list[str]]:
    """The command lines of the processes visible here (a container sees its own)."""
    lines = []
    for entry in sorted(proc.glob("[0-9]*/cmdline"), key=lambda p: int(p.parent.name)):
        try:
            raw = entry.read_bytes()
        except OSError:  # the process ended while we looked
            continue
        if raw:
            lines.append(raw.decode(errors="replace").rstrip("\0").split("\0"))
    return lines


def probe_http(host: str, port: int, path: str = "/healthz") -> Verdict:
    # An API listening on every address is probed on loopback; one bound to an address, on that address.
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"http://{netloc}{path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return Verdict(True, f"{url} answered {response.status}")
    except urllib.error.HTTPError as exc:
        return Verdict(False, f"{url} answered {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Verdict(False, f"{url} did not answer: {reason}")


def default_max_lag(settings: Settings) -> float:
    """How long a session may stay expired before the ender counts as stuck: its grace, a few of its intervals
    (a move of a large backlog takes some), and a minute of slack."""
    return settings.ender_grace_seconds + 6 * settings.ender_interval_seconds + 60.0


async def probe_session_ender(settings: Settings, max_lag_seconds: float) -> Verdict:
    import asyncpg

    try:
        conn = await asyncpg.connect(settings.postgres_url, timeout=TIMEOUT_SECONDS)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return Verdict(False, f"PostgreSQL did not answer: {exc}")
    try:
        # min(expires_at) over the expired rows is one step down the expires_at index.
        lag = await conn.fetchval(
            "SELECT EXTRACT(EPOCH FROM now() - min(expires_at))::float8 FROM active_sessions WHERE expires_at < now()",
            timeout=TIMEOUT_SECONDS,
        )
    except (TimeoutError, asyncpg.PostgresError) as exc:
        return Verdict(False, f"PostgreSQL could not be asked about active sessions: {exc}")
    finally:
        await conn.close()
    if lag is not None and lag > max_lag_seconds:
        return Verdict(False, f"an active session has been expired for {lag:.0f} s (limit {max_lag_seconds:.0f} s): "
                              "the session ender is not moving sessions")
    return Verdict(True, "no session overdue" if lag is None else f"oldest expired session: {lag:.0f} s")


async def probe_consumer(settings: Settings) -> Verdict:
    import aio_pika
    import aiormq

    try:
        connection = await aio_pika.connect(settings.amqp_url, timeout=TIMEOUT_SECONDS)
    except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
        return Verdict(False, f"RabbitMQ did not answer: {exc}")
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.amqp_queue, passive=True)
        consumers = queue.declaration_result.consumer_count
    except (TimeoutError, aiormq.exceptions.AMQPError) as exc:
        return Verdict(False, f"queue {settings.amqp_queue!r} cannot be inspected: {exc}")
    finally:
        await connection.close()
    if not consumers:
        return Verdict(False, f"queue {settings.amqp_queue!r} has no consumer")
    return Verdict(True, f"queue {settings.amqp_queue!r} has {consumers} consumer(s)")


def probe(service: str, settings: Settings, max_lag_seconds: float | None = None) -> Verdict:
    if service == "agent-api":
        return probe_http(settings.host, settings.agent_api_port)
    if service == "replayer-api":
        return probe_http(settings.host, settings.replayer_api_port)
    if service == "up":
        verdicts = [probe_http(settings.host, settings.agent_api_port),
                    probe_http(settings.host, settings.replayer_api_port)]
        return Verdict(all(v.healthy for v in verdicts), "; ".join(v.reason for v in verdicts))
    if service == "session-ender":
        lag = default_max_lag(settings) if max_lag_seconds is None else max_lag_seconds
        return asyncio.run(probe_session_ender(settings, lag))
    if service == "consumer":
        return asyncio.run(probe_consumer(settings))
    if service == "migrate":
        return Verdict(True, "migrate is a one-shot")
    raise ValueError(f"unknown service {service!r}")


@click.command()
@click.argument("service", required=False, type=click.Choice(SERVICES))
@click.option("--max-lag", type=float, default=None,
              help="session-ender: seconds an expired session may wait (default: grace + 6 intervals + 60)")
def healthcheck(service: str | None, max_lag: float | None) -> None:
    """Exit 0 if SERVICE (default: the bard service running in this container) is healthy, else 1."""
    try:
        settings = Settings.from_environ()
    except SettingsError as exc:
        click.echo(f"unhealthy: {exc}")
        raise SystemExit(1) from None
    service = service or service_of(running_command_lines())
    if service is None:
        click.echo("healthy: no bard service runs here")
        return
    verdict = probe(service, settings, max_lag)
    click.echo(f"{'healthy' if verdict.healthy else 'unhealthy'}: {service}: {verdict.reason}")
    raise SystemExit(0 if verdict.healthy else 1)


if __name__ == "__main__":
    healthcheck()
