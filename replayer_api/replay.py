"""A session's rrweb events, in timestamp order, streamed as one JSON array.

Events are read in chunks by keyset on the table's own sorting key ``(session_id, ts, batch_id, seq)``, so a
chunk is a range read however large the session, and memory stays one chunk whatever the session's size. A
chunk is sized to about :data:`CHUNK_BYTES` from the events seen so far (mouse moves are a few hundred bytes, a
full snapshot can be megabytes), between :data:`MIN_CHUNK_EVENTS` and :data:`MAX_CHUNK_EVENTS` events.
``FINAL`` collapses the copies a redelivered batch leaves until they merge. Each event is stored as the JSON
text the agent sent, so it is written out as is, never parsed again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from replayer_api.warehouse import Warehouse

CHUNK_BYTES = 4 * 1024 * 1024
FIRST_CHUNK_EVENTS = 1000
MIN_CHUNK_EVENTS = 100
MAX_CHUNK_EVENTS = 20_000

FIRST_CHUNK = (
    "SELECT toUnixTimestamp64Milli(ts), batch_id, seq, event FROM events FINAL "
    "WHERE session_id = {session:UUID} "
    "ORDER BY ts, batch_id, seq LIMIT {limit:UInt64}"
)
NEXT_CHUNK = (
    "SELECT toUnixTimestamp64Milli(ts), batch_id, seq, event FROM events FINAL "
    "WHERE session_id = {session:UUID} "
    "AND (ts, batch_id, seq) > (fromUnixTimestamp64Milli({ts:Int64}, 'UTC'), {batch:UUID}, {seq:UInt32}) "
    "ORDER BY ts, batch_id, seq LIMIT {limit:UInt64}"
)


async def event_chunks(warehouse: Warehouse, session_id: uuid.UUID,
                       first_chunk_events: int = FIRST_CHUNK_EVENTS) -> AsyncIterator[list[str]]:
    """The session's events as JSON texts, chunk by chunk, in (timestamp, batch, place in batch) order."""
    sql = FIRST_CHUNK
    parameters: dict[str, object] = {"session": str(session_id)}
    limit = first_chunk_events
    seen_events = seen_bytes = 0
    while True:
        rows = await warehouse.rows(sql, {**parameters, "limit": limit})
        if not rows:
            return
        events = [row[3] for row in rows]
        yield events
        if len(rows) < limit:
            return
        seen_events += len(events)
        seen_bytes += sum(len(event) for event in events)
        limit = max(MIN_CHUNK_EVENTS, min(MAX_CHUNK_EVENTS, CHUNK_BYTES * seen_events // max(1, seen_bytes)))
        last = rows[-1]
        parameters = {**parameters, "ts": int(last[0]), "batch": str(last[1]), "seq": int(last[2])}
        sql = NEXT_CHUNK


async def json_array(first: list[str], rest: AsyncIterator[list[str]]) -> AsyncIterator[bytes]:
    """Write chunks of JSON texts as one JSON array, a chunk at a time."""
    yield b"[" + ",".join(first).encode()
    async for chunk in rest:
        yield b"," + ",".join(chunk).encode()
    yield b"]"


NDJSON = "application/x-ndjson"


async def ndjson_lines(first: list[str], rest: AsyncIterator[list[str]]) -> AsyncIterator[bytes]:
    """Write chunks of JSON texts as NDJSON, one event per line, so a browser can parse each event as it arrives.

    An event is stored as the JSON text the agent sent, which may hold line breaks between its tokens (valid
    JSON never has one inside a string), so they become spaces: the same JSON value on one line."""
    yield _lines(first)
    async for chunk in rest:
        yield _lines(chunk)


def _lines(chunk: list[str]) -> bytes:
    text = "\n".join(event.replace("\r", " ").replace("\n", " ") for event in chunk) + "\n"
    return text.encode()
