"""How an active segment merges into an ended session, so that a merge repeated after a crash is harmless.

A session in ClickHouse is the union of the segments moved into it: the first stretch of activity and every
late batch's stretch after that. Start and end are a minimum and a maximum, which a repeated merge does not
change. Counts are sums, which a repeated merge would double; so the ended session keeps each segment's
counts as last seen (``segments`` with ``segment_event_counts`` and ``segment_error_counts``, parallel arrays)
and its totals are their sums. Merging a segment *replaces* that segment's counts: merging the same snapshot
twice gives the same row, and merging a newer snapshot of the same segment (a batch that arrived after a
crashed move) gives the newer counts, never old + new.
"""

from __future__ import annotations

import uuid

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


COLUMNS = (
    "session_id", "app_name", "started_at", "ended_at", "event_count", "error_count",
    "segments", "segment_event_counts", "segment_error_counts", "version",
)
"""The columns the ender writes, in the order of :func:`as_row` (``duration_ms`` and ``date`` are computed)."""


def merge_segment(previous: EndedSession | None, segment: ActiveSegment, *, min_version: int) -> EndedSession:
    """The ended session after ``segment`` is merged into ``previous`` (``None``: the session's first move).

    The new version is above the previous one and at least ``min_version`` (the claim's time), so that of two
    writes of one session the later claim wins even if an earlier, stalled write lands after it.
    """
    if previous is None:
        return EndedSession(
            session_id=segment.session_id,
            app_name=segment.app_name,
            started_at=segment.first_event_at,
            ended_at=segment.last_event_at,
            event_count=segment.event_count,
            error_count=segment.error_count,
            segments=(segment.segment_id,),
            segment_event_counts=(segment.event_count,),
            segment_error_counts=(segment.error_count,),
            version=max(1, min_version),
        )
    counts = {
        seg: (events, errors)
        for seg, events, errors in zip(
            previous.segments,
            _padded(previous.segment_event_counts, len(previous.segments)),
            _padded(previous.segment_error_counts, len(previous.segments)),
            strict=True,
        )
    }
    # Counts the arrays do not account for (a row written by something other than the ender, e.g. a data
    # loader) are carried unchanged; for the ender's own rows this is 0, and carrying it keeps merges idempotent.
    carried_events = max(0, previous.event_count - sum(events for events, _ in counts.values()))
    carried_errors = max(0, previous.error_count - sum(errors for _, errors in counts.values()))
    counts[segment.segment_id] = (segment.event_count, segment.error_count)
    return EndedSession(
        session_id=previous.session_id,
        app_name=previous.app_name,
        started_at=min(previous.started_at, segment.first_event_at),
        ended_at=max(previous.ended_at, segment.last_event_at),
        event_count=carried_events + sum(events for events, _ in counts.values()),
        error_count=carried_errors + sum(errors for _, errors in counts.values()),
        segments=tuple(counts),
        segment_event_counts=tuple(events for events, _ in counts.values()),
        segment_error_counts=tuple(errors for _, errors in counts.values()),
        version=max(previous.version + 1, min_version),
    )


def _padded(counts: tuple[int, ...], length: int) -> tuple[int, ...]:
    return (counts + (0,) * length)[:length]


def as_row(session: EndedSession) -> list[object]:
    """The session as an insert row in :data:`COLUMNS` order (times stay integer milliseconds: DateTime64(3)
    takes them as ticks, with no time zone to get wrong)."""
    return [
        session.session_id, session.app_name, session.started_at, session.ended_at, session.event_count,
        session.error_count, list(session.segments), list(session.segment_event_counts),
        list(session.segment_error_counts), session.version,
    ]
