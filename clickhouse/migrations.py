"""Apply the warehouse migrations of :mod:`clickhouse.schema`, each once, recorded in ``schema_migrations``.

Every statement is idempotent (``IF NOT EXISTS``), so a migration interrupted half-way is simply run again.
"""

from __future__ import annotations

import logging

from clickhouse_connect.driver.client import Client

from bard.settings import Settings
from clickhouse.schema import MIGRATIONS
from clickhouse.sql import check_database_name

log = logging.getLogger(__name__)


def migrate(client: Client, settings: Settings, database: str) -> list[int]:
    """Bring ``database`` up to date; returns the versions applied now."""
    check_database_name(database)
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"""CREATE TABLE IF NOT EXISTS {database}.schema_migrations (
                version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
            ) ENGINE = ReplacingMergeTree ORDER BY version"""
    )
    done = {row[0] for row in client.query(f"SELECT version FROM {database}.schema_migrations").result_rows}
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done or settings.mode not in migration.modes:
            continue
        for statement in migration.statements(settings, database):
            client.command(statement)
        client.insert(f"{database}.schema_migrations", [[migration.version, migration.name]],
                      column_names=["version", "name"])
        log.info("clickhouse migration %03d_%s applied to %s", migration.version, migration.name, database)
        applied.append(migration.version)
    return applied
