"""The ``bard`` command: ``bard up`` runs everything in one process on the embedded defaults; the other
commands run one part each, as production does (one process per service).

Nothing here imports prometheus_client, nor a module that does, before the command has run: ``bard up`` and
``bard agent-api`` serve from several processes and set up the metrics directory they share first
(:mod:`bard.metrics_directory`); the commands that run one process keep their metrics in memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from bard.logs import configure_logging
from bard.metrics_directory import shared_metrics_directory
from bard.serving import uvicorn_options
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
            **uvicorn_options(settings),
        )


@main.command("replayer-api")
def replayer_api() -> None:
    """Serve the dashboard API."""
    import uvicorn

    from replayer_api.app import create_app

    settings = _settings()
    _logging(settings)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.replayer_api_port, **uvicorn_options(settings))


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


def _local_url(settings: Settings, port: int) -> str:
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


@main.command()
@click.option("--sessions", type=click.IntRange(min=1, max=2000), default=60, show_default=True,
              help="sessions to record")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="makes the visits repeatable (session ids are always new)  [default: a random seed, printed]")
@click.option("--agent-url", default=None, help="the agent API  [default: BARD_HOST:BARD_AGENT_API_PORT]")
@click.option("--replayer-url", default=None,
              help="the replayer API, for the funnels  [default: BARD_HOST:BARD_REPLAYER_API_PORT]")
@click.option("--allow-remote", is_flag=True, help="record into a Bard that is not on this machine")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0, max=3600), default=120, show_default=True,
              help="seconds to wait for the sessions to end and show in the session list")
def demo(sessions: int, seed: int | None, agent_url: str | None, replayer_url: str | None, allow_remote: bool,
         wait_seconds: float) -> None:
    """Record realistic demo sessions into a running Bard through its agent API, as browsers running bardrr
    would, then add two example funnels. Run it again to add more; existing funnels are left alone."""
    import random

    from bard import demo_data

    try:
        settings = Settings.from_environ()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        agent = demo_data.check_url(agent_url or _local_url(settings, settings.agent_api_port), "the agent API",
                                    "--agent-url", allow_remote=allow_remote)
        replayer = demo_data.check_url(replayer_url or _local_url(settings, settings.replayer_api_port),
                                       "the replayer API", "--replayer-url", allow_remote=allow_remote)
    except demo_data.DemoError as exc:
        raise click.ClickException(str(exc)) from None
    token = settings.dashboard_token or _stored_token(settings)
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    try:
        outcome = asyncio.run(demo_data.run(agent, replayer, token, sessions=sessions, seed=seed,
                                            wait_seconds=wait_seconds, progress=demo_data.Bars()))
    except demo_data.DemoError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(demo_data.describe(outcome, replayer, wait_seconds))


def _stored_token(settings: Settings) -> str:
    """The dashboard token ``bard up`` generated, read without generating one (``with_secrets`` would)."""
    path = Path(settings.data_dir, "dashboard_token")
    token = path.read_text().strip() if path.is_file() else ""
    if not token:
        raise click.ClickException(f"no dashboard token: {path} does not exist; start Bard with `bard up` first "
                                   "(from this folder), or set BARD_DASHBOARD_TOKEN")
    return token


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--endpoint", default=None,
              help="Bard's agent API as the app's users reach it  [default: BARD_HOST:BARD_AGENT_API_PORT]")
@click.option("--app-name", default=None, help="the app's name in Bard  [default: package.json's name]")
@click.option("--write", is_flag=True, help="write the changes (without it, only show them)")
@click.option("--force", is_flag=True, help="replace a bardrr setup that is there already, without asking")
def instrument(path: Path, endpoint: str | None, app_name: str | None, write: bool, force: bool) -> None:
    """Add the bardrr agent to the JavaScript app in PATH (a folder with package.json): bardrr 2.3.1 with its
    rrweb pin, and the agent's start where the app starts in the browser. Prints the changes as a unified diff;
    writes them only with --write."""
    import sys

    from bard import instrument as instrumenting

    try:
        settings = Settings.from_environ()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    endpoint = endpoint or _local_url(settings, settings.agent_api_port)
    try:
        try:
            plan = instrumenting.plan(path, endpoint=endpoint, app_name=app_name, replace=force)
        except instrumenting.ExistingSetup as existing:
            reasons = "\n".join(f"  - {reason}" for reason in existing.reasons)
            if not (sys.stdin.isatty() and sys.stdout.isatty()):
                raise click.ClickException(
                    f"{path} has a bardrr setup already:\n{reasons}\nNothing changed. Run again with --force to "
                    "replace it, or in a terminal to be asked.") from None
            click.echo(f"{path} has a bardrr setup already:\n{reasons}", err=True)
            if not click.confirm("Replace it?", default=False, err=True):
                raise click.ClickException("nothing changed") from None
            plan = instrumenting.plan(path, endpoint=endpoint, app_name=app_name, replace=True)
    except instrumenting.InstrumentError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(plan.diff(), nl=False)
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    if not plan.changes:
        click.echo(f"Nothing to change in {path} ({plan.kind}): bardrr is set up as asked.", err=True)
    elif write:
        try:
            plan.write()
        except OSError as exc:
            raise click.ClickException(f"could not write the changes, nothing changed: {exc}") from None
        click.echo(f"Wrote {len(plan.changes)} file(s) in {path} ({plan.kind}). Now run `npm install` there.",
                   err=True)
    else:
        click.echo(f"Nothing written ({plan.kind}): run again with --write to apply these changes.", err=True)


main.add_command(healthcheck)
