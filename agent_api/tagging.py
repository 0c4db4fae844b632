"""Tagging on the server, never on the client's word alone.

- click: an incremental mouse click (type 3, data.source 2, data.type 2) that the agent marked
  ``conversionData.eventType == "click"``; the label is its ``textContent``, whitespace collapsed, trimmed,
  capped at 256 characters. (The agent marks clicks on ``BUTTON`` nodes only; the clicks it leaves unmarked on
  links and buttons are named in :mod:`agent_api.click_targets`.)
- input: an incremental input (type 3, data.source 5) in a text field (``<input>`` of a text type or
  ``<textarea>``), labelled by its ``<label>``, ``aria-label``, ``name`` or ``placeholder`` as the page's DOM
  shows them, never by the value typed; the first of a run of keystrokes in one field stands for the run. Named
  in :mod:`agent_api.click_targets`, as unmarked clicks are.
- custom: every type 5 event; the label is ``data.tag`` (capped likewise), whatever ``conversionData`` says.
- page: every type 4 Meta event whose ``data.href`` has a path (:func:`agent_api.pages.url_path`: no query or
  fragment, ``/`` for none, at most 1024 characters); the label is that path.
- error: a type 6 console-plugin event at level ``error`` counts toward the session's error count.
- ``conversionData`` on any other event is ignored.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from agent_api.errors import InvalidRequest
from agent_api.events import (
    CONSOLE_PLUGIN,
    Custom,
    Event,
    Incremental,
    MetaEvent,
    Plugin,
    click_conversion_decoder,
    console_payload_decoder,
)
from agent_api.pages import url_path

MAX_LABEL_CHARS = 256


class Tag(NamedTuple):
    kind: str  # "", "click", "custom", "page" or "input"
    label: str
    is_error: bool


UNTAGGED = Tag("", "", False)
CONSOLE_ERROR = Tag("", "", True)


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())[:MAX_LABEL_CHARS].rstrip()  # a cut between two words leaves no space


def tag_event(event: Event, where: str) -> Tag:
    """The tag of one decoded event; ``where`` names it in errors (``events[3]``)."""
    if isinstance(event, Incremental):
        if not event.is_click or not event.conversionData:
            return UNTAGGED
        try:
            marked = click_conversion_decoder.decode(event.conversionData)
        except msgspec.ValidationError as exc:
            raise InvalidRequest.from_validation(exc, f"{where}.conversionData") from None
        if marked.eventType != "click":
            return UNTAGGED
        return Tag("click", collapse_whitespace(marked.textContent or ""), False)
    if isinstance(event, Custom):
        return Tag("custom", event.data.tag[:MAX_LABEL_CHARS], False)
    if isinstance(event, MetaEvent):
        path = url_path(event.data.href)
        return Tag("page", path, False) if path else UNTAGGED
    if isinstance(event, Plugin) and event.data.plugin == CONSOLE_PLUGIN and event.data.payload:
        try:
            payload = console_payload_decoder.decode(event.data.payload)
        except msgspec.ValidationError as exc:
            raise InvalidRequest.from_validation(exc, f"{where}.data.payload") from None
        return CONSOLE_ERROR if payload.level == "error" else UNTAGGED
    return UNTAGGED
