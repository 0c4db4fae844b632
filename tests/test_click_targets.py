"""Links and buttons found in rrweb's serialized DOM, and the clicks a batch names by itself (no services;
clicks named across batches, through PostgreSQL, are in tests/test_agent_api.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from agent_api.batches import Batch, OpenClick, TargetsFound, parse_batch
from agent_api.click_targets import (
    MAX_TARGETS_PER_BATCH,
    Target,
    may_hold_targets,
    mutation_targets,
    snapshot_targets,
)
from agent_api.errors import InvalidRequest
from agent_api.tagging import MAX_LABEL_CHARS
from tests import bardrr_events as agent

T0 = 1_767_225_600_000


def element(node_id: int, tag: str, children: list[dict[str, Any]] | None = None, **attributes: Any) -> dict[str, Any]:
    return {"type": 2, "tagName": tag, "attributes": attributes, "childNodes": children or [], "id": node_id}


def text(node_id: int, content: str) -> dict[str, Any]:
    return {"type": 3, "textContent": content, "id": node_id}


def snapshot(*body: dict[str, Any], ts: int = T0) -> dict[str, Any]:
    document = {"type": 0, "childNodes": [element(2, "html", [element(3, "body", list(body))])], "id": 1}
    return {"type": 2, "data": {"node": document, "initialOffset": {"left": 0, "top": 0}}, "timestamp": ts}


def targets_of(event: dict[str, Any]) -> dict[int, str]:
    raw = json.dumps(event).encode()
    read = snapshot_targets if event["type"] == 2 else mutation_targets
    return dict(read(raw))


def parse(events: list[dict[str, Any]]) -> Batch:
    body = json.dumps(agent.record_body(events, str(uuid.uuid4()))).encode()
    return parse_batch(body, "shop", max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)


def test_the_fixture_snapshot_has_its_links_and_button_and_every_element_inside_them() -> None:
    assert targets_of(agent.full_snapshot(T0)) == {
        agent.LINK_ID: agent.LINK_LABEL,
        agent.ACCOUNT_LINK_ID: agent.ACCOUNT_LABEL,  # no text: its aria-label
        61: agent.ACCOUNT_LABEL,  # the svg inside it
        agent.ACCOUNT_ICON_PATH_ID: agent.ACCOUNT_LABEL,
        agent.BUTTON_ID: agent.BUTTON_LABEL,
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param([element(10, "a", [text(11, "\n  Sale \t now ")], href="/sale")], {10: "Sale now"},
                     id="whitespace-collapsed"),
        pytest.param([element(10, "a", [element(12, "span", [text(13, "Buy")]), text(14, " now")])],
                     {10: "Buy now", 12: "Buy now"}, id="text-of-the-whole-subtree-in-order"),
        pytest.param([element(10, "BUTTON", [text(11, "Go")])], {10: "Go"}, id="tag-name-any-case"),
        pytest.param([element(10, "a", [element(20, "button", [text(21, "Inner")]), text(22, " outer")])],
                     {10: "Inner outer", 20: "Inner"}, id="innermost-target-wins"),
        pytest.param([element(10, "a", [element(11, "style", [text(12, ".x{}")]), text(13, "Home")])],
                     {10: "Home", 11: "Home"}, id="style-text-left-out"),
        pytest.param([element(10, "button", title="Close")], {10: "Close"}, id="title-when-no-text"),
        pytest.param([element(10, "button", [text(11, "  ")], **{"aria-label": "Menu", "title": "x"})],
                     {10: "Menu"}, id="aria-label-before-title"),
        pytest.param([element(10, "a")], {10: ""}, id="nothing-to-name-it-by"),
        pytest.param([element(10, "a", [text(11, "w " * 600)])], {10: ("w " * 128).strip()}, id="capped"),
        pytest.param([element(10, "div", [text(11, "Cart")]), element(12, "span")], {}, id="no-targets"),
        pytest.param([element(2**31, "a", [text(11, "x")])], {}, id="id-beyond-integer-left-out"),
        pytest.param([element(-1, "a", [text(11, "x")])], {}, id="negative-id-left-out"),
    ],
)
def test_targets_in_a_snapshot(body: list[dict[str, Any]], expected: dict[int, str]) -> None:
    found = targets_of(snapshot(*body))
    assert found == expected
    assert all(len(label) <= MAX_LABEL_CHARS for label in found.values())


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"node": "not a node"}, id="node-not-an-object"),
        pytest.param({"node": {"type": 0, "childNodes": {"a": 1}, "id": 1}}, id="children-not-a-list"),
        pytest.param({"node": {"type": 2, "tagName": "a", "childNodes": []}}, id="no-id"),
        pytest.param({}, id="no-node"),
    ],
)
def test_a_snapshot_bard_cannot_read_has_no_targets_and_is_still_accepted(data: dict[str, Any]) -> None:
    event = {"type": 2, "timestamp": T0, "data": data}
    assert snapshot_targets(json.dumps(event | {"x": '"tagName" "a"'}).encode()) == []
    batch = parse([event, agent.link_click(T0 + 1)])
    assert batch.targets == [TargetsFound(T0, True, {}, {})] and batch.open_clicks == []
    assert [tag.kind for tag in batch.tags] == ["", ""]


def test_a_deeply_nested_snapshot_is_no_crash() -> None:
    depth = 50_000
    node = b'{"type":2,"tagName":"div","attributes":{},"id":7,"childNodes":[' * depth + json.dumps(
        element(10, "a", [text(11, "deep")])).encode() + b"]}" * depth
    event = b'{"type":2,"timestamp":%d,"data":{"node":%s}}' % (T0, node)
    found = snapshot_targets(event)
    # Either read (a stack, not recursion) or, past the decoder's depth limit, not read; never an error.
    assert found in ([Target(10, "deep")], [])
    body = b'{"sessionId":"%s","events":[%s]}' % (str(uuid.uuid4()).encode(), event)
    with pytest.raises(InvalidRequest) as refused:  # the whole body is too deep for the decoder: a 400
        parse_batch(body, "shop", max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)
    assert refused.value.field == "body" and "nested too deeply" in refused.value.message


def test_targets_stop_at_the_bound_for_the_whole_batch() -> None:
    links = [element(10 + i, "a") for i in range(MAX_TARGETS_PER_BATCH - 5)]
    batch = parse([snapshot(*links), agent.mutation_adding_link(T0 + 1, 10**6, "More"),
                   agent.mutation_adding_link(T0 + 2, 2 * 10**6, "Even more"),
                   agent.mutation_adding_link(T0 + 3, 3 * 10**6, "Most"),
                   agent.mutation_adding_link(T0 + 4, 4 * 10**6, "Beyond")])
    assert [len(found.labels) for found in batch.targets] == [MAX_TARGETS_PER_BATCH - 5, 2, 2, 1]


def test_a_mutation_adding_a_link_out_of_order_is_put_back_together() -> None:
    found = targets_of(agent.mutation_adding_link(T0, 300, "Half price"))
    assert found == {300: "Half price!", 301: "Half price!"}


def test_a_mutation_adding_nothing_clickable_has_no_targets() -> None:
    mutation = agent.mutation_adding_link(T0, 300, "x")
    mutation["data"]["adds"][0]["node"]["tagName"] = "div"
    assert targets_of(mutation) == {}
    assert targets_of({"type": 3, "timestamp": T0, "data": {"source": 0, "adds": "?"}}) == {}


def test_sibling_order_survives_a_cycle_of_next_ids() -> None:
    adds = [
        {"parentId": 1, "nextId": None, "node": element(10, "a")},
        {"parentId": 10, "nextId": 12, "node": text(11, "x")},
        {"parentId": 10, "nextId": 11, "node": text(12, "y")},
    ]
    found = targets_of({"type": 3, "timestamp": T0, "data": {"source": 0, "adds": adds}})
    assert found[10] in ("xy", "yx")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"tagName":"a"}', True),
        (b'{"tagName": "button"}', True),  # spaced JSON too
        (b'{"tagName":"div"}', False),
        (b'{"source":0,"texts":[{"id":3,"value":"a"}]}', False),
    ],
)
def test_the_cheap_look_before_decoding(raw: bytes, expected: bool) -> None:
    assert may_hold_targets(raw) is expected


# --- Clicks named within one batch ------------------------------------------------------------------------


def test_a_link_click_after_the_snapshot_in_the_same_batch_is_named_at_once() -> None:
    batch = parse([agent.full_snapshot(T0), agent.link_click(T0 + 10),
                   agent.link_click(T0 + 20, agent.ACCOUNT_ICON_PATH_ID)])
    assert [(t.kind, t.label) for t in batch.tags] == [
        ("", ""), ("click", agent.LINK_LABEL), ("click", agent.ACCOUNT_LABEL)]
    assert batch.open_clicks == [] and [(t.since, t.starts_page) for t in batch.targets] == [(T0, True)]


def test_a_click_on_a_plain_node_after_a_snapshot_is_settled_as_no_target() -> None:
    batch = parse([agent.full_snapshot(T0), agent.link_click(T0 + 10, node_id=7)])  # the <ul>
    assert batch.tags[1].kind == "" and batch.open_clicks == []


def test_a_new_snapshot_in_the_batch_forgets_the_earlier_page() -> None:
    other_page = snapshot(element(90, "a", [text(91, "Back")]), ts=T0 + 50)
    batch = parse([agent.full_snapshot(T0), other_page, agent.link_click(T0 + 60)])
    assert batch.tags[2].kind == "" and batch.open_clicks == []
    assert [(t.since, t.starts_page, t.labels) for t in batch.targets[1:]] == [(T0 + 50, True, {90: "Back"})]


def test_a_link_added_by_a_mutation_then_clicked_in_the_same_batch() -> None:
    batch = parse([agent.mutation_adding_link(T0, 300, "Sale"), agent.link_click(T0 + 5, 301)])
    assert (batch.tags[1].kind, batch.tags[1].label) == ("click", "Sale!")
    assert batch.targets == [TargetsFound(T0, False, {300: "Sale!", 301: "Sale!"}, {})]


def test_clicks_without_a_page_in_the_batch_are_left_open_for_postgresql() -> None:
    batch = parse([agent.mouse_move(T0), agent.link_click(T0 + 10), agent.button_click(T0 + 20),
                   agent.link_click(T0 + 30, node_id=2**40), {**agent.link_click(T0 + 40), "data": {
                       "source": 2, "type": 2, "id": "57"}}])
    # The marked button click is the agent's; ids that are no PostgreSQL integer name nothing.
    assert batch.open_clicks == [OpenClick(1, agent.LINK_ID, T0 + 10)]
    assert batch.tags[2].kind == "click"


def test_a_marked_click_keeps_the_agents_text() -> None:
    batch = parse([agent.full_snapshot(T0), agent.button_click(T0 + 10, text="Add to cart (3)")])
    assert batch.tags[1].label == "Add to cart (3)"
