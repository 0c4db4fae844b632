"""The pages a session showed, read from its rrweb Meta events (type 4: ``data.href``, ``data.width``,
``data.height``). rrweb records one before each full snapshot: on every page load, and on any re-snapshot the
recorder is set to take, which then counts as a page too.

A batch's :class:`PagesSeen` holds how many Meta events it had, its entry (the earliest Meta event by client
time: its URL, the URL's path and the viewport) and its exit (the latest Meta event's path). Batches combine
with :func:`combine`, and PostgreSQL's upsert applies the same rule (``agent_api.sessions``): the earliest entry
and the latest exit win, by client time (which orders events, invariant 5), arrival order deciding a tie.

Caps: a URL is kept to :data:`MAX_URL_CHARS`, a path to :data:`MAX_PATH_CHARS`; a viewport side outside
1..:data:`MAX_VIEWPORT_PIXELS`, or not an integer, is 0 (unknown). NUL characters are dropped (PostgreSQL text
cannot hold them). What does not parse is left empty, never refused: the events themselves are stored as sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from agent_api.events import MetaEvent

MAX_URL_CHARS = 2048
MAX_PATH_CHARS = 1024
MAX_VIEWPORT_PIXELS = 100_000


class PagesSeen(NamedTuple):
    page_count: int  # Meta events
    entry_at: int | None  # the entry's client time (ms); None without a Meta event
    entry_url: str
    entry_path: str
    viewport_width: int
    viewport_height: int
    exit_at: int | None
    exit_path: str


NO_PAGES = PagesSeen(0, None, "", "", 0, 0, None, "")


def pages_seen(metas: Sequence[MetaEvent]) -> PagesSeen:
    """The pages of a batch's Meta events, in the batch's order."""
    if not metas:
        return NO_PAGES
    entry = exit_ = metas[0]
    for meta in metas[1:]:
        if meta.timestamp < entry.timestamp:
            entry = meta
        if meta.timestamp >= exit_.timestamp:
            exit_ = meta
    href = entry.data.href if type(entry.data.href) is str else ""
    entry_path = url_path(href)
    return PagesSeen(
        page_count=len(metas),
        entry_at=entry.timestamp,
        entry_url=_text(href)[:MAX_URL_CHARS],
        entry_path=entry_path,
        viewport_width=_pixels(entry.data.width),
        viewport_height=_pixels(entry.data.height),
        exit_at=exit_.timestamp,
        exit_path=entry_path if exit_ is entry else url_path(exit_.data.href),
    )


def combine(earlier: PagesSeen, later: PagesSeen) -> PagesSeen:
    """Two batches' pages as one, ``earlier`` the one that arrived first."""
    if not later.page_count:
        return earlier
    if not earlier.page_count:
        return later
    # Both have a Meta event, so both times are set (and never 0: client times start in 2000).
    entry = later if (later.entry_at or 0) < (earlier.entry_at or 0) else earlier
    exit_ = later if (later.exit_at or 0) >= (earlier.exit_at or 0) else earlier
    return PagesSeen(
        earlier.page_count + later.page_count, entry.entry_at, entry.entry_url, entry.entry_path, entry.viewport_width,
        entry.viewport_height, exit_.exit_at, exit_.exit_path,
    )


def url_path(href: Any) -> str:
    """The path of an absolute URL, without query or fragment, ``/`` when empty; ``''`` for anything else
    (not a string, no scheme, a path that is not one, ``about:blank``, a malformed host)."""
    if type(href) is not str:
        return ""
    try:
        parts = urlsplit(href)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return ""
    if not parts.scheme:
        return ""
    path = parts.path or "/"
    if not path.startswith("/"):
        return ""
    return _text(path)[:MAX_PATH_CHARS]


def _pixels(value: Any) -> int:
    return value if type(value) is int and 0 < value <= MAX_VIEWPORT_PIXELS else 0


def _text(value: str) -> str:
    return value.replace("\x00", "") if "\x00" in value else value
