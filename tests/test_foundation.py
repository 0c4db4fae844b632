"""The shared pieces: settings, the schemas on real services."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from bard import postgres
from bard.logs import configure_logging
from bard.settings import Settings, SettingsError, with_secrets
from clickhouse.migrations import migrate as migrate_clickhouse
from clickhouse.schema import MIGRATIONS


def test_defaults_work_for_bard_up() -> None:
    s = Settings.from_mapping({})
    assert s.mode == "embedded"
    assert s.resolved_clickhouse_url.startswith("chdb://")
    assert s.resolved_clickhouse_database == "bard"
    assert (s.agent_api_port, s.replayer_api_port, s.host) == (3001, 3003, "127.0.0.1")


def test_server_mode_from_url() -> None:
    s = Settings.from_mapping({"BARD_CLICKHOUSE_URL": "https://u:p@ch.example:8443/analytics"})
    assert s.mode == "server"
    assert s.resolved_clickhouse_database == "analytics"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param({"BARD_AGENT_API_PORT": "x"}, "BARD_AGENT_API_PORT", id="port-not-int"),
        pytest.param({"BARD_AGENT_API_PORT": "70000"}, "BARD_AGENT_API_PORT", id="port-out-of-range"),
        pytest.param({"BARD_AGENT_API_PROT": "3001"}, "BARD_AGENT_API_PROT", id="typo"),
        pytest.param({"BARD_CLICKHOUSE_URL": "tcp://x"}, "BARD_CLICKHOUSE_URL", id="bad-scheme"),
        pytest.param({"BARD_MAX_BODY_BYTES": "0"}, "BARD_MAX_BODY_BYTES", id="zero-body"),
        pytest.param({"BARD_AMQP_QUEUE_TYPE": "stream"}, "BARD_AMQP_QUEUE_TYPE", id="queue-type"),
        pytest.param({"BARD_AGENT_STORE_WORKERS": "0"}, "BARD_AGENT_STORE_WORKERS", id="no-store-workers"),
        pytest.param({"BARD_AGENT_MESSAGE_BYTES": "-1"}, "BARD_AGENT_MESSAGE_BYTES", id="message-bytes"),
        pytest.param({"BARD_KEEP_ALIVE_SECONDS": "0"}, "BARD_KEEP_ALIVE_SECONDS", id="no-keep-alive"),
        pytest.param({"BARD_KEEP_ALIVE_SECONDS": "soon"}, "BARD_KEEP_ALIVE_SECONDS", id="keep-alive-not-int"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_mapping(environ)


def test_embedded_secrets_generated_once(tmp_path) -> None:
    s = Settings.from_mapping({"BARD_DATA_DIR": str(tmp_path)})
    first, second = with_secrets(s), with_secrets(s)
    assert first.jwt_secret and first.dashboard_token
    assert (first.jwt_secret, first.dashboard_token) == (second.jwt_secret, second.dashboard_token)
    assert oct((tmp_path / "jwt_secret").stat().st_mode & 0o777) == "0o600"


def test_server_mode_refuses_to_start_without_secrets() -> None:
    s = Settings.from_mapping({"BARD_CLICKHOUSE_URL": "http://ch:8123/bard"})
    with pytest.raises(SettingsError, match="BARD_JWT_SECRET"):
        with_secrets(s)


@pytest.mark.postgres
async def test_postgres_migrations_are_idempotent(pg_pool) -> None:
    async with pg_pool.acquire() as conn:
        assert await postgres.migrate(conn) == []
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
    assert {"active_sessions", "funnels", "schema_migrations"} <= tables


@pytest.mark.clickhouse
def test_clickhouse_migrations_are_idempotent(ch, settings) -> None:
    db = settings.resolved_clickhouse_database
    assert migrate_clickhouse(ch, settings, db) == []
    tables = {r[0] for r in ch.query(f"SHOW TABLES FROM {db}").result_rows}
    assert {"ingest", "events", "conversion_events", "sessions", "schema_migrations"} <= tables


@pytest.mark.clickhouse
def test_server_mode_ddl_parses_with_clickhouse_parser(ch) -> None:
    server = Settings.from_mapping({"BARD_CLICKHOUSE_URL": "http://default:secret@ch:8123/bard"})
    statements = [st for m in MIGRATIONS for st in m.statements(server, "bard")]
    assert any("ENGINE = RabbitMQ" in st for st in statements)
    for statement in statements:
        formatted = ch.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
        # tables and views; columns added later; rows that a new table derives from existing ones
        assert formatted.startswith(("CREATE", "ALTER", "INSERT"))


def test_unmarked_test_cannot_reach_a_service() -> None:
    import asyncpg

    with pytest.raises(RuntimeError, match="service marker"):
        asyncpg.connect("postgresql://localhost/x")


# Settings whose default is derived from another one (the README says how), so no literal can be compared.
DERIVED_DEFAULTS = {"clickhouse_url", "clickhouse_database"}
ONLY_LITERALS = re.compile(r"`[^`]*`(, `[^`]*`)*")


def readme_settings() -> dict[str, str | None]:
    """Each ``BARD_*`` variable in the README's settings table, with its default as written where the row gives
    one literal per variable (else None)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str | None] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`BARD_"):
            continue
        names = re.findall(r"`(BARD_[A-Z0-9_]+)`", cells[0])
        values = re.findall(r"`([^`]*)`", cells[1]) if ONLY_LITERALS.fullmatch(cells[1]) else []
        for index, name in enumerate(names):
            found[name] = values[index] if len(values) == len(names) else None
    return found


def written(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_the_readme_names_every_setting_with_the_default_the_code_has() -> None:
    documented = readme_settings()
    fields = {f"BARD_{name.upper()}": name for name in Settings.__struct_fields__}
    assert sorted(set(fields) - set(documented)) == [], "settings the README does not name"
    assert sorted(set(documented) - set(fields)) == [], "README rows for settings that do not exist"
    defaults = Settings()
    wrong = {name: (shown, written(getattr(defaults, fields[name])))
             for name, shown in documented.items()
             if shown is not None and fields[name] not in DERIVED_DEFAULTS
             and shown != written(getattr(defaults, fields[name]))}
    assert wrong == {}, "README default vs the code's"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_log_lines_as_json_objects_or_text(log_format: str) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    try:
        configure_logging(Settings.from_mapping({"BARD_LOG_FORMAT": log_format}), stream=out)
        # uvicorn's records carry their message again with terminal colours, which a JSON line leaves out.
        logging.getLogger("bard.test").info("moved %d sessions", 3, extra={"color_message": "\x1b[36mmoved\x1b[0m"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("bard.test").exception("a move failed")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    if log_format == "text":
        assert " INFO bard.test: moved 3 sessions" in out.getvalue()
        return
    lines = out.getvalue().splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])  # one object per line, the traceback inside
    assert len(lines) == 2
    assert {k: first[k] for k in ("level", "logger", "message")} == {
        "level": "INFO", "logger": "bard.test", "message": "moved 3 sessions"}
    assert first["time"] and "color_message" not in first
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["exc_info"]


def test_an_unknown_log_format_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="BARD_LOG_FORMAT"):
        Settings.from_mapping({"BARD_LOG_FORMAT": "xml"})
