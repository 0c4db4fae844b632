"""How an active segment merges into an ended session, so that a merge repeated after a crash is harmless.

A session in ClickHouse is the union of the segments moved into it: the first stretch of activity and every
late batch's stretch after that. Start and end are a minimum and a maximum, which a repeated merge does not
change. Counts are sums, which a repeated merge would double; so the ended session keeps each segment's
counts as last seen (``segments`` with ``segment_event_counts``, ``segment_error_counts`` and the other
``segment_*_counts``, parallel arrays) and its totals are their sums. Merging a segment *replaces* that
segment's counts: merging the same snapshot twice gives the same row, and merging a newer snapshot of the same
segment (a batch that arrived after a crashed move) gives the newer counts, never old + new.

The metadata follows the segments' order (the order of ``segments``, which a repeated merge keeps):

- what was first seen, the client (browser, its major version, OS, device type), the country and the entry page
  (URL, path, viewport), is the first segment's: a later segment fills it only where no earlier one knew it (a
  session moved before the metadata existed, a first segment without a Meta event or from an address of no known
  country), and a newer snapshot of the first segment replaces it;
- the exit path is the last segment's that saw a page (had a Meta event);
- the counts (pages, clicks, rage/dead/error clicks) add up exactly once, as the event and error counts do.
"""

from __future__ import annotations

import uuid
from operator import attrgetter
from typing import Any

import msgspec


class ActiveSegment(msgspec.Struct, frozen=True, kw_only=True):
    """A row of PostgreSQL ``active_sessions`` as the ender claimed it. Event times are client milliseconds."""

    session_id: uuid.UUID
    segment_id: uuid.UUID
    app_name: str
    first_event_at: int
    last_event_at: int
    event_count: int
    error_count: int
    browser: str = ""
    browser_major: int = 0
    os: str = ""
    device_type: str = ""
    viewport_width: int = 0
    viewport_height: int = 0
    entry_url: str = ""
    entry_path: str = ""
    exit_path: str = ""
    page_count: int = 0
    click_count: int = 0
    rage_click_count: int = 0
    dead_click_count: int = 0
    error_click_count: int = 0
    country: str = ""


class EndedSession(msgspec.Struct, frozen=True, kw_only=True):
    """A row of ClickHouse ``sessions`` (without its materialized ``duration_ms`` and ``date``)."""

    session_id: uuid.UUID
    app_name: str
    started_at: int  # client milliseconds since the epoch
    ended_at: int
    event_count: int
    error_count: int
    segments: tuple[uuid.UUID, ...]
    segment_event_counts: tuple[int, ...]
    segment_error_counts: tuple[int, ...]
    version: int
    browser: str = ""
    browser_major: int = 0
    os: str = ""
    device_type: str = ""
    viewport_width: int = 0
    viewport_height: int = 0
    entry_url: str = ""
    entry_path: str = ""
    exit_path: str = ""
    page_count: int = 0
    click_count: int = 0
    rage_click_count: int = 0
    dead_click_count: int = 0
    error_click_count: int = 0
    segment_page_counts: tuple[int, ...] = ()
    segment_click_counts: tuple[int, ...] = ()
    segment_rage_click_counts: tuple[int, ...] = ()
    segment_dead_click_counts: tuple[int, ...] = ()
    segment_error_click_counts: tuple[int, ...] = ()
    country: str = ""


COLUMNS = (
    "session_id", "app_name", "started_at", "ended_at", "event_count", "error_count",
    "segments", "segment_event_counts", "segment_error_counts", "version",
    "browser", "browser_major", "os", "device_type", "entry_url", "entry_path", "viewport_width", "viewport_height",
    "exit_path", "page_count", "click_count", "rage_click_count", "dead_click_count", "error_click_count",
    "segment_page_counts", "segment_click_counts", "segment_rage_click_counts", "segment_dead_click_counts",
    "segment_error_click_counts", "country",
)
"""The columns the ender writes, in the order of :func:`as_columns` (``duration_ms`` and ``date`` are computed),
the names of :class:`EndedSession`'s fields."""


# Spelled out field by field rather than looped over by name: a move merges up to a batch of 5,000 sessions, and
# the generic form (getattr, dicts of fields) measured 5x slower per session.
def merge_segment(previous: EndedSession | None, segment: ActiveSegment, *, min_version: int) -> EndedSession:
    """The ended session after ``segment`` is merged into ``previous`` (``None``: the session's first move).

    The new version is above the previous one and at least ``min_version`` (the claim's time), so that of two
    writes of one session the later claim wins even if an earlier, stalled write lands after it.
    """
    s = segment
    if previous is None:
        return EndedSession(
            session_id=s.session_id, app_name=s.app_name, started_at=s.first_event_at, ended_at=s.last_event_at,
            event_count=s.event_count, error_count=s.error_count, segments=(s.segment_id,),
            segment_event_counts=(s.event_count,), segment_error_counts=(s.error_count,), version=max(1, min_version),
            browser=s.browser, browser_major=s.browser_major, os=s.os, device_type=s.device_type,
            entry_url=s.entry_url, entry_path=s.entry_path, viewport_width=s.viewport_width,
            viewport_height=s.viewport_height, exit_path=s.exit_path, page_count=s.page_count,
            click_count=s.click_count, rage_click_count=s.rage_click_count, dead_click_count=s.dead_click_count,
            error_click_count=s.error_click_count, segment_page_counts=(s.page_count,),
            segment_click_counts=(s.click_count,), segment_rage_click_counts=(s.rage_click_count,),
            segment_dead_click_counts=(s.dead_click_count,), segment_error_click_counts=(s.error_click_count,),
            country=s.country,
        )
    p = previous
    known = len(p.segments)
    slot = p.segments.index(s.segment_id) if s.segment_id in p.segments else known
    segments = p.segments if slot < known else (*p.segments, s.segment_id)

    def count(total: int, per_segment: tuple[int, ...], own: int) -> tuple[int, tuple[int, ...]]:
        """The new total and per-segment counts: this segment's count replaces its slot (or is appended).
        Counts the arrays do not account for (a row written by something other than the ender, e.g. a data
        loader) are carried unchanged; for the ender's own rows this is 0, and carrying it keeps merges
        idempotent."""
        padded = _padded(per_segment, known)
        counts = (*padded[:slot], own, *padded[slot + 1:])
        return max(0, total - sum(padded)) + sum(counts), counts

    events, event_counts = count(p.event_count, p.segment_event_counts, s.event_count)
    errors, error_counts = count(p.error_count, p.segment_error_counts, s.error_count)
    pages, page_counts = count(p.page_count, p.segment_page_counts, s.page_count)
    clicks, click_counts = count(p.click_count, p.segment_click_counts, s.click_count)
    rage, rage_counts = count(p.rage_click_count, p.segment_rage_click_counts, s.rage_click_count)
    dead, dead_counts = count(p.dead_click_count, p.segment_dead_click_counts, s.dead_click_count)
    error_clicks, error_click_counts = count(p.error_click_count, p.segment_error_click_counts, s.error_click_count)

    is_first, is_last = slot == 0, slot >= known - 1
    client: ActiveSegment | EndedSession = s if _knows_client(s) and (is_first or not _knows_client(p)) else p
    country = s.country if s.country and (is_first or not p.country) else p.country
    entry: ActiveSegment | EndedSession = s if s.page_count and (is_first or not p.page_count) else p
    exit_path = s.exit_path if s.page_count and (is_last or not p.page_count) else p.exit_path
    return EndedSession(
        session_id=p.session_id, app_name=p.app_name, started_at=min(p.started_at, s.first_event_at),
        ended_at=max(p.ended_at, s.last_event_at), event_count=events, error_count=errors, segments=segments,
        segment_event_counts=event_counts, segment_error_counts=error_counts,
        version=max(p.version + 1, min_version),
        browser=client.browser, browser_major=client.browser_major, os=client.os, device_type=client.device_type,
        entry_url=entry.entry_url, entry_path=entry.entry_path, viewport_width=entry.viewport_width,
        viewport_height=entry.viewport_height, exit_path=exit_path, page_count=pages, click_count=clicks,
        rage_click_count=rage, dead_click_count=dead, error_click_count=error_clicks, segment_page_counts=page_counts,
        segment_click_counts=click_counts, segment_rage_click_counts=rage_counts,
        segment_dead_click_counts=dead_counts, segment_error_click_counts=error_click_counts, country=country,
    )


def _knows_client(row: ActiveSegment | EndedSession) -> bool:
    return bool(row.browser or row.os or row.device_type)


def _padded(counts: tuple[int, ...], length: int) -> tuple[int, ...]:
    return (counts + (0,) * length)[:length]


def as_columns(sessions: list[EndedSession]) -> list[list[Any]]:
    """The sessions as the columns of an insert, in :data:`COLUMNS` order (times stay integer milliseconds:
    DateTime64(3) takes them as ticks, with no time zone to get wrong)."""
    return [list(map(attrgetter(column), sessions)) for column in COLUMNS]
