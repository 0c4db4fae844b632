"""Text fields found in rrweb's serialized DOM, labelled from the page and never from their content, and the
inputs a batch tags by itself (no services; inputs tagged across batches, through PostgreSQL, are in
tests/test_agent_api.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from agent_api.batches import Batch, OpenClick, OpenInput, parse_batch
from agent_api.click_targets import may_hold_targets, read_mutation, read_snapshot
from agent_api.tagging import MAX_LABEL_CHARS
from tests import bardrr_events as agent
from tests.test_click_targets import element, snapshot, text

T0 = 1_767_225_600_000
SECRET = agent.TYPED_SECRET


def fields_of(event: dict[str, Any]) -> dict[int, str]:
    raw = json.dumps(event).encode()
    return dict((read_snapshot if event["type"] == 2 else read_mutation)(raw).inputs)


def parse(events: list[dict[str, Any]]) -> Batch:
    body = json.dumps(agent.record_body(events, str(uuid.uuid4()))).encode()
    return parse_batch(body, "shop", max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)


def field(node_id: int = 10, tag: str = "input", **attributes: Any) -> dict[str, Any]:
    return element(node_id, tag, **attributes)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param([element(20, "label", [text(21, "E-mail")], **{"for": "em"}),
                      field(id="em", name="email", placeholder="you@example.com", **{"aria-label": "Mail"})],
                     {10: "E-mail"}, id="label-for-before-everything"),
        pytest.param([field(id="em"), element(20, "label", [text(21, "After it")], **{"for": "em"})],
                     {10: "After it"}, id="label-for-after-the-field"),
        pytest.param([element(20, "label", [text(21, " Your \n name "), field(name="n", **{"aria-label": "x"})])],
                     {10: "Your name"}, id="enclosing-label"),
        pytest.param([element(20, "label", [element(22, "span", [text(21, "Card ")]), field(),
                                            element(23, "small", [text(24, "16 digits")])])],
                     {10: "Card 16 digits"}, id="enclosing-label-text-around-the-field"),
        pytest.param([element(20, "label", [text(21, "Ignored")], **{"for": "other"}),
                      element(30, "label", [text(31, "Wraps it"), field(id="em", **{"aria-label": "Aria"})],
                              **{"for": "nobody"})],
                     {10: "Aria"}, id="a-label-with-for-labels-only-that-id"),
        pytest.param([element(20, "label", [text(21, "Terms"), field(30, type="checkbox"), field(name="second")])],
                     {10: "second"}, id="enclosing-label-is-its-first-labelable-elements"),
        pytest.param([element(20, "label", [field(30, type="hidden"), text(21, "Code"), field()])],
                     {10: "Code"}, id="hidden-input-is-not-labelable"),
        pytest.param([element(20, "label", [text(21, "  ")], **{"for": "em"}),
                      field(id="em", name="email", **{"aria-label": " Work   e-mail "})],
                     {10: "Work e-mail"}, id="empty-label-then-aria-label"),
        pytest.param([field(name="postcode", placeholder="12345")], {10: "postcode"}, id="name-before-placeholder"),
        pytest.param([field(placeholder="Search products")], {10: "Search products"}, id="placeholder-last"),
        pytest.param([field()], {10: ""}, id="nothing-to-name-it-by"),
        pytest.param([field(type="password", name="pw", value="hunter2")], {10: "pw"}, id="password-field"),
        pytest.param([field(name="q", value=SECRET)], {10: "q"}, id="value-attribute-never-the-label"),
        pytest.param([field(value=SECRET)], {10: ""}, id="value-attribute-alone-names-nothing"),
        pytest.param([element(20, "label", [text(21, "Notes"), element(10, "textarea", [text(11, SECRET)],
                                                                    value=SECRET)])],
                     {10: "Notes"}, id="textarea-content-not-in-the-label"),
        pytest.param([element(20, "label", [text(21, "Size"), element(30, "select", [
            element(31, "option", [text(32, "Large")])]), field(name="qty")])], {10: "qty"},
                     id="select-no-field-yet-takes-its-label"),
        pytest.param([element(20, "label", [text(21, "Qty "), element(30, "span", [element(31, "select", [
            element(32, "option", [text(33, "Large")])])])]), field(name="qty")],
                     {10: "qty"}, id="select-within-a-label-is-no-field"),
        pytest.param([field(id="em"), field(11, id="em"),
                      element(20, "label", [text(21, "Mail")], **{"for": "em"})],
                     {10: "Mail", 11: ""}, id="label-for-names-the-first-field-with-the-id"),
        pytest.param([element(20, "label", [text(21, "First")], **{"for": "em"}),
                      element(22, "label", [text(23, "Second")], **{"for": "em"}), field(id="em")],
                     {10: "First"}, id="first-label-for-wins"),
        pytest.param([field(type=t) for t in ("checkbox", "radio", "submit", "button", "hidden", "file", "range",
                                              "date", "color", "image", "reset")], {}, id="not-text-types"),
        pytest.param([field(10 + i, type=t, name=t) for i, t in enumerate(
            ("text", "email", "search", "tel", "url", "number", "password", "EMAIL", "weird"))],
                     {10: "text", 11: "email", 12: "search", 13: "tel", 14: "url", 15: "number", 16: "password",
                      17: "EMAIL", 18: "weird"}, id="text-types-any-case-and-unknown-types"),
        pytest.param([field(type=7, name=["x"], placeholder="Ok")], {10: "Ok"}, id="attributes-not-text"),
        pytest.param([field(name="n " * 300)], {10: ("n " * 128).strip()}, id="capped"),
        pytest.param([element(20, "label", [text(21, "I agree to the "), element(22, "a", [text(23, "terms")]),
                                            field(name="sig")])],
                     {10: "I agree to the terms"}, id="link-text-counts-for-the-label"),
        pytest.param([element(20, "label", [element(22, "button", [text(23, "Go")]), field(name="q")])],
                     {10: "q"}, id="a-button-takes-the-label-first"),
        pytest.param([field(2**31, name="x")], {}, id="id-beyond-integer-left-out"),
    ],
)
def test_text_fields_and_their_labels(body: list[dict[str, Any]], expected: dict[int, str]) -> None:
    found = fields_of(snapshot(*body))
    assert found == expected
    assert all(len(label) <= MAX_LABEL_CHARS and SECRET not in label for label in found.values())


def test_a_link_inside_a_label_is_still_a_click_target() -> None:
    page = snapshot(element(20, "label", [text(21, "Accept the "), element(22, "a", [text(23, "terms")]),
                                          field(name="sig")]))
    found = read_snapshot(json.dumps(page).encode())
    assert found.clicks == {22: "terms"} and found.inputs == {10: "Accept the terms"}


def test_the_signup_fixture() -> None:
    assert fields_of(agent.signup_snapshot(T0)) == {
        agent.EMAIL_ID: agent.EMAIL_LABEL, agent.PASSWORD_ID: agent.PASSWORD_LABEL, agent.NOTES_ID: agent.NOTES_LABEL}


def test_fields_a_mutation_adds_are_put_back_together_with_their_labels() -> None:
    assert fields_of(agent.mutation_adding_form(T0, first_id=500)) == {
        501: agent.EMAIL_LABEL, 504: agent.PASSWORD_LABEL, 506: agent.NOTES_LABEL}


def test_a_field_added_alone_into_an_existing_label_is_named_by_its_own_attributes() -> None:
    mutation = {"type": 3, "timestamp": T0, "data": {"source": 0, "adds": [
        {"parentId": 20, "nextId": None, "node": field(40, name="coupon", placeholder="Code")}]}}
    assert fields_of(mutation) == {40: "coupon"}


# --- Inputs tagged within one batch -----------------------------------------------------------------------


def tags_of(batch: Batch) -> list[tuple[str, str]]:
    return [(tag.kind, tag.label) for tag in batch.tags]


def test_typing_in_a_field_of_the_batchs_page_is_one_input_event() -> None:
    keys = agent.typing(T0 + 100, agent.EMAIL_ID, "ada")
    batch = parse([agent.signup_snapshot(T0), *keys])
    assert tags_of(batch) == [("", ""), ("input", agent.EMAIL_LABEL), ("", ""), ("", "")]
    assert batch.open_inputs == [] and batch.targets[0].inputs[agent.EMAIL_ID] == agent.EMAIL_LABEL


def test_a_run_of_typing_ends_at_another_field_a_click_or_a_custom_event() -> None:
    events = [agent.signup_snapshot(T0), *agent.typing(T0 + 10, agent.EMAIL_ID, "ab"),
              *agent.typing(T0 + 300, agent.PASSWORD_ID, "cd"), *agent.typing(T0 + 600, agent.EMAIL_ID, "e"),
              agent.link_click(T0 + 700), *agent.typing(T0 + 800, agent.EMAIL_ID, "fg"),
              agent.custom_event(T0 + 900), *agent.typing(T0 + 1000, agent.EMAIL_ID, "h")]
    assert tags_of(parse(events)) == [
        ("", ""),
        ("input", agent.EMAIL_LABEL), ("", ""),
        ("input", agent.PASSWORD_LABEL), ("", ""),
        ("input", agent.EMAIL_LABEL),
        ("click", agent.LINK_LABEL),
        ("input", agent.EMAIL_LABEL), ("", ""),
        ("custom", agent.CUSTOM_TAG),
        ("input", agent.EMAIL_LABEL),
    ]


def test_inputs_on_what_is_no_text_field_are_not_tagged_and_end_no_run() -> None:
    events = [agent.signup_snapshot(T0), *agent.typing(T0 + 10, agent.EMAIL_ID, "a"),
              {"type": 3, "timestamp": T0 + 20, "data": {"source": 5, "text": "on", "isChecked": True,
                                                          "id": agent.NEWSLETTER_ID}},
              *agent.typing(T0 + 30, 7, "x"),  # no such node on the page
              *agent.typing(T0 + 40, agent.EMAIL_ID, "b")]
    assert tags_of(parse(events)) == [("", ""), ("input", agent.EMAIL_LABEL), ("", ""), ("", ""), ("", "")]


def test_an_input_a_script_made_is_not_the_users() -> None:
    scripted = {"type": 3, "timestamp": T0 + 10, "data": {"source": 5, "text": "x", "isChecked": False,
                                                           "id": agent.EMAIL_ID, "userTriggered": False}}
    typed = {**scripted, "data": {**scripted["data"], "userTriggered": True}}
    assert tags_of(parse([agent.signup_snapshot(T0), scripted, typed])) == [
        ("", ""), ("", ""), ("input", agent.EMAIL_LABEL)]


def test_a_field_a_mutation_added_is_tagged_when_typed_in_later_in_the_batch() -> None:
    events = [*agent.typing(T0, 501, "x"), agent.mutation_adding_form(T0 + 10, first_id=500),
              *agent.typing(T0 + 20, 501, "yz")]
    batch = parse(events)
    # Before the form existed the node was unknown to this batch: left to PostgreSQL; the run then goes on.
    assert tags_of(batch) == [("", ""), ("", ""), ("input", agent.EMAIL_LABEL), ("", "")]
    assert batch.open_inputs == [OpenInput(0, 501, T0)]


def test_a_new_page_forgets_the_old_pages_fields() -> None:
    other_page = snapshot(element(agent.EMAIL_ID, "div", [text(300, "Thanks")]), ts=T0 + 50)
    batch = parse([agent.signup_snapshot(T0), other_page, *agent.typing(T0 + 60, agent.EMAIL_ID, "a")])
    assert tags_of(batch)[2] == ("", "") and batch.open_inputs == []
    assert [t.inputs for t in batch.targets] == [
        {agent.EMAIL_ID: agent.EMAIL_LABEL, agent.PASSWORD_ID: agent.PASSWORD_LABEL, agent.NOTES_ID: agent.NOTES_LABEL},
        {}]


def test_inputs_without_a_page_in_the_batch_are_left_open_for_postgresql_once_per_run() -> None:
    events = [*agent.typing(T0, agent.EMAIL_ID, "abc"), agent.link_click(T0 + 400),
              *agent.typing(T0 + 500, agent.EMAIL_ID, "d"), *agent.typing(T0 + 600, agent.PASSWORD_ID, "ef"),
              *agent.typing(T0 + 800, 2**40, "g")]
    batch = parse(events)
    assert batch.open_inputs == [OpenInput(0, agent.EMAIL_ID, T0), OpenInput(4, agent.EMAIL_ID, T0 + 500),
                                 OpenInput(5, agent.PASSWORD_ID, T0 + 600)]
    assert batch.open_clicks == [OpenClick(3, agent.LINK_ID, T0 + 400)]
    assert all(tag.kind == "" for tag in batch.tags) and batch.click_count == 0


def test_the_typed_text_is_in_no_row_label() -> None:
    events = [agent.signup_snapshot(T0), *agent.typing(T0 + 10, agent.EMAIL_ID),
              *agent.typing(T0 + 5000, agent.NOTES_ID), *agent.typing(T0 + 9000, agent.PASSWORD_ID)]
    rows = [json.loads(line) for line in parse(events).ingest_rows(uuid.uuid4(), T0).splitlines()]
    assert [(r["kind"], r["label"]) for r in rows if r["kind"]] == [
        ("input", agent.EMAIL_LABEL), ("input", agent.NOTES_LABEL), ("input", agent.PASSWORD_LABEL)]
    assert not any(SECRET[:5] in r["label"] for r in rows)


@pytest.mark.parametrize(("raw", "expected"), [(b'{"tagName":"input"}', True), (b'{"tagName": "textarea"}', True),
                                               (b'{"source":5,"text":"input","id":3}', False)])
def test_the_cheap_look_sees_fields(raw: bytes, expected: bool) -> None:
    assert may_hold_targets(raw) is expected
