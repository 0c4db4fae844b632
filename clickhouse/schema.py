"""The warehouse schema as numbered, idempotent, recorded migrations.

How an event reaches the tables: every message on Bard's queue is JSONEachRow, one row per rrweb event, in the
shape of ``ingest`` below. Rows enter through ``ingest`` (a ``Null`` table: it keeps nothing) and two
materialized views fan them out: every row into ``events``, tagged rows into ``conversion_events``. In server
mode ClickHouse's RabbitMQ engine table ``ingest_queue`` consumes Bard's queue and a view forwards its rows into
``ingest``; in embedded mode (chDB has no RabbitMQ engine) Bard's consumer inserts the same bytes into
``ingest``. One stream, one routing, in both modes.

Redelivery: RabbitMQ and its engine are at-least-once, so a message may be inserted twice. Every row carries
the identity of its event, ``(batch_id, seq)``: the batch's id given by the agent API when it accepted the
batch, and the event's place in it. ``events`` and ``conversion_events`` are ReplacingMergeTree tables whose
sorting key ends with that identity, so copies of one event collapse on merge, and readers that must see
exactly one copy read with ``FINAL`` (cheap for one session: the key starts with ``session_id``) or do not care
(a funnel looks for the earliest matching event, which a copy does not change).

Statements are templates only for names that come from Bard's settings (the queue, the broker address), never
for request data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bard.settings import Settings

INGEST_COLUMNS = """
    session_id UUID,
    app_name String,
    batch_id UUID,
    seq UInt32,
    ts Int64,
    type UInt8,
    event String,
    kind String,
    label String,
    is_error UInt8,
    received_at Int64
"""
"""The row shape of a queue message (JSONEachRow). ``ts`` and ``received_at`` are milliseconds since the epoch
(client and server clocks); ``event`` is the rrweb event as sent, an object read as its JSON text; ``kind`` is
``''``, ``'click'`` or ``'custom'``."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[Settings, str], list[str]]
    modes: frozenset[str] = field(default_factory=lambda: frozenset({"embedded", "server"}))


def _quote(value: str) -> str:
    """A ClickHouse string literal for a value taken from Bard's own settings (never request data)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _events(settings: Settings, db: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {db}.ingest ({INGEST_COLUMNS}) ENGINE = Null",
        f"""
        CREATE TABLE IF NOT EXISTS {db}.events (
            session_id UUID,
            app_name LowCardinality(String),
            ts DateTime64(3, 'UTC'),
            type UInt8,
            batch_id UUID,
            seq UInt32,
            event String CODEC(ZSTD(3)),
            received_at DateTime64(3, 'UTC'),
            inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(received_at)
        ORDER BY (session_id, ts, batch_id, seq)
        """,
        f"""
        CREATE TABLE IF NOT EXISTS {db}.conversion_events (
            session_id UUID,
            app_name LowCardinality(String),
            ts DateTime64(3, 'UTC'),
            kind Enum8('click' = 1, 'custom' = 2),
            label String,
            batch_id UUID,
            seq UInt32
        ) ENGINE = ReplacingMergeTree
        ORDER BY (kind, label, session_id, ts, batch_id, seq)
        """,
        f"""
        CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_mv TO {db}.events AS
        SELECT session_id, app_name, fromUnixTimestamp64Milli(ts, 'UTC') AS ts, type, batch_id, seq, event,
               fromUnixTimestamp64Milli(received_at, 'UTC') AS received_at
        FROM {db}.ingest
        """,
        f"""
        CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.conversion_events_mv TO {db}.conversion_events AS
        SELECT session_id, app_name, fromUnixTimestamp64Milli(ts, 'UTC') AS ts, kind, label, batch_id, seq
        FROM {db}.ingest
        WHERE kind IN ('click', 'custom')
        """,
        # Broken messages are kept here for inspection instead of being lost or blocking the queue: by the
        # RabbitMQ engine's error stream in server mode, by Bard's consumer in embedded mode.
        f"""
        CREATE TABLE IF NOT EXISTS {db}.ingest_errors (
            received_at DateTime64(3, 'UTC') DEFAULT now64(3),
            error String,
            raw_message String CODEC(ZSTD(3))
        ) ENGINE = MergeTree ORDER BY received_at
        """,
    ]


def _sessions(settings: Settings, db: str) -> list[str]:
    # Ended sessions: one row per session as readers see it, read with FINAL (cheap: the key is session_id).
    #
    # Why ReplacingMergeTree(version) with per-segment counts: a session reaches this table by moves, one per
    # PostgreSQL segment (its first stretch of activity, then each late batch's). The session ender reads the
    # current row (highest version) of every session of a batch, merges the segment in and inserts the whole new
    # row with a higher version, so FINAL shows exactly the latest merge: one row, never a sum of parts. Start and end
    # are min/max, so merging again changes nothing; counts would double, so the row keeps each segment's counts
    # (segments, segment_event_counts, segment_error_counts: parallel arrays) and event_count/error_count are
    # their sums. A rerun after a crash between this insert and the PostgreSQL delete merges the same segment
    # again and *replaces* its counts: same row, or the newer counts if a batch arrived meanwhile.
    # Not SummingMergeTree/AggregatingMergeTree: a repeated insert would be added, which is the doubling to avoid.
    # Moves of one session are serialised by the PostgreSQL row lock (see session_ender.ender); version is
    # max(previous + 1, the claim's PostgreSQL time in microseconds), so a stalled older write never wins.
    # A Replicated* engine keeps these semantics; its reads must then see the last insert (sequential consistency).
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {db}.sessions (
            session_id UUID,
            app_name LowCardinality(String),
            started_at DateTime64(3, 'UTC'),
            ended_at DateTime64(3, 'UTC'),
            duration_ms UInt64 MATERIALIZED toUInt64(greatest(0,
                toUnixTimestamp64Milli(ended_at) - toUnixTimestamp64Milli(started_at))),
            event_count UInt64,
            error_count UInt64,
            date Date MATERIALIZED toDate(started_at),
            segments Array(UUID),
            segment_event_counts Array(UInt64),
            segment_error_counts Array(UInt64),
            version UInt64
        ) ENGINE = ReplacingMergeTree(version)
        ORDER BY session_id
        -- Small granules and compressed blocks: readers look sessions up by id (random UUIDs, so each id is in
        -- its own granule); 1024-row granules in blocks of at most 16 kB make such a lookup read and decompress
        -- about 1/8 of what the defaults (8192 rows, 64 kB-1 MB blocks) would, for ~4 % more bytes on disk.
        SETTINGS index_granularity = 1024, min_compress_block_size = 4096, max_compress_block_size = 16384
        """,
    ]


def _queue(settings: Settings, db: str) -> list[str]:
    amqp = urlsplit(settings.amqp_url)
    host_port = f"{amqp.hostname or 'localhost'}:{amqp.port or 5672}"
    vhost = amqp.path.lstrip("/") or "/"
    return [
        # ingest_errors (migration 1) receives the engine's broken messages through ingest_errors_mv below.
        f"""
        CREATE TABLE IF NOT EXISTS {db}.ingest_queue ({INGEST_COLUMNS})
        ENGINE = RabbitMQ SETTINGS
            rabbitmq_host_port = {_quote(host_port)},
            rabbitmq_username = {_quote(amqp.username or 'guest')},
            rabbitmq_password = {_quote(amqp.password or 'guest')},
            rabbitmq_vhost = {_quote(vhost)},
            rabbitmq_exchange_name = {_quote(settings.amqp_exchange)},
            rabbitmq_exchange_type = 'direct',
            rabbitmq_routing_key_list = {_quote(settings.amqp_queue)},
            rabbitmq_queue_base = {_quote(settings.amqp_queue)},
            rabbitmq_queue_consume = 1,
            rabbitmq_format = 'JSONEachRow',
            rabbitmq_handle_error_mode = 'stream',
            rabbitmq_num_consumers = 2,
            rabbitmq_flush_interval_ms = 500,
            rabbitmq_max_block_size = 65536,
            input_format_json_read_objects_as_strings = 1
        """,
        f"""
        CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ingest_queue_mv TO {db}.ingest AS
        SELECT {INGEST_NAMES} FROM {db}.ingest_queue WHERE length(_error) = 0
        """,
        f"""
        CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ingest_errors_mv TO {db}.ingest_errors AS
        SELECT _error AS error, _raw_message AS raw_message
        FROM {db}.ingest_queue WHERE length(_error) > 0
        """,
    ]


INGEST_NAMES = ", ".join(line.split()[0] for line in INGEST_COLUMNS.strip().splitlines())

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events", _events),
    Migration(2, "sessions", _sessions),
    Migration(3, "ingest_queue", _queue, modes=frozenset({"server"})),
)
