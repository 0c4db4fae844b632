"""Funnel definitions: validation with a field path and a message, and lossless conversion between the clean
form and the original dashboard's stored form."""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from funnels import (
    MAX_LABEL_LENGTH,
    AppNameFilter,
    DurationFilter,
    ErrorsFilter,
    FunnelDefinition,
    InvalidFunnel,
    StartedFilter,
    Step,
    dashboard_filters,
    filters_from_clean,
    from_clean,
    from_dashboard,
    to_clean,
    to_dashboard,
)

GOOD_CLEAN = {
    "name": "Checkout",
    "filters": [
        {"type": "app_name", "names": ["shop"]},
        {"type": "started", "start": "2026-01-01", "end": "2026-01-31"},
        {"type": "duration", "min_ms": 1000, "max_ms": 600000},
        {"type": "errors", "has_errors": False},
    ],
    "steps": [{"kind": "click", "label": "Add to cart"}, {"kind": "custom", "label": "paid"}],
    "window_seconds": 3600,
}

GOOD_DASHBOARD = {
    "funnelName": "Checkout",
    "sessionFilters": [
        {"filterType": "appName", "textContent": "shop"},
        {"filterType": "date", "startDate": "2026-01-01", "endDate": "2026-01-31"},
        {"filterType": "length", "minLength": 1000, "maxLength": 600000},
        {"filterType": "Has Errors?", "yesOrNo": "no"},
    ],
    "eventSequence": [
        {"eventType": "click", "textContent": "Add to cart"},
        {"eventType": "custom", "customEventType": "paid"},
    ],
    "conversionWindowSeconds": 3600,
}


def clean_with(**changes) -> dict:
    return {**GOOD_CLEAN, **changes}


def dashboard_with(**changes) -> dict:
    return {**GOOD_DASHBOARD, **changes}


def test_the_two_examples_are_the_same_funnel() -> None:
    assert from_clean(GOOD_CLEAN) == from_dashboard(GOOD_DASHBOARD)
    assert to_clean(from_dashboard(GOOD_DASHBOARD)) == GOOD_CLEAN
    assert to_dashboard(from_clean(GOOD_CLEAN)) == GOOD_DASHBOARD
    assert from_clean(json.dumps(GOOD_CLEAN).encode()) == from_clean(GOOD_CLEAN)


BAD_CLEAN = [
    pytest.param(clean_with(steps=[]), "steps", "at least one step", id="empty-sequence"),
    pytest.param(clean_with(steps=[{"kind": "scroll", "label": "x"}]), "steps[0].kind", "scroll", id="unknown-kind"),
    pytest.param(clean_with(steps=[{"kind": "click", "label": "x"}] * 31), "steps", "at most 30", id="too-many-steps"),
    pytest.param(
        clean_with(steps=[{"kind": "click", "label": "x" * (MAX_LABEL_LENGTH + 1)}]),
        "steps[0].label",
        "at most",
        id="overlong-label",
    ),
    pytest.param(clean_with(steps=[{"kind": "click", "label": ""}]), "steps[0].label", "empty", id="empty-label"),
    pytest.param(clean_with(steps=[{"kind": "click"}]), "steps[0]", "label", id="missing-label"),
    pytest.param(clean_with(steps=[{"kind": "click", "label": 5}]), "steps[0].label", "str", id="label-not-text"),
    pytest.param(clean_with(name=""), "name", "empty", id="empty-name"),
    pytest.param(clean_with(name="n" * 1001), "name", "at most", id="overlong-name"),
    pytest.param(
        clean_with(filters=[{"type": "started", "start": "2026-02-01", "end": "2026-01-01"}]),
        "filters[0]",
        "after",
        id="inverted-dates",
    ),
    pytest.param(
        clean_with(filters=[{"type": "duration", "min_ms": 10, "max_ms": 1}]), "filters[0]", "greater", id="inverted-ms"
    ),
    pytest.param(
        clean_with(filters=[{"type": "duration", "min_ms": -1}]), "filters[0].min_ms", "0 or more", id="negative-ms"
    ),
    pytest.param(
        clean_with(filters=[{"type": "started", "start": "2026-02-30"}]), "filters[0].start", "date", id="bad-date"
    ),
    pytest.param(clean_with(filters=[{"type": "app_name", "names": []}]), "filters[0].names", "at least", id="no-apps"),
    pytest.param(clean_with(filters=[{"type": "colour"}]), "filters[0].type", "colour", id="unknown-filter"),
    pytest.param(
        clean_with(filters=[{"type": "errors", "has_errors": "yes"}]), "filters[0].has_errors", "bool", id="flag"
    ),
    pytest.param(clean_with(window_seconds=0), "window_seconds", "from 1", id="zero-window"),
    pytest.param(clean_with(window_seconds=-5), "window_seconds", "from 1", id="negative-window"),
    pytest.param(clean_with(window_seconds=1.5), "window_seconds", "int", id="fractional-window"),
    pytest.param(clean_with(extra=1), "", "unknown field", id="unknown-field"),
    pytest.param(b"{not json", "", "JSON", id="not-json"),
    pytest.param([1, 2], "", "object", id="not-an-object"),
]


@pytest.mark.parametrize(("document", "path", "message"), BAD_CLEAN)
def test_bad_clean_definitions(document, path: str, message: str) -> None:
    with pytest.raises(InvalidFunnel) as caught:
        from_clean(document)
    assert caught.value.path == path
    assert message.lower() in caught.value.message.lower()
    assert caught.value.to_dict() == {"field": path, "message": caught.value.message}


BAD_DASHBOARD = [
    pytest.param(dashboard_with(eventSequence=[]), "eventSequence", "at least one step", id="empty-sequence"),
    pytest.param(
        dashboard_with(eventSequence=[{"eventType": "scroll"}]), "eventSequence[0].eventType", "'click'", id="kind"
    ),
    pytest.param(
        dashboard_with(eventSequence=[{"eventType": "custom", "customEventType": "x" * (MAX_LABEL_LENGTH + 1)}]),
        "eventSequence[0].customEventType",
        "at most",
        id="overlong-custom",
    ),
    pytest.param(
        dashboard_with(eventSequence=[{"eventType": "click", "textContent": "x"}] * 31),
        "eventSequence",
        "at most 30",
        id="too-many",
    ),
    pytest.param(
        dashboard_with(eventSequence=[{"eventType": "click", "customEventType": "x"}]),
        "eventSequence[0].customEventType",
        "unknown field",
        id="wrong-label-key",
    ),
    pytest.param(
        dashboard_with(sessionFilters=[{"filterType": "date", "startDate": "2026-02-01", "endDate": "2026-01-01"}]),
        "sessionFilters[0].startDate",
        "after",
        id="inverted-dates",
    ),
    pytest.param(
        dashboard_with(sessionFilters=[{"filterType": "length", "minLength": "10", "maxLength": 1}]),
        "sessionFilters[0].minLength",
        "greater",
        id="inverted-lengths",
    ),
    pytest.param(
        dashboard_with(sessionFilters=[{"filterType": "date", "startDate": "01/02/2026"}]),
        "sessionFilters[0].startDate",
        "YYYY-MM-DD",
        id="date-format",
    ),
    pytest.param(
        dashboard_with(sessionFilters=[{"filterType": "length", "minLength": "ten"}]),
        "sessionFilters[0].minLength",
        "milliseconds",
        id="length-not-number",
    ),
    pytest.param(
        dashboard_with(sessionFilters=[{"filterType": "Has Errors?", "yesOrNo": "maybe"}]),
        "sessionFilters[0].yesOrNo",
        "'yes'",
        id="yes-or-no",
    ),
    pytest.param(
        dashboard_with(sessionFilters=[{"filterType": "browser"}]),
        "sessionFilters[0].filterType",
        "must be one of",
        id="unknown-filter-type",
    ),
    pytest.param(
        dashboard_with(sessionFilters=[{"filterType": "appName", "textContent": ""}]),
        "sessionFilters[0].textContent",
        "empty",
        id="empty-app-name",
    ),
    pytest.param(dashboard_with(sessionFilters={}), "sessionFilters", "list", id="filters-not-a-list"),
    pytest.param(dashboard_with(funnelName=None), "funnelName", "string", id="no-name"),
    pytest.param(dashboard_with(conversionWindowSeconds=0), "conversionWindowSeconds", "from 1", id="zero-window"),
    pytest.param(dashboard_with(colour="red"), "colour", "unknown field", id="unknown-field"),
]


@pytest.mark.parametrize(("document", "path", "message"), BAD_DASHBOARD)
def test_bad_dashboard_definitions(document, path: str, message: str) -> None:
    with pytest.raises(InvalidFunnel) as caught:
        from_dashboard(document)
    assert caught.value.path == path
    assert message.lower() in caught.value.message.lower()


def test_empty_filter_list_as_the_original_stored_it() -> None:
    steps = [{"eventType": "click", "textContent": "Buy"}]
    for stored in ([{}], []):
        funnel = from_dashboard({"funnelName": "f", "sessionFilters": stored, "eventSequence": steps})
        assert funnel.filters == ()
        assert to_dashboard(funnel)["sessionFilters"] == [{}]
    assert from_dashboard({"funnelName": "f", "eventSequence": steps}).filters == ()


def test_dashboard_spellings_normalise() -> None:
    funnel = from_dashboard(
        {
            "funnelName": "f",
            "sessionFilters": [
                {"filterType": "length", "minLength": "1000", "maxLength": ""},
                {"filterType": "date", "startDate": "2026-01-01"},
            ],
            "eventSequence": [{"eventType": "click", "textContent": "Buy"}],
        }
    )
    assert funnel.filters == (DurationFilter(min_ms=1000), StartedFilter(start=dt.date(2026, 1, 1)))
    assert to_dashboard(funnel)["sessionFilters"] == [
        {"filterType": "length", "minLength": 1000},
        {"filterType": "date", "startDate": "2026-01-01"},
    ]


def test_several_app_names_have_no_dashboard_spelling() -> None:
    funnel = FunnelDefinition(name="f", steps=(Step("click", "x"),), filters=(AppNameFilter(names=("a", "b")),))
    with pytest.raises(InvalidFunnel) as caught:
        to_dashboard(funnel)
    assert caught.value.path == "filters[0].names"


def test_extra_filters_at_evaluation_time() -> None:
    assert dashboard_filters([{"filterType": "date", "startDate": "2026-01-01", "endDate": "2026-01-02"}]) == (
        StartedFilter(start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 2)),
    )
    assert filters_from_clean([{"type": "errors", "has_errors": True}]) == (ErrorsFilter(has_errors=True),)
    with pytest.raises(InvalidFunnel) as caught:
        dashboard_filters([{"filterType": "date", "startDate": "2026-01-03", "endDate": "2026-01-02"}], "query")
    assert caught.value.path == "query[0].startDate"
    with pytest.raises(InvalidFunnel) as caught:
        filters_from_clean([{"type": "duration", "min_ms": "x"}], "extra")
    assert caught.value.path == "extra[0].min_ms"


# --- lossless both ways, on generated definitions -----------------------------------------------------------

labels = st.text(min_size=1, max_size=30)
dates = st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1))
optional_ms = st.none() | st.integers(0, 10**12)


@st.composite
def filters(draw: st.DrawFn, one_app: bool):
    kind = draw(st.sampled_from(["app", "started", "duration", "errors"]))
    if kind == "app":
        return AppNameFilter(names=tuple(draw(st.lists(labels, min_size=1, max_size=1 if one_app else 4))))
    if kind == "started":
        low, high = sorted(draw(st.lists(dates, min_size=2, max_size=2)))
        return StartedFilter(start=draw(st.sampled_from([low, None])), end=draw(st.sampled_from([high, None])))
    if kind == "duration":
        low, high = sorted(draw(st.lists(st.integers(0, 10**12), min_size=2, max_size=2)))
        return DurationFilter(min_ms=draw(st.sampled_from([low, None])), max_ms=draw(st.sampled_from([high, None])))
    return ErrorsFilter(has_errors=draw(st.booleans()))


def definitions(one_app: bool):
    return st.builds(
        FunnelDefinition,
        name=st.text(min_size=1, max_size=20).filter(lambda s: s.strip()),
        steps=st.lists(
            st.builds(Step, kind=st.sampled_from(["click", "custom"]), label=labels), min_size=1, max_size=20
        ).map(tuple),
        filters=st.lists(filters(one_app), max_size=5).map(tuple),
        window_seconds=st.none() | st.integers(1, 10**6),
    )


@hypothesis_settings(max_examples=100, deadline=None)
@given(definitions(one_app=False))
def test_clean_form_round_trips(funnel: FunnelDefinition) -> None:
    document = to_clean(funnel)
    assert from_clean(document) == funnel
    assert from_clean(msgspec.json.encode(document)) == funnel


@hypothesis_settings(max_examples=100, deadline=None)
@given(definitions(one_app=True))
def test_dashboard_form_round_trips(funnel: FunnelDefinition) -> None:
    document = to_dashboard(funnel)
    assert from_dashboard(document) == funnel
    # Through JSON text too, as PostgreSQL's jsonb column would keep it.
    assert from_dashboard(json.loads(json.dumps(document))) == funnel
    assert to_dashboard(from_dashboard(document)) == document
