"""Order modes, exclusions, breakdowns, times, histograms and trends: every case runs on chDB in every mode it
names and must equal the plain-Python reference (:mod:`funnels.reference`) on every count, quantile, bin, trend
point and id, and on every step listing's sessions and moments; then seeded random data and hypothesis data run
every mode against the reference (PostHog's ``funnel_test_factory`` idea: one behavioural suite, every mode)."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bard.settings import Settings
from clickhouse import migrations as clickhouse_migrations
from clickhouse.client import create_client
from clickhouse.schema import MIGRATIONS
from funnels import FunnelDefinition, InvalidFunnel, Step, evaluate_funnel, from_clean, step_sessions
from funnels.definition import Breakdown, Exclusion
from funnels.reference import EventRow, SessionRow, evaluate_reference, insert_rows, reference_step_sessions
from funnels.results import HISTOGRAM_BINS, Histogram, TrendPoint, breakdown_rows, top_values
from tests.test_funnel_evaluation import BASE_MS, DAY_MS, HOSTILE, assert_agrees, assert_moments_agree, session

pytestmark = pytest.mark.clickhouse

ORDERS = ("ordered", "strict", "any")
A, B, C, X = ("click", "A"), ("custom", "B"), ("click", "C"), ("custom", "X")
PAGE, BLOG = ("page", "/cart"), ("page", "/blog/*")
EMAIL, PASSWORD = ("input", "Email address"), ("input", "Password")


def database(settings: Settings) -> str:
    return settings.resolved_clickhouse_database


def funnel(*steps: tuple[str, str], order: str = "ordered", window: int | None = None,
           exclusions: tuple[Exclusion, ...] = (), breakdown: Breakdown | None = None) -> FunnelDefinition:
    return FunnelDefinition(name="modes", steps=tuple(Step(k, label) for k, label in steps), window_seconds=window,
                            order=order, exclusions=exclusions, breakdown=breakdown)  # type: ignore[arg-type]


def run_case(ch: Client, db: str, definition: FunnelDefinition, events: list[tuple[tuple[str, str], int]],
             reached: object) -> None:
    """One session with ``events`` (ms after BASE); ``reached`` its moments, or ``None`` when it is excluded, or
    ``...`` for "as the reference says". A bystander session that reaches every step keeps the results per
    session."""
    target, bystander = session(), session()
    rows = [EventRow(target.session_id, BASE_MS + offset, kind, label) for (kind, label), offset in events]
    rows += [EventRow(bystander.session_id, BASE_MS + i, s.kind, s.label) for i, s in enumerate(definition.steps)]
    insert_rows(ch, db, [target, bystander], rows)
    expected = evaluate_reference(definition, [target, bystander], rows)
    engine = assert_agrees(ch, db, definition, [target, bystander], rows)
    assert_moments_agree(ch, db, definition, [target, bystander], rows)
    moments = {s.session_id: s.reached_at_ms for s in reference_step_sessions(
        definition, [target, bystander], rows, 1, "completed")}
    moments.update({s.session_id: s.reached_at_ms for s in reference_step_sessions(
        definition, [target, bystander], rows, 1, "dropped")})
    if reached is ...:
        return
    if reached is None:
        assert target.session_id not in moments and engine.excluded == expected.excluded == 1
    else:
        assert moments[target.session_id] == [BASE_MS + offset for offset in reached]
        assert engine.excluded == 0


MODE_CASES = [
    # (order, steps, window seconds, events as ((kind, label), ms after BASE), the moments steps were reached)
    pytest.param("strict", [A, B], None, [(A, 1), (B, 3)], [1, 3], id="strict-next"),
    pytest.param("strict", [A, B], None, [(A, 1), (C, 2), (B, 3)], [1], id="strict-other-event-between"),
    pytest.param("strict", [A, B], None, [(A, 1), (A, 2), (B, 3)], [2, 3], id="strict-later-anchor-wins"),
    pytest.param("strict", [A, B], None, [(A, 1), (B, 1), (B, 2)], [1, 2], id="strict-same-ms-is-not-between"),
    pytest.param("strict", [A, B], None, [(A, 1), (C, 2), (B, 2)], [1, 2], id="strict-other-at-the-steps-ms"),
    pytest.param("strict", [A, B, C], None, [(A, 1), (B, 2), (X, 3), (C, 4), (A, 5), (B, 6), (C, 7)], [5, 6, 7],
                 id="strict-second-run-completes"),
    pytest.param("strict", [A, B], 1, [(A, 0), (B, 1000)], [0, 1000], id="strict-window-inclusive"),
    pytest.param("strict", [A, B], 1, [(A, 0), (B, 1001)], [0], id="strict-window-exceeded"),
    pytest.param("strict", [A, A], None, [(A, 5), (A, 5)], [5], id="strict-copies-never-two-steps"),
    pytest.param("any", [A, B], None, [(B, 1), (A, 2)], [1, 2], id="any-reverse-order"),
    pytest.param("any", [A, B, C], None, [(C, 1)], [1], id="any-one-of-three"),
    pytest.param("any", [A, B], None, [(A, 5), (B, 5)], [5, 5], id="any-same-ms"),
    pytest.param("any", [A, B], None, [(B, 1), (A, 100_000)], [1, 100_000], id="any-no-window-sees-all"),
    pytest.param("any", [A, B], 1, [(B, 0), (A, 1500), (B, 2000)], [1500, 2000], id="any-window-deepest-anchor"),
    pytest.param("any", [A, B], 1, [(B, 0), (A, 1000)], [0, 1000], id="any-window-inclusive"),
    pytest.param("any", [A, B, C], 1, [(A, 0), (B, 500), (C, 1200), (B, 1300)], [0, 500],
                 id="any-window-earliest-of-equals"),
    pytest.param("ordered", [PAGE, A], None, [(("page", "/cart"), 1), (A, 2)], [1, 2], id="page-exact"),
    pytest.param("ordered", [PAGE, A], None, [(("page", "/cart/x"), 1), (A, 2)], [], id="page-exact-not-prefix"),
    pytest.param("ordered", [BLOG, A], None, [(("page", "/blog/a"), 1), (A, 2)], [1, 2], id="page-prefix"),
    pytest.param("ordered", [BLOG, A], None, [(("page", "/blog"), 1), (A, 2)], [], id="page-prefix-is-literal"),
    pytest.param("ordered", [BLOG, A], None, [(("custom", "/blog/a"), 1), (A, 2)], [], id="page-prefix-kind"),
    pytest.param("any", [BLOG, ("page", "/blog/a")], None, [(("page", "/blog/a"), 1)], [1, 1],
                 id="any-one-visit-two-overlapping-pages"),
    pytest.param("strict", [("page", "/*"), A], None, [(("page", "/x"), 1), (A, 2)], [1, 2], id="page-any-path"),
    pytest.param("ordered", [PAGE, EMAIL, PASSWORD, A], None,
                 [(PAGE, 1), (EMAIL, 2), (PASSWORD, 3), (A, 4)], [1, 2, 3, 4], id="input-steps"),
    pytest.param("ordered", [EMAIL, A], None, [(("input", "Email"), 1), (("click", "Email address"), 2), (A, 3)],
                 [], id="input-exact-label-and-kind"),
    pytest.param("strict", [EMAIL, A], None, [(EMAIL, 1), (PASSWORD, 2), (A, 3)], [1], id="strict-input-between"),
    pytest.param("any", [PASSWORD, EMAIL], None, [(PASSWORD, 1), (EMAIL, 2)], [1, 2], id="any-inputs"),
    pytest.param("ordered", [A, B], 1, [(A, 0), (A, 5000), (B, 5500)], [5000, 5500], id="ordered-window-later-anchor"),
    pytest.param("ordered", [A, B, C], 1, [(A, 0), (B, 500), (A, 2000), (B, 2500), (C, 2900)], [2000, 2500, 2900],
                 id="ordered-window-deepest-chain"),
]


@pytest.mark.parametrize(("order", "steps", "window", "events", "reached"), MODE_CASES)
def test_mode_case(ch: Client, settings: Settings, order, steps, window, events, reached) -> None:
    run_case(ch, database(settings), funnel(*steps, order=order, window=window), events, reached)


EXCLUSION_CASES = [
    # (from, to, window, events, reached or None when excluded), steps A, B, C, exclusion X
    pytest.param(1, 3, None, [(A, 1), (X, 2), (B, 3), (C, 4)], None, id="between-is-excluded"),
    pytest.param(1, 3, None, [(X, 0), (A, 1), (B, 2), (C, 3)], [1, 2, 3], id="before-the-range"),
    pytest.param(1, 3, None, [(A, 1), (B, 2), (C, 3), (X, 4)], [1, 2, 3], id="after-the-range"),
    pytest.param(1, 3, None, [(A, 1), (X, 1), (B, 2), (C, 3)], [1, 2, 3], id="at-the-from-step-ms-is-not-after"),
    pytest.param(1, 3, None, [(A, 1), (B, 2), (X, 3), (C, 3)], [1, 2, 3], id="at-the-to-step-ms-is-not-before"),
    pytest.param(1, 3, None, [(A, 1), (B, 2), (X, 10)], None, id="to-step-never-reached-no-window"),
    pytest.param(1, 3, 1, [(A, 0), (B, 100), (X, 1500)], [0, 100], id="to-step-never-reached-after-window"),
    pytest.param(1, 3, 1, [(A, 0), (B, 100), (X, 900)], None, id="to-step-never-reached-within-window"),
    pytest.param(2, 3, None, [(A, 1), (X, 2), (B, 3), (C, 4)], [1, 3, 4], id="before-the-from-step"),
    pytest.param(2, 3, None, [(X, 1)], [], id="from-step-never-reached"),
]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(("start", "end", "window", "events", "reached"), EXCLUSION_CASES)
def test_exclusion_case(ch: Client, settings: Settings, order, start, end, window, events, reached) -> None:
    """The moments are ordered mode's; strict (where X between two steps also breaks the chain) and any order run
    the same cases against the reference."""
    definition = funnel(A, B, C, order=order, window=window, exclusions=(Exclusion(*X, start, end),))
    run_case(ch, database(settings), definition, events, reached if order == "ordered" else ...)


def test_excluded_sessions_count_nowhere(ch: Client, settings: Settings) -> None:
    db = database(settings)
    sessions = [session() for _ in range(4)]
    rows = [EventRow(s.session_id, BASE_MS + i, *step) for s in sessions for i, step in enumerate([A, B])]
    rows.append(EventRow(sessions[0].session_id, BASE_MS, *X))  # at A's ms: not after it
    rows.append(EventRow(sessions[1].session_id, BASE_MS + 1, *X))  # at B's ms: not before it
    rows.append(EventRow(sessions[2].session_id, BASE_MS + 5, *X))  # after B: not in the range
    slow = session()
    rows += [EventRow(slow.session_id, BASE_MS, *A), EventRow(slow.session_id, BASE_MS + 2, *X),
             EventRow(slow.session_id, BASE_MS + 4, *B)]
    insert_rows(ch, db, [*sessions, slow], rows)
    definition = funnel(A, B, exclusions=(Exclusion(*X, 1, 2),))
    result = assert_agrees(ch, db, definition, [*sessions, slow], rows)
    assert (result.entered, result.excluded, result.steps[-1].completed) == (4, 1, 4)
    assert slow.session_id not in result.steps[0].completed_ids + result.steps[0].dropped_ids
    assert sum(point.entered for point in result.trend) == 4


def test_breakdown_rows_add_up_and_list_their_sessions(ch: Client, settings: Settings) -> None:
    db = database(settings)
    browsers = ["Chrome"] * 3 + ["Firefox"] * 2 + ["Safari", "", "Edge", "Opera'; --"]
    sessions = [SessionRow(uuid.uuid4(), "shop", BASE_MS + i, BASE_MS + i + 60_000, browser=b)
                for i, b in enumerate(browsers)]
    rows = []
    for index, s in enumerate(sessions):
        rows.append(EventRow(s.session_id, BASE_MS + 10, *A))
        if index % 2 == 0:
            rows.append(EventRow(s.session_id, BASE_MS + 20, *B))
    insert_rows(ch, db, sessions, rows)
    definition = funnel(A, B, breakdown=Breakdown("browser", limit=2))
    result = assert_agrees(ch, db, definition, sessions, rows)
    assert result.breakdown is not None
    assert [(r.value, r.entered, r.completed) for r in result.breakdown] == [
        ("Chrome", 3, [3, 2]), ("Firefox", 2, [2, 1]), (None, 4, [4, 2])]
    assert sum(r.entered for r in result.breakdown) == result.entered
    assert [sum(r.completed[k] for r in result.breakdown) for k in range(2)] == [s.completed for s in result.steps]
    top = top_values(result.breakdown)
    for value, other in (("Chrome", None), ("Firefox", None), (None, top), ("Opera'; --", None)):
        for outcome in ("completed", "dropped"):
            listed = step_sessions(ch, db, definition, 2, outcome, limit=100, breakdown_value=value,
                                   breakdown_other=other)
            expected = reference_step_sessions(definition, sessions, rows, 2, outcome, breakdown_value=value,
                                               breakdown_other=other)
            assert listed == expected and (value != "Chrome" or outcome != "completed" or len(listed) == 2)
    with pytest.raises(InvalidFunnel) as caught:
        step_sessions(ch, db, funnel(A, B), 1, "completed", breakdown_value="Chrome")
    assert caught.value.path == "breakdown_value"


def test_breakdown_ranks_by_entered_then_value() -> None:
    rows = breakdown_rows({"b": (2, [1]), "a": (2, [2]), "c": (5, [0]), "d": (1, [1])}, limit=3)
    assert [(r.value, r.entered) for r in rows] == [("c", 5), ("a", 2), ("b", 2), (None, 1)]
    assert breakdown_rows({"a": (1, [1])}, limit=3) == [breakdown_rows({"a": (1, [1])}, 1)[0]]


def test_times_and_histogram_are_exact(ch: Client, settings: Settings) -> None:
    db = database(settings)
    gaps = [100, 200, 300, 400, 5_000, 5_001, 9_999, 10_000]
    sessions = [session() for _ in gaps]
    rows = [EventRow(s.session_id, BASE_MS, *A) for s in sessions]
    rows += [EventRow(s.session_id, BASE_MS + gap, *B) for s, gap in zip(sessions, gaps, strict=True)]
    insert_rows(ch, db, sessions, rows)
    result = assert_agrees(ch, db, funnel(A, B), sessions, rows)
    step = result.steps[1]
    width = (10_000 - 100) // HISTOGRAM_BINS + 1
    assert step.time_to_convert == Histogram(lower_ms=100, bin_ms=width, counts=[4, 0, 0, 0, 2, 0, 0, 0, 0, 2])
    assert step.median_ms_from_previous == step.median_ms_from_start == 2_700.0
    assert step.p90_ms_from_start == pytest.approx(9_999.3)
    assert result.steps[0].time_to_convert is None and result.steps[0].median_ms_from_start is None


def test_trend_is_daily_then_weekly_past_90_days(ch: Client, settings: Settings) -> None:
    db = database(settings)
    days = [0, 0, 2, 3]
    sessions = [SessionRow(uuid.uuid4(), "shop", BASE_MS + d * DAY_MS, BASE_MS + d * DAY_MS + 1) for d in days]
    rows = [EventRow(s.session_id, s.started_at_ms, *A) for s in sessions[::2]]
    insert_rows(ch, db, sessions, rows)
    result = assert_agrees(ch, db, funnel(A), sessions, rows)
    first = dt.date(2026, 3, 1)
    assert result.trend_period == "day"
    assert result.trend == [TrendPoint(first + dt.timedelta(days=d), entered, completed)
                            for d, entered, completed in ((0, 2, 1), (1, 0, 0), (2, 1, 1), (3, 1, 0))]
    late = SessionRow(uuid.uuid4(), "shop", BASE_MS + 120 * DAY_MS, BASE_MS + 120 * DAY_MS + 1)
    insert_rows(ch, db, [late], [])
    result = assert_agrees(ch, db, funnel(A), [*sessions, late], rows)
    assert result.trend_period == "week"
    assert all(point.start.weekday() == 0 for point in result.trend)
    assert len(result.trend) == 19 and sum(p.entered for p in result.trend) == 5


# --- random data, every mode -----------------------------------------------------------------------------------

STEPS = [("click", "Buy"), ("click", "Add to cart"), ("custom", "paid"), ("custom", "Buy"), ("click", "a'b")]
BROWSERS = ["Chrome", "Firefox", "Safari", "", "Edge", *HOSTILE[:3]]


def random_data(seed: int, sessions: int, events: int) -> tuple[list[SessionRow], list[EventRow]]:
    rng = random.Random(seed)
    rows = [
        SessionRow(uuid.UUID(int=rng.getrandbits(128), version=4), "shop",
                   start := BASE_MS + rng.randrange(4) * DAY_MS + rng.randrange(1000), start + 60_000,
                   browser=rng.choice(BROWSERS), entry_path=rng.choice(["/", "/cart", "/a'b"]))
        for _ in range(sessions)
    ]
    kinds = [*STEPS, ("custom", "cancel"), ("click", "noise")]
    event_rows = []
    for _ in range(events):
        owner = rng.choice(rows)
        # A coarse grid: equal timestamps, window edges and strict neighbours are common.
        event_rows.append(EventRow(owner.session_id, owner.started_at_ms + rng.randrange(30) * 250, *rng.choice(kinds)))
    event_rows += rng.sample(event_rows, len(event_rows) // 20)  # unmerged copies
    return rows, event_rows


@pytest.mark.parametrize("order", ORDERS)
def test_seeded_random_data_matches_reference_in_every_mode(ch: Client, settings: Settings, order: str) -> None:
    db = database(settings)
    sessions, events = random_data(11, sessions=300, events=4_000)
    insert_rows(ch, db, sessions, events)
    shapes = [
        funnel(*STEPS[:3], order=order),
        funnel(*STEPS, order=order, window=2),
        funnel(*STEPS[:4], order=order, window=3, exclusions=(Exclusion("custom", "cancel", 1, 3),
                                                              Exclusion("click", "noise", 3, 4))),
        funnel(*STEPS[:3], order=order, breakdown=Breakdown("browser", limit=3)),
        funnel(*STEPS[:2], order=order, window=1, breakdown=Breakdown("entry_path", limit=1),
               exclusions=(Exclusion("custom", "cancel", 1, 2),)),
    ]
    for definition in shapes:
        result = assert_agrees(ch, db, definition, sessions, events)
        assert result.steps[1].completed > 0, definition
        assert_moments_agree(ch, db, definition, sessions, events, steps=[2])


def test_thirty_steps_in_every_mode(ch: Client, settings: Settings) -> None:
    db = database(settings)
    sessions, events = random_data(5, sessions=60, events=3_000)
    insert_rows(ch, db, sessions, events)
    steps = [(kind, f"{label}") for kind, label in STEPS] * 6
    for order in ("ordered", "strict"):
        assert_agrees(ch, db, funnel(*steps, order=order, window=5), sessions, events)
    distinct = [("custom" if i % 2 else "click", f"s{i}") for i in range(30)]
    assert_agrees(ch, db, funnel(*distinct, order="any", window=5), sessions, events)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[FunnelDefinition, list[SessionRow], list[EventRow]]:
    order = draw(st.sampled_from(ORDERS))
    pool = [("click", "Buy"), ("custom", "Buy"), ("click", "buy"), ("custom", HOSTILE[0]), ("click", HOSTILE[4]),
            ("page", "/a"), ("page", "/a*"), ("page", "/*"), ("input", "Buy"), ("input", HOSTILE[1])]
    visits = [("page", "/a"), ("page", "/ab"), ("page", "/b"), ("page", "/a*")]
    if order == "any":
        steps = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
    else:
        steps = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
    exclusions: tuple[Exclusion, ...] = ()
    if len(steps) > 1 and draw(st.booleans()):
        start = draw(st.integers(1, len(steps) - 1))
        end = draw(st.integers(start + 1, len(steps)))
        exclusions = (Exclusion("custom", "cancel", start, end),)
    breakdown = draw(st.sampled_from([None, Breakdown("browser", draw(st.integers(1, 3)))]))
    definition = funnel(*steps, order=order, window=draw(st.sampled_from([None, 1, 2])), exclusions=exclusions,
                        breakdown=breakdown)
    sessions = [
        SessionRow(sid, "shop", BASE_MS + draw(st.integers(0, 3)) * DAY_MS, BASE_MS + 4 * DAY_MS,
                   browser=draw(st.sampled_from(BROWSERS[:4])))
        for sid in draw(st.lists(st.uuids(version=4), min_size=1, max_size=6, unique=True))
    ]
    events = [
        EventRow(owner.session_id, owner.started_at_ms + draw(st.integers(0, 12)) * 250, kind, label)
        for owner, (kind, label) in draw(st.lists(
            st.tuples(st.sampled_from(sessions), st.sampled_from([*pool, *visits, ("custom", "cancel")])),
            max_size=30))
    ]
    return definition, sessions, events


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=scenario())
def test_hypothesis_every_mode_matches_reference(ch: Client, settings: Settings, case) -> None:
    definition, sessions, events = case
    db = database(settings)
    ch.command(f"TRUNCATE TABLE {db}.sessions")
    ch.command(f"TRUNCATE TABLE {db}.conversion_events")
    insert_rows(ch, db, sessions, events)
    assert_agrees(ch, db, definition, sessions, events)
    assert_moments_agree(ch, db, definition, sessions, events)


# --- validation ------------------------------------------------------------------------------------------------

STEP = {"kind": "click", "label": "A"}
BAD_DEFINITIONS = [
    pytest.param({"order": "random"}, "order", "random", id="unknown-order"),
    pytest.param({"steps": [STEP, {"kind": "scroll", "label": "x"}]}, "steps[1].kind", "", id="unknown-kind"),
    pytest.param({"steps": [STEP] * 31}, "steps", "at most 30", id="too-many-steps"),
    pytest.param({"steps": [{"kind": "click", "label": "x" * 16_385}]}, "steps[0].label", "at most", id="long-label"),
    pytest.param({"order": "any", "steps": [STEP, STEP]}, "steps[1]", "must differ", id="any-equal-steps"),
    pytest.param({"exclusions": [{"kind": "custom", "label": "X", "from_step": 0, "to_step": 2}]},
                 "exclusions[0].from_step", "from 1 to 2", id="exclusion-before-the-steps"),
    pytest.param({"exclusions": [{"kind": "custom", "label": "X", "from_step": 1, "to_step": 3}]},
                 "exclusions[0].to_step", "from 1 to 2", id="exclusion-after-the-steps"),
    pytest.param({"exclusions": [{"kind": "custom", "label": "X", "from_step": 2, "to_step": 2}]},
                 "exclusions[0].to_step", "after from_step", id="exclusion-empty-range"),
    pytest.param({"exclusions": [{"kind": "click", "label": "A", "from_step": 1, "to_step": 2}]},
                 "exclusions[0].label", "differ from the steps", id="exclusion-is-a-step"),
    pytest.param({"exclusions": [{"kind": "custom", "label": "", "from_step": 1, "to_step": 2}]},
                 "exclusions[0].label", "empty", id="exclusion-empty-label"),
    pytest.param({"exclusions": [{"kind": "hover", "label": "x", "from_step": 1, "to_step": 2}]},
                 "exclusions[0].kind", "", id="exclusion-unknown-kind"),
    pytest.param({"exclusions": [{"kind": "custom", "label": "X", "from_step": 1}]}, "exclusions[0]", "to_step",
                 id="exclusion-missing-field"),
    pytest.param({"breakdown": {"property": "country_of_birth"}}, "breakdown.property", "", id="unknown-property"),
    pytest.param({"steps": [STEP, {"kind": "page", "label": "checkout"}]}, "steps[1].label", "URL path",
                 id="page-not-a-path"),
    pytest.param({"exclusions": [{"kind": "page", "label": "x*", "from_step": 1, "to_step": 2}]},
                 "exclusions[0].label", "URL path", id="exclusion-page-not-a-path"),
    pytest.param({"breakdown": {"property": "browser", "limit": 0}}, "breakdown.limit", "1 to 100",
                 id="breakdown-limit-zero"),
    pytest.param({"breakdown": {"property": "browser", "limit": 101}}, "breakdown.limit", "1 to 100",
                 id="breakdown-limit-too-big"),
    pytest.param({"breakdown": {"property": "browser", "top": 3}}, "breakdown", "`top`", id="breakdown-unknown-field"),
]


@pytest.mark.parametrize(("change", "path", "message"), BAD_DEFINITIONS)
def test_bad_definitions_name_the_field(change: dict, path: str, message: str) -> None:
    document = {"name": "f", "steps": [STEP, {"kind": "custom", "label": "B"}], **change}
    with pytest.raises(InvalidFunnel) as caught:
        from_clean(document)
    assert caught.value.path == path
    assert message in caught.value.message


def test_counts_only_agree_with_everything(ch: Client, settings: Settings) -> None:
    db = database(settings)
    sessions, events = random_data(3, sessions=100, events=1_000)
    insert_rows(ch, db, sessions, events)
    definition = funnel(*STEPS[:3], order="strict", window=2, breakdown=Breakdown("browser"))
    counts = evaluate_funnel(ch, db, definition)
    expected = evaluate_reference(definition, sessions, events)
    assert counts.breakdown == expected.breakdown and counts.trend == expected.trend


def test_migration_8_makes_pages_conversion_events(settings: Settings, chdb_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A database at migration 7: migration 8 lets kind 'page' into conversion_events (the enum and the view, in
    place), and the rows already there stay as they were."""
    database = f"p_{uuid.uuid4().hex[:10]}"
    ch = create_client(chdb_url, database=database)
    try:
        with monkeypatch.context() as before:
            before.setattr(clickhouse_migrations, "MIGRATIONS", tuple(m for m in MIGRATIONS if m.version <= 7))
            assert clickhouse_migrations.migrate(ch, settings, database)[-1] == 7
        sid = uuid.uuid4()

        def ingest(kind: str, label: str, ts: int) -> None:
            row = {"session_id": str(sid), "app_name": "shop", "ts": ts, "type": 4 if kind == "page" else 5,
                   "batch_id": str(uuid.uuid4()), "seq": 0, "event": "{}", "kind": kind, "label": label,
                   "is_error": 0, "received_at": ts}
            ch.raw_insert(f"{database}.ingest", insert_block=json.dumps(row).encode(), fmt="JSONEachRow")

        ingest("custom", "before", BASE_MS)
        ingest("page", "/lost", BASE_MS + 1)  # the view of migration 1 leaves pages out
        assert [v for v in clickhouse_migrations.migrate(ch, settings, database) if v <= 8] == [8]
        ingest("page", "/cart", BASE_MS + 2)
        rows = ch.query("SELECT toString(kind), label FROM conversion_events ORDER BY ts").result_rows
        assert [tuple(r) for r in rows] == [("custom", "before"), ("page", "/cart")]
        assert clickhouse_migrations.migrate(ch, settings, database) == []
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        ch.close()


def test_migration_9_makes_inputs_conversion_events(settings: Settings, chdb_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A database at migration 8: migration 9 lets kind 'input' into conversion_events (the enum and the view, in
    place), and the rows already there stay as they were."""
    database = f"p_{uuid.uuid4().hex[:10]}"
    ch = create_client(chdb_url, database=database)
    try:
        with monkeypatch.context() as before:
            before.setattr(clickhouse_migrations, "MIGRATIONS", tuple(m for m in MIGRATIONS if m.version <= 8))
            assert clickhouse_migrations.migrate(ch, settings, database)[-1] == 8
        sid = uuid.uuid4()

        def ingest(kind: str, label: str, ts: int) -> None:
            row = {"session_id": str(sid), "app_name": "shop", "ts": ts, "type": 3 if kind == "input" else 5,
                   "batch_id": str(uuid.uuid4()), "seq": 0, "event": "{}", "kind": kind, "label": label,
                   "is_error": 0, "received_at": ts}
            ch.raw_insert(f"{database}.ingest", insert_block=json.dumps(row).encode(), fmt="JSONEachRow")

        ingest("custom", "before", BASE_MS)
        ingest("input", "Lost", BASE_MS + 1)  # the view of migration 8 leaves inputs out
        assert clickhouse_migrations.migrate(ch, settings, database) == [9]
        ingest("input", "Email address", BASE_MS + 2)
        rows = ch.query("SELECT toString(kind), label FROM conversion_events ORDER BY ts").result_rows
        assert [tuple(r) for r in rows] == [("custom", "before"), ("input", "Email address")]
        assert clickhouse_migrations.migrate(ch, settings, database) == []
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        ch.close()
