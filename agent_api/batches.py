"""A ``POST /record`` batch: its validation and the queue message it becomes.

Validation is msgspec's: the body decodes into :class:`RecordBody` with ``events`` kept as raw JSON (the bytes
ClickHouse stores, never re-encoded), then each event decodes into the small structs of
:mod:`agent_api.events`. Every failure is an :class:`InvalidRequest` naming the field.

The message is JSONEachRow, one row per event, with exactly the columns of ``clickhouse.schema.INGEST_COLUMNS``;
``event`` is the event's original JSON object embedded as an object (ClickHouse reads an object into a String
column as its text). Rows are assembled from bytes: the hot path builds no dict per event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Annotated, NamedTuple

import msgspec
from msgspec import Meta, Raw, Struct, UnsetType

from agent_api.click_targets import (
    MAX_NODE_ID,
    MAX_TARGETS_PER_BATCH,
    NO_TARGETS,
    may_hold_targets,
    read_mutation,
    read_snapshot,
)
from agent_api.errors import InvalidRequest
from agent_api.events import EVENT_TYPE_NUMBERS, FullSnapshot, Incremental, MetaEvent, event_decoder
from agent_api.pages import NO_PAGES, PagesSeen, pages_seen
from agent_api.tagging import UNTAGGED, Tag, tag_event
from agent_api.user_agents import UNKNOWN_CLIENT, ClientDevice

MAX_APP_NAME_CHARS = 200
TOO_DEEP = "JSON nested too deeply to read (about a thousand levels; a DOM is nowhere near that deep)"


class RecordBody(Struct, frozen=True):
    """The body bardrr posts; field names are the agent's."""

    sessionId: uuid.UUID
    events: Annotated[list[Raw], Meta(min_length=1)]
    MAX_IDLE_TIME: Annotated[int, Meta(gt=0)] | UnsetType = msgspec.UNSET


record_body_decoder = msgspec.json.Decoder(RecordBody)


class TargetsFound(NamedTuple):
    """The links, buttons and text fields one event brought: a full snapshot (a new page, even with none) or a
    mutation."""

    since: int  # the event's timestamp
    starts_page: bool
    labels: dict[int, str]  # click targets: rrweb node id -> label
    inputs: dict[int, str]  # text fields: rrweb node id -> label


class OpenClick(NamedTuple):
    """A click the agent did not mark: tagged if its node turns out to be a link or button."""

    position: int  # of the event in the batch
    node_id: int
    at: int  # the event's timestamp


class OpenInput(NamedTuple):
    """An input on a node the batch does not show: tagged if the node turns out to be a text field."""

    position: int  # of the event in the batch
    node_id: int
    at: int  # the event's timestamp


@dataclass(frozen=True, slots=True)
class Batch:
    session_id: uuid.UUID
    app_name: str
    max_idle_ms: int
    raw_events: list[bytes | Raw]
    timestamps: list[int]
    types: list[int]
    tags: list[Tag]
    # For clicks on links and buttons and inputs in text fields (see agent_api.click_targets): the targets of its
    # full snapshots and mutations, its clicks the agent did not mark and its inputs on nodes it does not show
    # (open_inputs, below).
    targets: list[TargetsFound] = field(default_factory=list)
    open_clicks: list[OpenClick] = field(default_factory=list)
    # Session metadata: the request's User-Agent as read, the country of its address (never the address itself:
    # agent_api.countries), and the pages its Meta events show.
    client: ClientDevice = UNKNOWN_CLIENT
    pages: PagesSeen = NO_PAGES
    country: str = ""
    open_inputs: list[OpenInput] = field(default_factory=list)

    @property
    def first_event_at(self) -> int:
        return min(self.timestamps)

    @property
    def last_event_at(self) -> int:
        return max(self.timestamps)

    @property
    def error_count(self) -> int:
        return sum(1 for tag in self.tags if tag.is_error)

    @property
    def click_count(self) -> int:
        """Events tagged as clicks so far (an open click counts once PostgreSQL names it)."""
        return sum(1 for tag in self.tags if tag.kind == "click")

    def with_tags(self, named: dict[int, Tag]) -> Batch:
        """This batch with the events at these indexes tagged so (open clicks and inputs PostgreSQL named)."""
        tags = list(self.tags)
        for index, tag in named.items():
            tags[index] = tag
        return replace(self, tags=tags)

    def ingest_rows(self, batch_id: uuid.UUID, received_at_ms: int) -> bytes:
        """The queue message: newline-terminated JSONEachRow rows, one per event."""
        common = b'{"session_id":"%s","app_name":%s,"batch_id":"%s","received_at":%d,' % (
            str(self.session_id).encode(),
            msgspec.json.encode(self.app_name),
            str(batch_id).encode(),
            received_at_ms,
        )
        parts: list[bytes | Raw] = []
        append = parts.append
        for seq, (raw, ts, type_, tag) in enumerate(
            zip(self.raw_events, self.timestamps, self.types, self.tags, strict=True)
        ):
            append(common)
            if tag is UNTAGGED:
                append(b'"seq":%d,"ts":%d,"type":%d,"kind":"","label":"","is_error":0,"event":' % (seq, ts, type_))
            else:
                append(
                    b'"seq":%d,"ts":%d,"type":%d,"kind":"%s","label":%s,"is_error":%d,"event":'
                    % (seq, ts, type_, tag.kind.encode(), msgspec.json.encode(tag.label), tag.is_error)
                )
            append(raw)
            append(b"}\n")
        return b"".join(parts)


def parse_app_name(value: str | None) -> str:
    if value is None:
        raise InvalidRequest("appName", "the appName header is missing")
    name = value.strip()
    if not name:
        raise InvalidRequest("appName", "the appName header is empty")
    if len(name) > MAX_APP_NAME_CHARS:
        raise InvalidRequest("appName", f"the appName header is longer than {MAX_APP_NAME_CHARS} characters")
    return name


def parse_batch(
    body: bytes, app_name: str, *, max_idle_default_ms: int, max_idle_max_ms: int,
    client: ClientDevice = UNKNOWN_CLIENT, country: str = "",
) -> Batch:
    try:
        record = record_body_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidRequest.from_validation(exc) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest("body", f"not JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("body", TOO_DEEP) from None

    if isinstance(record.MAX_IDLE_TIME, UnsetType):
        max_idle_ms = max_idle_default_ms
    else:
        max_idle_ms = min(record.MAX_IDLE_TIME, max_idle_max_ms)

    raw_events: list[bytes | Raw] = list(record.events)
    if b"\n" in body or b"\r" in body:
        # A row of the message must hold on one line; outside strings (where JSON escapes them) line breaks
        # are only whitespace, so blanking them keeps the event's meaning.
        raw_events = [bytes(raw).replace(b"\n", b" ").replace(b"\r", b" ") for raw in raw_events]

    timestamps: list[int] = []
    types: list[int] = []
    tags: list[Tag] = []
    targets: list[TargetsFound] = []
    open_clicks: list[OpenClick] = []
    open_inputs: list[OpenInput] = []
    budget = MAX_TARGETS_PER_BATCH
    # The targets this batch itself shows, for its own clicks and inputs; complete once it has a full snapshot.
    seen: dict[int, str] = {}
    seen_inputs: dict[int, str] = {}
    page_known = False
    typing_in: int | None = None  # the field of the run of inputs going on: its later keystrokes are no event
    metas: list[MetaEvent] = []
    for index, raw in enumerate(record.events):
        where = f"events[{index}]"
        try:
            event = event_decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise InvalidRequest.from_validation(exc, where) from None
        except RecursionError:
            raise InvalidRequest(where, TOO_DEEP) from None
        timestamps.append(event.timestamp)
        types.append(EVENT_TYPE_NUMBERS[type(event)])
        tag = tag_event(event, where)
        if isinstance(event, FullSnapshot):
            page_known = True
            typing_in = None
            seen.clear()
            seen_inputs.clear()
            found = read_snapshot(raw, budget) if may_hold_targets(raw) else NO_TARGETS
            targets.append(TargetsFound(event.timestamp, True, found.clicks, found.inputs))
            seen.update(found.clicks)
            seen_inputs.update(found.inputs)
            budget -= len(found.clicks) + len(found.inputs)
        elif isinstance(event, Incremental):
            if event.is_click and tag is UNTAGGED:
                node_id = event.data.id
                if type(node_id) is int and 0 < node_id <= MAX_NODE_ID:
                    if node_id in seen:
                        tag = Tag("click", seen[node_id], False)
                    elif not page_known:  # the target may be in an earlier batch
                        open_clicks.append(OpenClick(index, node_id, event.timestamp))
                        typing_in = None
            elif event.is_input:
                node_id = event.data.id
                if type(node_id) is int and 0 < node_id <= MAX_NODE_ID and node_id != typing_in:
                    if node_id in seen_inputs:
                        tag = Tag("input", seen_inputs[node_id], False)
                        typing_in = node_id
                    elif not page_known:  # the field may be in an earlier batch
                        open_inputs.append(OpenInput(index, node_id, event.timestamp))
                        typing_in = node_id
            elif event.is_mutation and budget > 0 and may_hold_targets(raw):
                found = read_mutation(raw, budget)
                if found.clicks or found.inputs:
                    if found.inputs:
                        typing_in = None  # a run left open for PostgreSQL may be in a field that exists only now
                    targets.append(TargetsFound(event.timestamp, False, found.clicks, found.inputs))
                    seen.update(found.clicks)
                    seen_inputs.update(found.inputs)
                    budget -= len(found.clicks) + len(found.inputs)
        elif isinstance(event, MetaEvent):
            metas.append(event)
        if tag.kind and tag.kind != "input":
            typing_in = None  # a click, a custom event, a page: the next keystroke starts another run
        tags.append(tag)
    return Batch(record.sessionId, app_name, max_idle_ms, raw_events, timestamps, types, tags, targets, open_clicks,
                 client, pages_seen(metas), country, open_inputs)

