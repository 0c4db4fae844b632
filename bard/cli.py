"""The ``bard`` command: ``bard up`` runs everything in one process on the embedded defaults; the other
commands run one part each, as production does (one process per service).

Nothing here imports prometheus_client, nor a module that does, before the command has run: ``bard up`` and
``bard agent-api`` serve from several processes and set up the metrics directory they share first
(:mod:`bard.metrics_directory`); the commands that run one process keep their metrics in memory."""

from __future__ import annotations

import asyncio

import click

from bard.logs import configure_logging
from bard.metrics_directory import shared_metrics_directory
from bard.settings import Settings, SettingsError, with_secrets
from deploy.healthcheck import healthcheck


def _settings() -> Settings:
    try:
        return with_secrets(Settings.from_environ())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _logging(settings: Settings) -> None:
    configure_logging(settings)


@click.group()
def main() -> None:
    """Bard: session replay and funnel analysis for apps recorded with the bardrr agent.

    Settings are BARD_* environment variables; see the README."""


@main.command()
def up() -> None:
    """Run every part on the embedded defaults: one process, and the agent API's workers."""
    settings = _settings()
    _logging(settings)
    with shared_metrics_directory():
        from bard.up import run_all

        try:
            asyncio.run(run_all(settings))
        except SettingsError as exc:  # e.g. a port in use: say which setting, without a traceback
            raise click.ClickException(str(exc)) from None


@main.command()
def migrate() -> None:
    """Create or update the PostgreSQL and ClickHouse schemas, then exit."""
    from bard.up import migrate_all

    settings = _settings()
    _logging(settings)
    asyncio.run(migrate_all(settings))


@main.command("agent-api")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="processes to serve with  [default: BARD_AGENT_API_WORKERS, 2]")
def agent_api(workers: int | None) -> None:
    """Serve the agent API (bardrr's /authenticate and /record)."""
    import uvicorn

    settings = _settings()
    _logging(settings)
    workers = workers or max(1, settings.agent_api_workers)
    # uvicorn restarts a worker that dies; the agent API has no live gauge, so nothing needs forgetting then.
    with shared_metrics_directory():
        uvicorn.run(
            "agent_api.app:create_app_from_environ",
            factory=True,
            host=settings.host,
            port=settings.agent_api_port,
            workers=workers,
            log_level=settings.log_level.lower(),
            access_log=False,
            log_config=None,  # uvicorn's loggers reach Bard's handler (bard.logs)
            proxy_headers=False,  # the client address is bard.client_address's to decide (BARD_TRUSTED_PROXIES)
        )


@main.command("replayer-api")
def replayer_api() -> None:
    """Serve the dashboard API."""
    import uvicorn

    from replayer_api.app import create_app

    settings = _settings()
    _logging(settings)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.replayer_api_port,
                log_level=settings.log_level.lower(), access_log=False, log_config=None, proxy_headers=False)


@main.command("session-ender")
def session_ender() -> None:
    """Move expired sessions from PostgreSQL to ClickHouse, on a schedule; metrics on BARD_ENDER_METRICS_PORT."""
    from session_ender.service import run

    settings = _settings()
    _logging(settings)
    try:
        asyncio.run(run(settings))
    except SettingsError as exc:  # the metrics port in use
        raise click.ClickException(str(exc)) from None


@main.command()
def consumer() -> None:
    """Consume Bard's queue into ClickHouse (for a ClickHouse without the RabbitMQ engine); metrics on
    BARD_CONSUMER_METRICS_PORT."""
    from clickhouse.consumer import run

    settings = _settings()
    _logging(settings)
    try:
        asyncio.run(run(settings))
    except SettingsError as exc:  # the metrics port in use
        raise click.ClickException(str(exc)) from None


main.add_command(healthcheck)
