"""PostgreSQL: Bard's small transactional store (active sessions and funnels), its schema and its pool.

The schema is a list of numbered, idempotent migrations recorded in ``schema_migrations``. ``ensure_database``
creates the configured database when it is missing, so ``bard up`` works on a fresh server.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "active_sessions",
        """
        -- A session while it is active. Times of events are client milliseconds (they order events);
        -- last_seen_at and expires_at are server time (they decide expiry, see session_ender).
        -- segment_id names this stretch of activity: when a late batch reopens a session that already
        -- ended, the new row gets a new segment, and the move merges it into the ended session once.
        CREATE TABLE IF NOT EXISTS active_sessions (
            session_id     uuid PRIMARY KEY,
            segment_id     uuid NOT NULL DEFAULT gen_random_uuid(),
            app_name       text NOT NULL,
            first_event_at bigint NOT NULL,
            last_event_at  bigint NOT NULL,
            max_idle_ms    integer NOT NULL,
            event_count    bigint NOT NULL,
            error_count    bigint NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now(),
            last_seen_at   timestamptz NOT NULL DEFAULT now(),
            expires_at     timestamptz NOT NULL
        );
        CREATE INDEX IF NOT EXISTS active_sessions_expires_at ON active_sessions (expires_at);
        """,
    ),
    (
        2,
        "funnels",
        """
        CREATE TABLE IF NOT EXISTS funnels (
            id          bigserial PRIMARY KEY,
            name        text NOT NULL,
            definition  jsonb NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now(),
            deleted_at  timestamptz
        );
        CREATE INDEX IF NOT EXISTS funnels_live ON funnels (id) WHERE deleted_at IS NULL;
        """,
    ),
    (
        3,
        "active_session_click_targets",
        """
        -- The links and buttons of an active session's pages, so that a click the agent did not mark can be
        -- named (agent_api/click_targets.py): one row per full snapshot or mutation that brought any, with
        -- {"<rrweb node id>": "<label>"}. Times are client milliseconds. A full snapshot starts a page (also
        -- with no targets): rrweb numbers nodes afresh, so ids of earlier rows name nothing after it.
        -- The rows go with the session: the session ender's delete cascades.
        CREATE TABLE IF NOT EXISTS active_session_click_targets (
            session_id   uuid NOT NULL REFERENCES active_sessions ON DELETE CASCADE,
            since        bigint NOT NULL,
            starts_page  boolean NOT NULL,
            targets      jsonb NOT NULL
        );
        CREATE INDEX IF NOT EXISTS active_session_click_targets_session
            ON active_session_click_targets (session_id, since);
        """,
    ),
    (
        4,
        "active_session_metadata",
        """
        -- What the agent API reads of an active session beside its counts (agent_api/sessions.py): the client
        -- from the User-Agent ('' / 0 unknown), the entry page of the earliest Meta event (entry_at, client ms)
        -- and the exit path of the latest (exit_at); NULL times: no Meta event yet. The rage/dead/error click
        -- counts stay 0 until something counts them. Constant defaults: existing rows are not rewritten.
        ALTER TABLE active_sessions
            ADD COLUMN IF NOT EXISTS browser           text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS browser_major     integer NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS os                text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS device_type       text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS viewport_width    integer NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS viewport_height   integer NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS entry_at          bigint,
            ADD COLUMN IF NOT EXISTS entry_url         text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS entry_path        text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS exit_at           bigint,
            ADD COLUMN IF NOT EXISTS exit_path         text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS page_count        bigint NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS click_count       bigint NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS rage_click_count  bigint NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS dead_click_count  bigint NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS error_click_count bigint NOT NULL DEFAULT 0;
        """,
    ),
    (
        5,
        "active_session_country",
        """
        -- The country of the session's client address (agent_api/countries.py): ISO 3166-1 alpha-2, '' unknown;
        -- the first one known stays. The address itself is never stored. A constant default: no rewrite.
        ALTER TABLE active_sessions ADD COLUMN IF NOT EXISTS country text NOT NULL DEFAULT '';
        """,
    ),
    (
        6,
        "active_session_input_targets",
        """
        -- The text fields of an active session's pages beside its links and buttons, so that typing on a page
        -- another batch brought can be tagged 'input' (agent_api/click_targets.py): {"<rrweb node id>":
        -- "<label>"}, the label from the page's text about the field, never its value. A constant default: rows
        -- from before read as pages without text fields, and none is rewritten.
        ALTER TABLE active_session_click_targets ADD COLUMN IF NOT EXISTS inputs jsonb NOT NULL DEFAULT '{}';
        """,
    ),
)


def _administered(url: str) -> tuple[str, str, str] | None:
    """For the database named in ``url``: the URL of the server's ``postgres`` database (where databases are
    created and dropped), the name, and the name quoted as an identifier; None when ``url`` names none."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        return None
    return urlunsplit(parts._replace(path="/postgres")), name, '"' + name.replace('"', '""') + '"'


async def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (connecting to ``postgres`` to do so)."""
    target = _administered(url)
    if target is None:
        return
    admin_url, name, quoted = target
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f"CREATE DATABASE {quoted}")
            log.info("created PostgreSQL database %s", name)
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await admin.close()
    else:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the database named in ``url`` if it exists, ending its sessions (connecting to ``postgres`` to do so).
    For throwaway databases: the tests' and the benchmarks'."""
    target = _administered(url)
    if target is None:
        return
    admin_url, _, quoted = target
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await admin.close()


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply pending migrations under an advisory lock, so concurrent starts do not race."""
    applied = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(5150)")
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY, name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            log.info("postgres migration %03d_%s applied", version, name)
            applied.append(version)
    return applied


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
    assert pool is not None
    return pool
