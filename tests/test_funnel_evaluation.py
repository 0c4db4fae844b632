"""The compiled funnel queries on chDB agree with the plain-Python reference on every count, median and id list:
hand-written edge cases (equal timestamps, repeats, windows), filters, paging, seeded random data, hypothesis
data with hostile values, and ClickHouse's own ``windowFunnel`` where its semantics coincide."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter
from collections.abc import Iterable

import msgspec
import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bard.settings import Settings
from funnels import (
    AllIds,
    AppNameFilter,
    DurationFilter,
    ErrorsFilter,
    FunnelDefinition,
    FunnelQueryFailed,
    FunnelResult,
    IdPage,
    InvalidFunnel,
    ReachedSession,
    SessionFilter,
    StartedFilter,
    Step,
    dashboard_filters,
    evaluate_funnel,
    from_dashboard,
    step_sessions,
)
from funnels.evaluation import window_funnel_levels
from funnels.reference import (
    EventRow,
    SessionRow,
    evaluate_reference,
    insert_rows,
    reference_step_sessions,
    step_times,
)

pytestmark = pytest.mark.clickhouse

BASE_MS = int(dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp() * 1000)
DAY_MS = 86_400_000
HOSTILE = [
    "a'b",
    'a"b',
    "back\\slash",
    "\\'",
    "{p0: String}",
    "{",
    "x; DROP TABLE sessions; --",
    "SELECT * FROM system.tables",
    "ünïcødé 😀",
    "nul\x00byte",
    "\\N",
    "\t\n\r",
    "x" * 10_000,
]


def session_ids(page: list[ReachedSession]) -> list[uuid.UUID]:
    return [listed.session_id for listed in page]


def database(settings: Settings) -> str:
    return settings.resolved_clickhouse_database


def funnel(
    *steps: tuple[str, str], window: int | None = None, filters: tuple[SessionFilter, ...] = ()
) -> FunnelDefinition:
    return FunnelDefinition(
        name="test",
        steps=tuple(Step(kind=k, label=label) for k, label in steps),
        filters=filters,
        window_seconds=window,
    )


def session(app: str = "shop", start_ms: int = BASE_MS, duration_ms: int = 60_000, errors: int = 0) -> SessionRow:
    return SessionRow(uuid.uuid4(), app, start_ms, start_ms + duration_ms, errors)


def assert_agrees(
    ch: Client,
    db: str,
    definition: FunnelDefinition,
    sessions: list[SessionRow],
    events: list[EventRow],
    extra_filters: tuple[SessionFilter, ...] = (),
) -> FunnelResult:
    """Engine == reference, with every id; counts-only and paged answers consistent with it."""
    expected = evaluate_reference(definition, sessions, events, extra_filters)
    engine = evaluate_funnel(ch, db, definition, extra_filters, ids=AllIds())
    assert msgspec.to_builtins(engine) == msgspec.to_builtins(expected)
    counts_only = evaluate_funnel(ch, db, definition, extra_filters)
    assert [(s.completed, s.dropped, s.median_ms_from_previous) for s in counts_only.steps] == [
        (s.completed, s.dropped, s.median_ms_from_previous) for s in expected.steps
    ]
    assert all(not s.completed_ids and not s.dropped_ids for s in counts_only.steps)
    return engine


def assert_moments_agree(
    ch: Client,
    db: str,
    definition: FunnelDefinition,
    sessions: list[SessionRow],
    events: list[EventRow],
    extra_filters: tuple[SessionFilter, ...] = (),
    steps: Iterable[int] | None = None,
) -> None:
    """Every step listing (completed and dropped) has the reference's sessions, levels and reached moments."""
    for step_number in steps if steps is not None else range(1, len(definition.steps) + 1):
        for outcome in ("completed", "dropped"):
            expected = reference_step_sessions(definition, sessions, events, step_number, outcome, extra_filters)
            listed = step_sessions(ch, db, definition, step_number, outcome, extra_filters, limit=10_000)
            assert msgspec.to_builtins(listed) == msgspec.to_builtins(expected), (step_number, outcome)


# --- semantics, case by case ---------------------------------------------------------------------------------

A, B, C = ("click", "A"), ("custom", "B"), ("click", "C")

SEMANTIC_CASES = [
    # (steps, window seconds, events as (step-like (kind, label), ms after BASE), the moments steps were reached)
    pytest.param([A], None, [], [], id="no-events-drops-at-step-1"),
    pytest.param([A], None, [(A, 10), (A, 5)], [5], id="earliest-of-repeats"),
    pytest.param([A, B], None, [(A, 1), (B, 2)], [1, 2], id="in-order"),
    pytest.param([A, B], None, [(B, 1), (A, 2)], [2], id="wrong-order"),
    pytest.param([A, B], None, [(A, 5), (B, 5)], [5], id="equal-timestamps-are-not-after"),
    pytest.param([A, B], None, [(A, 5), (B, 5), (B, 6)], [5, 6], id="equal-then-later"),
    pytest.param([A, A], None, [(A, 5)], [5], id="one-event-never-two-steps"),
    pytest.param([A, A], None, [(A, 5), (A, 5)], [5], id="copies-never-two-steps"),
    pytest.param([A, A], None, [(A, 5), (A, 6)], [5, 6], id="same-label-twice"),
    pytest.param([A, B, A], None, [(A, 1), (B, 3), (A, 2), (A, 4)], [1, 3, 4], id="strictly-after-previous-step"),
    pytest.param([A, B, C], None, [(A, 1), (B, 2), (B, 3), (C, 2)], [1, 2], id="step-3-before-step-2-time"),
    pytest.param([A, B], 1, [(A, 0), (B, 1000)], [0, 1000], id="window-inclusive"),
    pytest.param([A, B], 1, [(A, 0), (B, 1001)], [0], id="window-exceeded"),
    pytest.param([A, B, C], 2, [(A, 0), (B, 1500), (C, 2000), (C, 2001)], [0, 1500, 2000], id="window-from-step-1"),
    pytest.param([A, B], 1, [(A, 0), (A, 5000), (B, 5500)], [5000, 5500], id="window-any-step-1-may-anchor"),
    pytest.param([A, B], 1, [(A, 0), (B, 500), (A, 2000), (B, 2500)], [0, 500], id="window-earliest-anchor-of-equals"),
    pytest.param([A, B, C], 1, [(A, 0), (B, 500), (A, 2000), (B, 2500), (C, 2900)], [2000, 2500, 2900],
                 id="window-deepest-chain-wins"),
    pytest.param([A], None, [(("custom", "A"), 1)], [], id="kind-matters"),
    pytest.param([A], None, [(("click", "a"), 1), (("click", "A "), 2)], [], id="label-exact"),
    pytest.param([A, B], None, [(A, 1), (A, 1), (B, 2), (B, 2)], [1, 2], id="unmerged-copies"),
    pytest.param([A, B], None, [(A, -DAY_MS), (B, DAY_MS)], [-DAY_MS, DAY_MS], id="events-outside-session-bounds"),
]


@pytest.mark.parametrize(("steps", "window", "events", "reached"), SEMANTIC_CASES)
def test_semantics_case(ch: Client, settings: Settings, steps, window, events, reached) -> None:
    definition = funnel(*steps, window=window)
    target, bystander = session(), session()
    rows = [EventRow(target.session_id, BASE_MS + offset, kind, label) for (kind, label), offset in events]
    # The same events in another session that reaches everything: results must stay per session.
    rows += [EventRow(bystander.session_id, BASE_MS + i, kind, label) for i, (kind, label) in enumerate(steps)]
    assert step_times(definition, [r for r in rows if r.session_id == target.session_id]) == [
        BASE_MS + offset for offset in reached
    ]
    insert_rows(ch, database(settings), [target, bystander], rows)
    result = assert_agrees(ch, database(settings), definition, [target, bystander], rows)
    level = len(reached)
    for index, step in enumerate(result.steps):
        assert (target.session_id in step.completed_ids) == (index < level)
        assert (target.session_id in step.dropped_ids) == (index == level)
    # The listing of the step it dropped at (or of the last step it completed) tells when it got where it got.
    step_number, outcome = (level + 1, "dropped") if level < len(steps) else (level, "completed")
    listed = step_sessions(ch, database(settings), definition, step_number, outcome)
    assert [s for s in listed if s.session_id == target.session_id] == [
        ReachedSession(target.session_id, level, [BASE_MS + offset for offset in reached])
    ]
    assert_moments_agree(ch, database(settings), definition, [target, bystander], rows)


def test_sessions_without_a_row_in_sessions_never_enter(ch: Client, settings: Settings) -> None:
    ended = session()
    active = uuid.uuid4()  # events landed, but the session has not ended: no row in `sessions`
    events = [EventRow(ended.session_id, BASE_MS, *A), EventRow(active, BASE_MS, *A)]
    insert_rows(ch, database(settings), [ended], events)
    # Without a session filter the events are not tested against the entered set (funnels.compiler): the join
    # with it must keep the active session out, in every mode and in the step listings too.
    for definition in (funnel(A), funnel(A, A, window=60), msgspec.structs.replace(funnel(A), order="strict"),
                       msgspec.structs.replace(funnel(A), order="any"),
                       funnel(A, filters=(AppNameFilter(names=("shop",)),))):
        result = assert_agrees(ch, database(settings), definition, [ended], events)
        assert result.entered == 1 and result.steps[0].completed_ids == [ended.session_id]
        listed = step_sessions(ch, database(settings), definition, 1, "completed")
        assert [s.session_id for s in listed] == [ended.session_id]


def test_sessions_final_counts_one_row_per_session(ch: Client, settings: Settings) -> None:
    first = session(duration_ms=1_000)
    insert_rows(ch, database(settings), [first], [EventRow(first.session_id, BASE_MS, *A)])
    # A later version of the same session (a late batch extended it): FINAL must show one row, the newest.
    ch.insert(
        "sessions",
        [
            [
                first.session_id,
                "shop",
                dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
                dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
                0,
                0,
                [],
                2,
            ]
        ],
        column_names=[
            "session_id",
            "app_name",
            "started_at",
            "ended_at",
            "event_count",
            "error_count",
            "segments",
            "version",
        ],
        database=database(settings),
    )
    result = evaluate_funnel(ch, database(settings), funnel(A, filters=(DurationFilter(min_ms=DAY_MS),)))
    assert result.entered == 1 and result.steps[0].completed == 1


# --- filters -------------------------------------------------------------------------------------------------

FILTER_SESSIONS = {
    "shop-short-clean": session("shop", BASE_MS, 1_000, 0),
    "shop-long-errors": session("shop", BASE_MS + DAY_MS, 600_000, 3),
    "blog-short-errors": session("blog", BASE_MS + 2 * DAY_MS, 1_000, 1),
    "quote-app": session("a'pp", BASE_MS + 2 * DAY_MS - 1, 0, 0),
}
MARCH_2, MARCH_3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3)

FILTER_CASES = [
    pytest.param((), {"shop-short-clean", "shop-long-errors", "blog-short-errors", "quote-app"}, id="none"),
    pytest.param((AppNameFilter(names=("shop",)),), {"shop-short-clean", "shop-long-errors"}, id="one-app"),
    pytest.param((AppNameFilter(names=("blog", "a'pp")),), {"blog-short-errors", "quote-app"}, id="apps-any-of"),
    pytest.param((AppNameFilter(names=("shop",)), AppNameFilter(names=("blog",))), set(), id="app-filters-and"),
    pytest.param((StartedFilter(start=MARCH_2),), {"shop-long-errors", "blog-short-errors", "quote-app"}, id="from"),
    pytest.param((StartedFilter(end=MARCH_2),), {"shop-short-clean", "shop-long-errors", "quote-app"}, id="to-incl"),
    pytest.param((StartedFilter(start=MARCH_3, end=MARCH_3),), {"blog-short-errors"}, id="one-day"),
    pytest.param((DurationFilter(min_ms=1_000, max_ms=1_000),), {"shop-short-clean", "blog-short-errors"}, id="len"),
    pytest.param((DurationFilter(max_ms=0),), {"quote-app"}, id="zero-length"),
    pytest.param((ErrorsFilter(has_errors=True),), {"shop-long-errors", "blog-short-errors"}, id="errors"),
    pytest.param((ErrorsFilter(has_errors=False),), {"shop-short-clean", "quote-app"}, id="no-errors"),
    pytest.param((AppNameFilter(names=("shop",)), ErrorsFilter(has_errors=True)), {"shop-long-errors"}, id="and"),
]


@pytest.mark.parametrize(("filters", "entering"), FILTER_CASES)
def test_filters_choose_who_enters(ch: Client, settings: Settings, filters, entering) -> None:
    sessions = list(FILTER_SESSIONS.values())
    events = [EventRow(s.session_id, s.started_at_ms + 10, *A) for s in sessions]
    insert_rows(ch, database(settings), sessions, events)
    definition = funnel(A, filters=filters)
    result = assert_agrees(ch, database(settings), definition, sessions, events)
    assert set(result.steps[0].completed_ids) == {FILTER_SESSIONS[name].session_id for name in entering}
    # The same filters given at evaluation time instead of in the definition select the same sessions.
    extra = evaluate_funnel(ch, database(settings), funnel(A), extra_filters=filters, ids=AllIds())
    assert extra.steps[0].completed_ids == result.steps[0].completed_ids


def test_dashboard_date_query_adds_a_filter(ch: Client, settings: Settings) -> None:
    """``GET /api/funnels/:id?startDate&endDate``: the stored funnel plus a date filter on the session start."""
    sessions = list(FILTER_SESSIONS.values())
    events = [EventRow(s.session_id, s.started_at_ms + 10, *A) for s in sessions]
    insert_rows(ch, database(settings), sessions, events)
    stored = from_dashboard(
        {
            "funnelName": "f",
            "sessionFilters": [{"filterType": "appName", "textContent": "shop"}],
            "eventSequence": [{"eventType": "click", "textContent": "A"}],
        }
    )
    extra = dashboard_filters([{"filterType": "date", "startDate": "2026-03-02", "endDate": "2026-03-31"}])
    result = assert_agrees(ch, database(settings), stored, sessions, events, extra)
    assert result.entered == 1 and result.steps[0].completed_ids == [FILTER_SESSIONS["shop-long-errors"].session_id]


def test_no_session_entering_gives_zeros(ch: Client, settings: Settings) -> None:
    result = evaluate_funnel(ch, database(settings), funnel(A, B), ids=AllIds())
    assert result.entered == 0
    assert [(s.completed, s.dropped, s.conversion_from_start, s.median_ms_from_previous) for s in result.steps] == [
        (0, 0, None, None),
        (0, 0, None, None),
    ]
    assert all(not s.completed_ids and not s.dropped_ids for s in result.steps)


# --- paging ----------------------------------------------------------------------------------------------------


def test_pages_and_cursors_walk_every_id_once(ch: Client, settings: Settings) -> None:
    rng = random.Random(7)
    sessions = [session() for _ in range(57)]
    events = [
        EventRow(s.session_id, BASE_MS + rng.randrange(20), *rng.choice([A, B, C])) for s in sessions for _ in range(4)
    ]
    insert_rows(ch, database(settings), sessions, events)
    definition = funnel(A, B, C)
    expected = evaluate_reference(definition, sessions, events)
    db = database(settings)
    for index, step in enumerate(expected.steps):
        for outcome, ids in (("completed", step.completed_ids), ("dropped", step.dropped_ids)):
            by_offset = [
                sid
                for offset in range(0, 60, 10)
                for sid in session_ids(step_sessions(ch, db, definition, index + 1, outcome, (), 10, offset))
            ]
            assert by_offset == ids
            walked: list[uuid.UUID] = []
            cursor = None
            while True:
                page = session_ids(step_sessions(ch, db, definition, index + 1, outcome, (), 9, after=cursor))
                if not page:
                    break
                walked += page
                cursor = page[-1]
            assert walked == ids
            reached: list[ReachedSession] = []
            cursor = None
            while page := step_sessions(ch, db, definition, index + 1, outcome, (), 8, after=cursor):
                reached += page
                cursor = page[-1].session_id
            assert reached == reference_step_sessions(definition, sessions, events, index + 1, outcome)
    for page in (
        IdPage(limit=5, offset=0),
        IdPage(limit=5, offset=3),
        IdPage(limit=1000, offset=0),
        IdPage(limit=4, offset=50),
    ):
        paged = evaluate_funnel(ch, db, definition, ids=page)
        for got, want in zip(paged.steps, expected.steps, strict=True):
            assert got.completed_ids == want.completed_ids[page.offset : page.offset + page.limit]
            assert got.dropped_ids == want.dropped_ids[page.offset : page.offset + page.limit]
    counts_only = evaluate_funnel(ch, db, definition, ids=IdPage(limit=0))
    assert [s.completed for s in counts_only.steps] == [s.completed for s in expected.steps]
    assert all(not s.completed_ids and not s.dropped_ids for s in counts_only.steps)
    cursor_id = expected.steps[0].completed_ids[3]
    after = evaluate_funnel(ch, db, definition, ids=IdPage(limit=2, after=cursor_id))
    assert after.steps[0].completed_ids == expected.steps[0].completed_ids[4:6]


BAD_PAGES = [
    pytest.param({"step_number": 0}, "step", id="step-0"),
    pytest.param({"step_number": 4}, "step", id="step-past-end"),
    pytest.param({"outcome": "won"}, "outcome", id="outcome"),
    pytest.param({"limit": 0}, "limit", id="limit-0"),
    pytest.param({"limit": 10_001}, "limit", id="limit-huge"),
    pytest.param({"offset": -1}, "offset", id="offset-negative"),
    pytest.param({"offset": 10, "after": uuid.UUID(int=1)}, "offset", id="offset-and-cursor"),
    pytest.param({"after": "00000000-0000-0000-0000-000000000001"}, "after", id="cursor-not-a-uuid"),
]


@pytest.mark.parametrize(("change", "field"), BAD_PAGES)
def test_bad_page_requests_are_refused_before_any_query(ch: Client, settings: Settings, change, field) -> None:
    arguments = {"step_number": 1, "outcome": "completed", "limit": 10, "offset": 0} | change
    with pytest.raises(InvalidFunnel) as caught:
        step_sessions(ch, database(settings), funnel(A, B, C), **arguments)
    assert caught.value.path == field
    if "step_number" not in change and "outcome" not in change and change.get("limit") != 0:
        page = IdPage(limit=arguments["limit"], offset=arguments["offset"], after=arguments.get("after"))
        with pytest.raises(InvalidFunnel) as caught:
            evaluate_funnel(ch, database(settings), funnel(A, B, C), ids=page)
        assert caught.value.path == field


def test_clickhouse_failure_keeps_its_code(ch: Client, settings: Settings) -> None:
    with pytest.raises(FunnelQueryFailed) as caught:
        evaluate_funnel(ch, "no_such_database_here", funnel(A))
    assert caught.value.code == 81  # UNKNOWN_DATABASE


# --- random data ----------------------------------------------------------------------------------------------

RANDOM_STEPS = [("click", "Buy"), ("click", "Add to cart"), ("custom", "paid"), ("custom", "Buy"), ("click", "a'b")]


def random_data(seed: int, sessions: int, events: int, grid: int = 40) -> tuple[list[SessionRow], list[EventRow]]:
    rng = random.Random(seed)
    session_rows = [
        SessionRow(
            uuid.UUID(int=rng.getrandbits(128), version=4),
            rng.choice(["shop", "blog", "a'pp"]),
            start := BASE_MS + rng.randrange(5) * DAY_MS + rng.randrange(DAY_MS),
            start + rng.randrange(3_600_000),
            rng.choice([0, 0, 1, 5]),
        )
        for _ in range(sessions)
    ]
    event_rows = []
    for _ in range(events):
        owner = rng.choice(session_rows)
        kind, label = rng.choice(RANDOM_STEPS)
        # A coarse grid of moments makes equal timestamps and window edges common.
        event_rows.append(EventRow(owner.session_id, owner.started_at_ms + rng.randrange(grid) * 250, kind, label))
    event_rows += rng.sample(event_rows, len(event_rows) // 20)  # unmerged copies
    return session_rows, event_rows


RANDOM_FUNNELS = [
    pytest.param(funnel(*RANDOM_STEPS[:3]), (), id="3-steps"),
    pytest.param(funnel(*RANDOM_STEPS), (), id="5-steps"),
    pytest.param(funnel(("click", "Buy"), ("click", "Buy"), ("click", "Buy")), (), id="one-label-thrice"),
    pytest.param(funnel(*RANDOM_STEPS[:4], window=3), (), id="window-3s"),
    pytest.param(funnel(*(RANDOM_STEPS * 4), window=9), (), id="20-steps"),
    pytest.param(
        funnel(*RANDOM_STEPS[:3], filters=(AppNameFilter(names=("shop", "a'pp")), ErrorsFilter(has_errors=False))),
        (StartedFilter(start=dt.date(2026, 3, 2), end=dt.date(2026, 3, 4)), DurationFilter(min_ms=600_000)),
        id="filters-and-extra",
    ),
]


@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_random_data_matches_reference(ch: Client, settings: Settings, seed: int) -> None:
    sessions, events = random_data(seed, sessions=400, events=4_000)
    insert_rows(ch, database(settings), sessions, events)
    for definition, extra in (p.values for p in RANDOM_FUNNELS):
        assert_agrees(ch, database(settings), definition, sessions, events, extra)
        # Every step of the short funnels; of the 20-step one (a second a query on chDB), the last.
        steps = (20,) if len(definition.steps) == 20 else None
        assert_moments_agree(ch, database(settings), definition, sessions, events, extra, steps)


def comparable_with_window_funnel(definition: FunnelDefinition, events: list[EventRow]) -> list[EventRow]:
    """The events minus those sharing a millisecond of their session with an event matching another step: the
    data on which ``windowFunnel`` has Bard's semantics (see :mod:`funnels.compiler`)."""
    steps = [(s.kind, s.label) for s in definition.steps]
    indices: dict[tuple[uuid.UUID, int], set[int]] = {}
    for event in events:
        matched = {i for i, step in enumerate(steps) if step == (event.kind, event.label)}
        indices.setdefault((event.session_id, event.ts_ms), set()).update(matched)
    return [e for e in events if len(indices[(e.session_id, e.ts_ms)]) <= 1]


@pytest.mark.parametrize("window", [None, 200, 500], ids=["no-window", "window-200s", "window-500s"])
def test_window_funnel_agrees_where_there_are_no_ties(ch: Client, settings: Settings, window: int | None) -> None:
    """Ordered, with or without a window, and without two steps matched at one millisecond of a session,
    ClickHouse's ``windowFunnel(window)(.., 'strict_increase')`` reaches the same level as Bard for every
    session (both take the deepest chain over every step-1 event)."""
    sessions, events = random_data(3, sessions=400, events=4_000, grid=4_000)
    definition = funnel(*RANDOM_STEPS[:3], window=window)
    events = comparable_with_window_funnel(definition, events)
    insert_rows(ch, database(settings), sessions, events)
    expected = evaluate_reference(definition, sessions, events)
    assert window_funnel_levels(ch, database(settings), definition) == reference_levels(expected)
    assert expected.steps[-1].completed > 0
    if window is not None:  # the window decides for some sessions
        unbounded = evaluate_reference(funnel(*RANDOM_STEPS[:3]), sessions, events)
        assert unbounded.steps[-1].completed > expected.steps[-1].completed
    assert_agrees(ch, database(settings), definition, sessions, events)


WINDOW_FUNNEL_DIFFERENCES = [
    # (steps, window, events as (step, ms), Bard's level, windowFunnel's level)
    pytest.param([A, B], None, [(A, 0), (A, 10), (B, 10)], 2, 1, id="later-step-1-at-the-same-ms-restarts"),
    pytest.param([A, A], None, [(A, 5), (A, 6)], 2, 1, id="one-label-in-two-steps"),
]


@pytest.mark.parametrize(("steps", "window", "events", "bard", "window_funnel"), WINDOW_FUNNEL_DIFFERENCES)
def test_window_funnel_differs_where_documented(
    ch: Client, settings: Settings, steps, window, events, bard, window_funnel
) -> None:
    target = session()
    rows = [EventRow(target.session_id, BASE_MS + offset, *step) for step, offset in events]
    insert_rows(ch, database(settings), [target], rows)
    definition = funnel(*steps, window=window)
    assert window_funnel_levels(ch, database(settings), definition) == {window_funnel: 1}
    result = assert_agrees(ch, database(settings), definition, [target], rows)
    assert [s.completed for s in result.steps] == [1] * bard + [0] * (len(steps) - bard)


def reference_levels(result: FunnelResult) -> dict[int, int]:
    levels = Counter({0: result.steps[0].dropped})
    for index, step in enumerate(result.steps):
        levels[index + 1] = step.completed - (result.steps[index + 1].completed if index + 1 < len(result.steps) else 0)
    return {level: count for level, count in levels.items() if count}


# --- hypothesis: shapes, values and data together -------------------------------------------------------------

LABEL_POOL = ["Buy", "buy", "Buy ", *HOSTILE]
step_strategy = st.tuples(st.sampled_from(["click", "custom"]), st.sampled_from(LABEL_POOL))
DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=d) for d in range(4)]


@st.composite
def filter_strategy(draw: st.DrawFn) -> SessionFilter:
    kind = draw(st.sampled_from(["app", "started", "duration", "errors"]))
    if kind == "app":
        return AppNameFilter(
            names=tuple(draw(st.lists(st.sampled_from(["shop", *HOSTILE[:4]]), min_size=1, max_size=3)))
        )
    if kind == "started":
        low, high = sorted(draw(st.lists(st.sampled_from(DAYS), min_size=2, max_size=2)))
        return StartedFilter(start=draw(st.sampled_from([low, None])), end=draw(st.sampled_from([high, None])))
    if kind == "duration":
        low, high = sorted(draw(st.lists(st.integers(0, 4_000), min_size=2, max_size=2)))
        return DurationFilter(min_ms=draw(st.sampled_from([low, None])), max_ms=draw(st.sampled_from([high, None])))
    return ErrorsFilter(has_errors=draw(st.booleans()))


@st.composite
def scenario(draw: st.DrawFn) -> tuple[FunnelDefinition, tuple[SessionFilter, ...], list[SessionRow], list[EventRow]]:
    definition = FunnelDefinition(
        name="h",
        steps=tuple(Step(kind=k, label=label) for k, label in draw(st.lists(step_strategy, min_size=1, max_size=4))),
        filters=tuple(draw(st.lists(filter_strategy(), max_size=2))),
        window_seconds=draw(st.sampled_from([None, None, 1, 2])),
    )
    extra = tuple(draw(st.lists(filter_strategy(), max_size=1)))
    sessions = [
        SessionRow(
            sid,
            draw(st.sampled_from(["shop", *HOSTILE[:4]])),
            start := BASE_MS + draw(st.integers(0, 3)) * DAY_MS + draw(st.integers(0, 3)) * 1_000,
            start + draw(st.integers(0, 4_000)),
            draw(st.sampled_from([0, 1])),
        )
        for sid in draw(st.lists(st.uuids(version=4), min_size=1, max_size=6, unique=True))
    ]
    used_steps = [(s.kind, s.label) for s in definition.steps]
    events = [
        EventRow(owner.session_id, owner.started_at_ms + draw(st.integers(0, 12)) * 250, kind, label)
        for owner, (kind, label) in draw(
            st.lists(
                st.tuples(st.sampled_from(sessions), st.one_of(st.sampled_from(used_steps), step_strategy)), max_size=30
            )
        )
    ]
    return definition, extra, sessions, events


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=scenario())
def test_hypothesis_data_matches_reference(ch: Client, settings: Settings, case) -> None:
    definition, extra, sessions, events = case
    db = database(settings)
    ch.command(f"TRUNCATE TABLE {db}.sessions")
    ch.command(f"TRUNCATE TABLE {db}.conversion_events")
    insert_rows(ch, db, sessions, events)
    expected = evaluate_reference(definition, sessions, events, extra)
    assert_agrees(ch, db, definition, sessions, events, extra)
    assert_moments_agree(ch, db, definition, sessions, events, extra)
    if definition.window_seconds is None and comparable_with_window_funnel(definition, events) == events:
        assert window_funnel_levels(ch, db, definition, extra) == reference_levels(expected)


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda value: repr(value)[:20])
def test_hostile_values_are_plain_data(ch: Client, settings: Settings, hostile: str) -> None:
    """A hostile label and app name match exactly themselves, and the database is untouched."""
    owner, other = session(app=hostile), session(app="shop")
    events = [
        EventRow(owner.session_id, BASE_MS, "click", hostile),
        EventRow(owner.session_id, BASE_MS + 1, "custom", hostile),
        EventRow(other.session_id, BASE_MS, "click", hostile + "x"),
    ]
    insert_rows(ch, database(settings), [owner, other], events)
    before = table_rows(ch, database(settings))
    definition = funnel(("click", hostile), ("custom", hostile), filters=(AppNameFilter(names=(hostile, "shop")),))
    result = assert_agrees(ch, database(settings), definition, [owner, other], events)
    assert result.steps[1].completed_ids == [owner.session_id]
    assert table_rows(ch, database(settings)) == before


def table_rows(ch: Client, db: str) -> list[tuple[str, int]]:
    query = "SELECT name, total_rows FROM system.tables WHERE database = {db:String} ORDER BY name"
    return [tuple(row) for row in ch.query(query, parameters={"db": db}).result_rows]


STRICT_WINDOW_FUNNEL = [
    # (events as (step-like, ms), Bard's strict level, windowFunnel 'strict_order''s level)
    pytest.param([(A, 0), (B, 10), (C, 20)], 3, 3, id="nothing-between"),
    pytest.param([(A, 0), (("click", "X"), 5), (B, 10), (C, 20)], 1, 1, id="another-event-between-stops-both"),
    # windowFunnel lets an event of some step lie between two steps; Bard's strict order lets nothing.
    pytest.param([(A, 0), (B, 10), (A, 15), (C, 20)], 2, 3, id="an-event-of-a-step-between-stops-bard-only"),
]


@pytest.mark.parametrize(("events", "bard", "window_funnel"), STRICT_WINDOW_FUNNEL)
def test_strict_beside_window_funnel_strict_order(
    ch: Client, settings: Settings, events: list[tuple[tuple[str, str], int]], bard: int, window_funnel: int
) -> None:
    """The benchmark's comparison for strict order (``bench/funnel_engine.py``): ClickHouse's nearest mode,
    over every conversion event of the session, agrees where nothing but events of no step lies between steps."""
    target = session()
    rows = [EventRow(target.session_id, BASE_MS + offset, *step) for step, offset in events]
    insert_rows(ch, database(settings), [target], rows)
    definition = msgspec.structs.replace(funnel(A, B, C), order="strict")
    assert window_funnel_levels(ch, database(settings), definition) == {window_funnel: 1}
    result = assert_agrees(ch, database(settings), definition, [target], rows)
    assert [s.completed for s in result.steps] == [1] * bard + [0] * (3 - bard)


@pytest.mark.parametrize("filtered", [False, True], ids=["no-filter", "filters"])
def test_the_benchmarks_cuts_count_what_the_reference_counts(ch: Client, settings: Settings, filtered: bool) -> None:
    """``bench.funnel_engine``'s ``parts`` times the windowed counts query cut after each stage: each cut must
    still run, and count what its stage made (checked against the reference), as the compiler changes."""
    from bench.funnel_engine import part_queries

    sessions, events = random_data(3, sessions=200, events=2_000)
    db = database(settings)
    insert_rows(ch, db, sessions, events)
    filters = (AppNameFilter(names=("shop", "a'pp")),) if filtered else ()
    definition = funnel(*RANDOM_STEPS[:4], window=3, filters=filters)
    expected = evaluate_reference(definition, sessions, events)
    cuts = {name: ch.query(sql, parameters=parameters).result_rows for name, (sql, parameters)
            in part_queries(definition, db).items()}
    entered = {s.session_id for s in sessions if not filtered or s.app_name in ("shop", "a'pp")}
    steps = set(RANDOM_STEPS[:4])
    with_events = {e.session_id for e in events if (e.kind, e.label) in steps and e.session_id in entered}
    assert cuts["group"][0][0] == len(with_events)
    assert cuts["group"][0][1] == sum(1 for e in events if (e.kind, e.label) == RANDOM_STEPS[0]
                                      and e.session_id in with_events)
    levels = {int(level): count for level, count, _ in cuts["chain"]}
    assert sum(c for level, c in levels.items() if level >= 4) == expected.steps[3].completed
    assert cuts["join"][0][:2] == (expected.entered, expected.steps[3].completed)
    assert cuts["whole"][0][0] == expected.entered
