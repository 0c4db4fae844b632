"""What an evaluated funnel answers, and how session ids are asked for."""

from __future__ import annotations

import uuid

import msgspec

from funnels.definition import Step


class NoIds(msgspec.Struct, frozen=True, tag="none"):
    """Counts only: every id list in the result is empty (cheapest)."""


class AllIds(msgspec.Struct, frozen=True, tag="all"):
    """Every completed and dropped id of every step (the original ``/api`` contract returns complete lists)."""


class IdPage(msgspec.Struct, frozen=True, tag="page"):
    """For every step, the completed and dropped ids from ``offset`` on, at most ``limit`` of each.

    Ids are ordered by their canonical text (``str(uuid)``), the same order in ClickHouse and in Python, so pages
    are stable while the data does not change. ``after`` (a cursor: the last id of the previous page) may be
    given instead of ``offset``: the page then starts with the first id greater than it. ``limit=0`` asks for
    counts only, like :class:`NoIds`.
    """

    limit: int = 100
    offset: int = 0
    after: uuid.UUID | None = None


IdSelection = NoIds | AllIds | IdPage


class StepResult(msgspec.Struct, frozen=True):
    """One step of an evaluated funnel.

    ``completed``: sessions that reached this step. ``dropped``: sessions that reached the previous step (for
    step 1: that entered the funnel) but not this one. ``conversion_from_start`` = completed / entered and
    ``conversion_from_previous`` = completed / completed of the previous step (entered for step 1); both are
    ``None`` when the denominator is 0. ``median_ms_from_previous``: the median, over sessions that completed
    this step, of the milliseconds between reaching the previous step and this one (the mean of the two middle
    values for an even count); ``None`` for step 1 and when no session completed the step.
    ``completed_ids`` / ``dropped_ids``: as the :data:`IdSelection` asked, ordered by ``str(id)``.
    """

    step: Step
    completed: int
    dropped: int
    conversion_from_start: float | None
    conversion_from_previous: float | None
    median_ms_from_previous: float | None
    completed_ids: list[uuid.UUID]
    dropped_ids: list[uuid.UUID]


class FunnelResult(msgspec.Struct, frozen=True):
    """An evaluated funnel: how many sessions entered and what happened at each step."""

    entered: int
    steps: list[StepResult]


class ReachedSession(msgspec.Struct, frozen=True):
    """A session of a step listing and how far it got: ``level`` is the last step it reached (0 to the number of
    steps; a session dropped at step k has level k-1) and ``reached_at_ms[i]`` the moment (ms since the epoch)
    it reached step i+1, for steps 1..level."""

    session_id: uuid.UUID
    level: int
    reached_at_ms: list[int]
