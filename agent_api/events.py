"""The rrweb events Bard reads from a batch: only the fields it checks or tags on, decoded with msgspec.

Each event of a batch is decoded from its own raw JSON (the raw bytes are what ClickHouse stores, untouched);
fields Bard does not read are skipped, not built into Python objects. ``type`` is the union's tag, so a type
outside 0-6 fails decoding like any other bad field.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

import msgspec
from msgspec import Meta, Raw, Struct

EARLIEST_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
LATEST_TIMESTAMP_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
# A sane range for client clocks: wide enough for any skewed clock, narrow enough that a bogus timestamp
# cannot land in a ClickHouse partition centuries away.
Timestamp = Annotated[int, Meta(ge=EARLIEST_TIMESTAMP_MS, lt=LATEST_TIMESTAMP_MS)]

CONSOLE_PLUGIN = "rrweb/console@1"


class RrwebEvent(Struct, tag_field="type", frozen=True):
    timestamp: Timestamp


class DomContentLoaded(RrwebEvent, tag=0, frozen=True):
    pass


class Load(RrwebEvent, tag=1, frozen=True):
    pass


class FullSnapshot(RrwebEvent, tag=2, frozen=True):
    pass


class IncrementalData(Struct, frozen=True):
    # Any: rrweb's sources put different things here; Bard reads a click (source 2, type 2, on node ``id``) or
    # an input (source 5, on node ``id``; its ``text`` and ``isChecked`` are the field's content, never read),
    # and looks into mutations (source 0) for the links, buttons and text fields they add.
    source: Any = None
    type: Any = None
    id: Any = None
    userTriggered: Any = None  # on inputs, with rrweb's userTriggeredOnInput: false when a script set the value


class Incremental(RrwebEvent, tag=3, frozen=True):
    data: IncrementalData = IncrementalData()
    # Kept raw: read only on a click, ignored on every other event.
    conversionData: Raw = Raw()

    @property
    def is_click(self) -> bool:
        source, kind = self.data.source, self.data.type
        return type(source) is int and type(kind) is int and source == 2 and kind == 2

    @property
    def is_input(self) -> bool:
        """An input the user made (rrweb says ``userTriggered: false`` of a value a script set, when asked to)."""
        source = self.data.source
        return type(source) is int and source == 5 and self.data.userTriggered is not False

    @property
    def is_mutation(self) -> bool:
        source = self.data.source
        return type(source) is int and source == 0


class MetaData(Struct, frozen=True):
    # Any: read for the session's pages (agent_api.pages), never a reason to refuse a batch.
    href: Any = None
    width: Any = None
    height: Any = None


class MetaEvent(RrwebEvent, tag=4, frozen=True):
    data: MetaData = MetaData()


class CustomData(Struct, frozen=True):
    tag: str


class Custom(RrwebEvent, tag=5, frozen=True):
    data: CustomData


class PluginData(Struct, frozen=True):
    plugin: str = ""
    payload: Raw = Raw()


class Plugin(RrwebEvent, tag=6, frozen=True):
    data: PluginData = PluginData()


Event = DomContentLoaded | Load | FullSnapshot | Incremental | MetaEvent | Custom | Plugin

EVENT_TYPE_NUMBERS: dict[type, int] = {cls: cls.__struct_config__.tag for cls in get_args(Event)}


class ClickConversionData(Struct, frozen=True):
    eventType: str | None = None
    textContent: str | None = None


class ConsolePayload(Struct, frozen=True):
    level: str = ""


event_decoder = msgspec.json.Decoder(Event)
click_conversion_decoder = msgspec.json.Decoder(ClickConversionData)
console_payload_decoder = msgspec.json.Decoder(ConsolePayload)
