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
    # The metadata of migration 4 merges the same way: its counts (pages, clicks...) have per-segment arrays too;
    # what was first seen (client, viewport, entry page) stays the earliest segment's, the exit path is the latest
    # segment's (session_ender.merge).
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


SESSION_METADATA_COLUMNS = """
    browser LowCardinality(String) DEFAULT '',
    browser_major UInt32 DEFAULT 0,
    os LowCardinality(String) DEFAULT '',
    device_type LowCardinality(String) DEFAULT '',
    viewport_width UInt32 DEFAULT 0,
    viewport_height UInt32 DEFAULT 0,
    entry_url String DEFAULT '',
    entry_path String DEFAULT '',
    exit_path String DEFAULT '',
    page_count UInt64 DEFAULT 0,
    click_count UInt64 DEFAULT 0,
    rage_click_count UInt64 DEFAULT 0,
    dead_click_count UInt64 DEFAULT 0,
    error_click_count UInt64 DEFAULT 0,
    segment_page_counts Array(UInt64) DEFAULT [],
    segment_click_counts Array(UInt64) DEFAULT [],
    segment_rage_click_counts Array(UInt64) DEFAULT [],
    segment_dead_click_counts Array(UInt64) DEFAULT [],
    segment_error_click_counts Array(UInt64) DEFAULT []
"""
"""What a session's move brings beside its span and counts (``session_ender.merge`` says how segments merge):
the client read from the User-Agent (``device_type`` is ``desktop``, ``mobile``, ``tablet``, ``bot`` or ``''``,
``browser_major`` 0 when unknown), the entry page of the first Meta event (URL, path, viewport), the exit path of
the last, and more counts, each with its per-segment array like ``segment_event_counts``. The rage, dead and
error click counts stay 0 until something counts them. Sessions moved before this migration read ``''`` and 0."""


def _session_metadata(settings: Settings, db: str) -> list[str]:
    # ADD COLUMN with a constant DEFAULT changes only the table's metadata: old parts are not rewritten, their
    # rows read the default until a merge writes the column.
    columns = [line.strip().rstrip(",") for line in SESSION_METADATA_COLUMNS.strip().splitlines()]
    return [f"ALTER TABLE {db}.sessions " + ", ".join(f"ADD COLUMN IF NOT EXISTS {column}" for column in columns)]


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


SIGNAL_KINDS_ENUM = "Enum8('click' = 1, 'custom' = 2, 'rage_click' = 3, 'dead_click' = 4, 'error_click' = 5)"
"""``conversion_events.kind`` from migration 5 on: the behaviour signals of :mod:`session_ender.signals` beside the
tagged clicks and custom events."""

_SIGNAL_DATA = "Tuple(source Dynamic, type Dynamic, x Dynamic, y Dynamic, plugin Dynamic, payload Tuple(level Dynamic))"
_RRWEB_PREFIX = '{"type":3,"data":{"source":'
_NO_ID = "toUUID('00000000-0000-0000-0000-000000000000')"
# A click as rrweb writes it, coordinates plain decimals of at most 15 integer digits (exactly what a parse reads).
_COORDINATE = r"(-?(?:0|[1-9]\d{0,14})(?:\.\d+)?)"
_RRWEB_CLICK = (r'^\{"type":3,"data":\{"source":2,"type":2,"id":-?\d+,"x":' + _COORDINATE
                + ',"y":' + _COORDINATE + "[,}]")
_RRWEB_MOUSE_INTERACTION = r'^\{"type":3,"data":\{"source":2,"type":(\d+),'


def _written_as_rrweb(*sources: int) -> str:
    """The event's JSON starts as rrweb writes an incremental event of one of these sources."""
    return " OR ".join(f"startsWith(event, {_quote(f'{_RRWEB_PREFIX}{source},')})" for source in sources)


def _parsed_coordinate(name: str) -> str:
    return (f"coalesce(dynamicElement(signal_data.{name}, 'Float64'), "
            f"toFloat64(dynamicElement(signal_data.{name}, 'Int64')), "
            f"toFloat64(dynamicElement(signal_data.{name}, 'UInt64')), nan)")


SIGNAL_FIELDS = f"""
    if(type = 3 AND startsWith(event, {_quote(_RRWEB_PREFIX + '2,"type":2,')}),
       extractGroups(event, {_quote(_RRWEB_CLICK)}), []) AS signal_click_at,
    multiIf(type IN (2, 4), 'reaction', type = 6, 'parse', type != 3, '',
            {_written_as_rrweb(1, 4, 6)}, '', {_written_as_rrweb(0, 3, 5, 14)}, 'reaction',
            notEmpty(signal_click_at), 'click',
            extract(event, {_quote(_RRWEB_MOUSE_INTERACTION)}) NOT IN ('', '2'), '',
            'parse') AS signal_known,
    if(signal_known = 'parse', JSONExtract(event, 'data', {_quote(_SIGNAL_DATA)}),
       CAST(tuple(NULL, NULL, NULL, NULL, NULL, tuple(NULL)), {_quote(_SIGNAL_DATA)})) AS signal_data,
    if(signal_known = 'parse', multiIf(
           type = 3 AND dynamicElement(signal_data.source, 'Int64') = 2
                    AND dynamicElement(signal_data.type, 'Int64') = 2, 'click',
           type = 3 AND dynamicElement(signal_data.source, 'Int64') IN (0, 3, 5, 14), 'reaction',
           type = 6 AND dynamicElement(signal_data.plugin, 'String') = 'rrweb/console@1'
                    AND dynamicElement(signal_data.payload.level, 'String') = 'error', 'error',
           ''), signal_known) AS signal_role,
    multiIf(signal_known = 'click', toFloat64(signal_click_at[1]),
            signal_role = 'click', {_parsed_coordinate('x')}, nan) AS signal_x,
    multiIf(signal_known = 'click', toFloat64(signal_click_at[2]),
            signal_role = 'click', {_parsed_coordinate('y')}, nan) AS signal_y
"""
"""What a behaviour signal needs of an rrweb event, read from ``type`` and ``event`` (the JSON text), as
:mod:`agent_api.events` reads it: ``signal_role`` is ``'click'`` (type 3, ``data.source`` and ``data.type`` the
JSON integer 2), ``'reaction'`` (type 2 full snapshot or 4 meta: a new page; type 3 with ``data.source`` the JSON
integer 0 mutation, 3 scroll, 5 input or 14 selection), ``'error'`` (type 6 from ``rrweb/console@1`` at level
``error``, as :mod:`agent_api.tagging` counts errors) or ``''``; ``signal_x``, ``signal_y`` a click's ``data.x``,
``data.y`` when each is a JSON number (ClickHouse reads an integer beyond 64 bits as a string: not one), ``nan``
otherwise.

What this costs at ingest is the JSON parse (~1.3 us for a 200-byte event, and more for the exact types read
here), so an event written as rrweb writes it is read without one: an incremental event that starts
``{"type":3,"data":{"source":N,`` is known by its source, a mouse interaction by its ``type`` after that, and a
click by its plain-decimal ``x`` and ``y`` after its ``id`` (as a parse would read them). The others of types 3
and 6 (console events, events written otherwise) are parsed once, into ``Dynamic`` fields that keep the JSON type
(``"2"``, ``2.0`` and ``true`` are not the integer 2). ClickHouse's parser reads a key's first occurrence and does
not unescape keys: an event with a repeated or escaped key is read as ClickHouse reads it, and the shortcuts
agree with that (they read the first occurrence too, and never an escaped key)."""


def _behaviour_signals(settings: Settings, db: str) -> list[str]:
    # How the signals are computed and why their inputs are kept apart: session_ender.signals.
    #
    # signal_inputs holds what the signals read of every click, reaction and console error, a few bytes a row,
    # so that the session ender's move reads that instead of the rrweb JSON in events (measured ~20x cheaper:
    # the sessions of one move are scattered over events' granules, and their event column, snapshots and all,
    # would be decompressed to read the clicks). Small granules and compressed blocks for the same reason as
    # sessions: readers look sessions up by id. Reactions and errors keep no identity (batch_id and seq zero):
    # only their times matter, so two at the same millisecond may collapse; role is in the key so that a
    # reaction and an error do not. A click keeps its identity, its position (x and y nan when it has none: not
    # Nullable, which reads two more streams per lookup) and its label as the ingest row tagged it (the
    # conversion_events label of the same event, '' when it has none).
    #
    # Idempotent like every migration: the enum grows in place (a metadata change, even in the sorting key);
    # the backfill of events stored before the view existed inserts rows that collapse with copies already
    # there (a rerun, or an event the view also saw), and readers take each row once.
    zero = _NO_ID
    return [
        f"ALTER TABLE {db}.conversion_events MODIFY COLUMN kind {SIGNAL_KINDS_ENUM}",
        f"""
        CREATE TABLE IF NOT EXISTS {db}.signal_inputs (
            session_id UUID,
            app_name LowCardinality(String),
            ts DateTime64(3, 'UTC'),
            role Enum8('click' = 1, 'reaction' = 2, 'error' = 3),
            batch_id UUID,
            seq UInt32,
            x Float64,
            y Float64,
            label String,
            received_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(received_at)
        ORDER BY (session_id, ts, role, batch_id, seq)
        SETTINGS index_granularity = 256, min_compress_block_size = 4096, max_compress_block_size = 16384
        """,
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.signal_inputs_mv TO {db}.signal_inputs AS "
        + _signal_inputs_select(db),
        f"""
        INSERT INTO {db}.signal_inputs (session_id, app_name, ts, role, batch_id, seq, x, y, label, received_at)
        SELECT e.session_id, e.app_name, e.ts, e.signal_role,
               if(e.signal_role = 'click', e.batch_id, {zero}), if(e.signal_role = 'click', e.seq, 0),
               e.signal_x, e.signal_y, if(e.signal_role = 'click', labels.label, ''), e.received_at
        FROM (SELECT session_id, app_name, ts, batch_id, seq, received_at, {SIGNAL_FIELDS} FROM {db}.events) AS e
        LEFT JOIN (
            SELECT session_id, batch_id, seq, any(label) AS label FROM {db}.conversion_events
            WHERE kind = 'click' GROUP BY session_id, batch_id, seq
        ) AS labels ON e.session_id = labels.session_id AND e.batch_id = labels.batch_id AND e.seq = labels.seq
        WHERE e.signal_role != ''
        SETTINGS join_algorithm = 'grace_hash'
        """,
    ]


def _signal_inputs_select(db: str) -> str:
    """The query of ``signal_inputs_mv``: what it keeps of each ingest row (see :data:`SIGNAL_FIELDS`)."""
    return f"""
        SELECT session_id, app_name, fromUnixTimestamp64Milli(ts, 'UTC') AS ts, signal_role AS role,
               if(signal_role = 'click', batch_id, {_NO_ID}) AS batch_id, if(signal_role = 'click', seq, 0) AS seq,
               signal_x AS x, signal_y AS y, if(signal_role = 'click' AND kind = 'click', label, '') AS label,
               fromUnixTimestamp64Milli(received_at, 'UTC') AS received_at
        FROM (SELECT *, {SIGNAL_FIELDS} FROM {db}.ingest)
        WHERE signal_role != ''
        """


def _signal_inputs_without_parse(settings: Settings, db: str) -> list[str]:
    # Migration 5 first shipped a view that parsed the JSON of every click; this one reads the common rrweb
    # shapes without a parse (same rows, measured in bench/signals.py). MODIFY QUERY swaps it atomically, so an
    # insert running meanwhile goes through one view or the other, never neither. A database created now gets
    # the new query from migration 5 already, and this is a no-op for it.
    return [f"ALTER TABLE {db}.signal_inputs_mv MODIFY QUERY {_signal_inputs_select(db)}"]


def _session_country(settings: Settings, db: str) -> list[str]:
    # The country of the session's client address (agent_api/countries.py), first known, merged like the client
    # (session_ender.merge); '' for sessions moved before this migration. A constant default, as in migration 4:
    # only the table's metadata changes, no part is rewritten. The address itself is stored nowhere.
    return [f"ALTER TABLE {db}.sessions ADD COLUMN IF NOT EXISTS country LowCardinality(String) DEFAULT ''"]


PAGE_KINDS_ENUM = ("Enum8('click' = 1, 'custom' = 2, 'rage_click' = 3, 'dead_click' = 4, 'error_click' = 5, "
                   "'page' = 6)")
"""``conversion_events.kind`` from migration 8 on: a page the session loaded (a Meta event; the label is its
URL's path, as :func:`agent_api.pages.url_path` reads it) beside the clicks, custom events and signals."""


def _page_visits(settings: Settings, db: str) -> list[str]:
    # The agent API tags a Meta event kind 'page' (agent_api.tagging); the view copies those rows into
    # conversion_events as it does clicks and custom events, so a page is a funnel step. The enum grows in place
    # (a metadata change) and MODIFY QUERY swaps the view atomically. Sessions recorded before this migration have
    # no page rows: deriving them from the stored Meta events would need ClickHouse to read URLs exactly as
    # Python's urlsplit does, and a near miss would make two answers for one page.
    return [
        f"ALTER TABLE {db}.conversion_events MODIFY COLUMN kind {PAGE_KINDS_ENUM}",
        f"""ALTER TABLE {db}.conversion_events_mv MODIFY QUERY
        SELECT session_id, app_name, fromUnixTimestamp64Milli(ts, 'UTC') AS ts, kind, label, batch_id, seq
        FROM {db}.ingest
        WHERE kind IN ('click', 'custom', 'page')
        """,
    ]


INPUT_KINDS_ENUM = ("Enum8('click' = 1, 'custom' = 2, 'rage_click' = 3, 'dead_click' = 4, 'error_click' = 5, "
                    "'page' = 6, 'input' = 7)")
"""``conversion_events.kind`` from migration 9 on: typing in a text field (an rrweb input event; the label is the
field's, from the page's DOM, never the value typed: :mod:`agent_api.click_targets`) beside the rest."""


def _text_inputs(settings: Settings, db: str) -> list[str]:
    # The agent API tags the first input of a run of typing in a text field kind 'input' (agent_api.tagging);
    # the view lets those rows into conversion_events too, so a field typed in is a funnel step. In place, as
    # migration 8: the enum grows (a metadata change) and MODIFY QUERY swaps the view atomically. Sessions
    # recorded before have no input rows: naming their fields would mean reading their snapshots again.
    return [
        f"ALTER TABLE {db}.conversion_events MODIFY COLUMN kind {INPUT_KINDS_ENUM}",
        f"""ALTER TABLE {db}.conversion_events_mv MODIFY QUERY
        SELECT session_id, app_name, fromUnixTimestamp64Milli(ts, 'UTC') AS ts, kind, label, batch_id, seq
        FROM {db}.ingest
        WHERE kind IN ('click', 'custom', 'page', 'input')
        """,
    ]


INGEST_NAMES = ", ".join(line.split()[0] for line in INGEST_COLUMNS.strip().splitlines())

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events", _events),
    Migration(2, "sessions", _sessions),
    Migration(3, "ingest_queue", _queue, modes=frozenset({"server"})),
    Migration(4, "session_metadata", _session_metadata),
    Migration(5, "behaviour_signals", _behaviour_signals),
    Migration(6, "signal_inputs_without_parse", _signal_inputs_without_parse),
    Migration(7, "session_country", _session_country),
    Migration(8, "page_visits", _page_visits),
    Migration(9, "text_inputs", _text_inputs),
)
