"""Clicks on links and buttons, named from the page's own DOM as rrweb recorded it.

The agent marks a click only when the clicked node itself is a ``BUTTON``: its check for ``ANCHOR`` matches no
element (an ``<a>`` is ``A``), and a click on the ``<span>`` or icon inside a button arrives unmarked too. rrweb
names the clicked node by the same id it gave that node when it serialized the page, so Bard finds the click
targets itself:

- A **target** is an ``<a>`` or ``<button>`` element. Its label is the text of its subtree as serialized (the
  DOM's ``textContent``, ``<script>`` and ``<style>`` left out), or its ``aria-label`` or ``title`` when it has
  no text. Every element inside a target stands for it (the innermost target wins), as a click on the icon of
  a button is a click on the button.
- Targets come from a full snapshot (type 2: the whole page) and from the nodes a mutation adds (type 3,
  source 0; rrweb sends each added node on its own, with ``parentId`` and ``nextId``, and the subtree is put
  back together here).
- A full snapshot starts a **page**: rrweb numbers the nodes afresh, so an id from an earlier page names
  nothing any more.

A click on a target in the same batch is named at once. The click usually comes batches later, perhaps to
another agent API process, so the targets are kept in PostgreSQL beside the active session, a row per snapshot or
mutation (``active_session_click_targets``; see :mod:`agent_api.sessions`). An unmarked click on node N at time
t is tagged ``click`` when the latest row at or before t that has N or starts a page has N. Client timestamps
only order events of one session's own clock (DESIGN.md, invariant 5).

Not followed: later changes to a target's text (the label is its text when it entered the page), a child added
later into an existing target, and the state of a session before it ended (a late batch starts afresh).
A click the agent did mark keeps the agent's ``textContent`` as its label, as the issue asks.

Bad shapes are not errors here: this is replay data the agent API stores verbatim, and a snapshot Bard cannot
read only means its clicks stay untagged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import msgspec
from msgspec import Raw, Struct

from agent_api.tagging import collapse_whitespace

TARGET_TAGS = frozenset({"a", "button"})
TEXTLESS_TAGS = frozenset({"script", "style"})
ELEMENT_NODE = 2  # rrweb's NodeType
TEXT_NODE = 3
MAX_NODE_ID = 2**31 - 1  # PostgreSQL integer; rrweb counts from 1
MAX_TARGETS_PER_BATCH = 20_000
"""A page with more link and button elements than this has the rest untagged: the bound keeps one batch's
PostgreSQL work small whatever the page."""
_LABEL_SOURCE_CHARS = 4 * 256  # text gathered per target before collapsing; the label keeps 256


# gc=False and tuples: a decoded tree is acyclic and never changes, so the garbage collector need not track its
# nodes; a 1.4 MB snapshot (16 k nodes) decodes in ~3 ms instead of ~7.5 ms.
class SerializedNode(Struct, frozen=True, gc=False):
    """An rrweb-snapshot node: only what targets need; attributes stay raw until a label needs them."""

    type: int
    id: int
    tagName: str = ""
    textContent: str = ""
    childNodes: tuple[SerializedNode, ...] = ()
    attributes: Raw = Raw()


class _SnapshotData(Struct, frozen=True, gc=False):
    node: SerializedNode


class _Snapshot(Struct, frozen=True, gc=False):
    data: _SnapshotData


class _Add(Struct, frozen=True, gc=False):
    parentId: int
    node: SerializedNode
    nextId: int | None = None


class _MutationData(Struct, frozen=True, gc=False):
    adds: tuple[_Add, ...] = ()


class _Mutation(Struct, frozen=True, gc=False):
    data: _MutationData


class _LabelAttributes(Struct, frozen=True):
    aria_label: str | None = msgspec.field(default=None, name="aria-label")
    title: str | None = None


_snapshot_decoder = msgspec.json.Decoder(_Snapshot)
_mutation_decoder = msgspec.json.Decoder(_Mutation)
_attributes_decoder = msgspec.json.Decoder(_LabelAttributes)


class Target(NamedTuple):
    node_id: int
    label: str


def may_hold_targets(raw: bytes | Raw) -> bool:
    """A cheap look at the raw event before decoding it: does any element name look like a target's?"""
    data = bytes(raw) if isinstance(raw, Raw) else raw
    return b'"tagName"' in data and (b'"a"' in data or b'"button"' in data)


def snapshot_targets(raw: bytes | Raw, limit: int = MAX_TARGETS_PER_BATCH) -> list[Target]:
    """The targets of a full snapshot event, at most ``limit``; none when it is not shaped as rrweb makes it."""
    try:
        root = _snapshot_decoder.decode(raw).data.node
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return []
    return _targets([root], lambda node: node.childNodes, limit)


def mutation_targets(raw: bytes | Raw, limit: int = MAX_TARGETS_PER_BATCH) -> list[Target]:
    """The targets among the nodes a mutation event adds, at most ``limit``, each subtree put back together
    from ``parentId`` and ``nextId``; none when it is not shaped as rrweb makes it."""
    try:
        adds = _mutation_decoder.decode(raw).data.adds
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return []
    added = {add.node.id for add in adds}
    siblings: dict[int, list[_Add]] = {}
    roots: list[SerializedNode] = []
    for add in adds:
        if add.parentId in added:
            siblings.setdefault(add.parentId, []).append(add)
        else:
            roots.append(add.node)
    children = {parent: _in_sibling_order(group) for parent, group in siblings.items()}
    return _targets(roots, lambda node: children.get(node.id, []), limit)


def _in_sibling_order(adds: Sequence[_Add]) -> list[SerializedNode]:
    """Siblings added together, first to last: each names the sibling after it (``nextId``), the last one
    none or a node that was already there. rrweb emits them in no fixed order."""
    by_id = {add.node.id: add for add in adds}
    before = {add.nextId: add for add in adds if add.nextId in by_id}
    ordered: list[SerializedNode] = []
    seen: set[int] = set()
    for last in (add for add in adds if add.nextId not in by_id):
        run: list[SerializedNode] = []
        current: _Add | None = last
        while current is not None and current.node.id not in seen:
            seen.add(current.node.id)
            run.append(current.node)
            current = before.get(current.node.id)
        ordered.extend(reversed(run))
    # A cycle of nextIds (never from rrweb) leaves nodes out of every run; keep them, in arrival order.
    ordered.extend(add.node for add in adds if add.node.id not in seen)
    return ordered


def _targets(
    roots: Sequence[SerializedNode],
    children_of: Callable[[SerializedNode], Sequence[SerializedNode]],
    limit: int,
) -> list[Target]:
    """Find the targets, then walk each one's subtree for its text and elements. Outside targets (most of a
    page) a node costs only a look at its tag. A stack, not recursion: the input is untrusted and may be deep."""
    found: list[tuple[int, _Label]] = []
    stack = list(reversed(roots))
    while stack and len(found) < limit:
        node = stack.pop()
        if node.type == ELEMENT_NODE:
            if node.tagName in TARGET_TAGS or node.tagName.lower() in TARGET_TAGS:
                _walk_target(node, children_of, found)
                continue
            if node.tagName in TEXTLESS_TAGS:
                continue
        children = children_of(node)
        if children:
            stack.extend(reversed(children))
    return [Target(node_id, label.text()) for node_id, label in found[:limit]]


def _walk_target(
    target: SerializedNode,
    children_of: Callable[[SerializedNode], Sequence[SerializedNode]],
    found: list[tuple[int, _Label]],
) -> None:
    """The target and every element inside it, in document order; a target inside it is the innermost for its
    own elements, and its text counts for both (as the DOM's ``textContent`` does)."""
    # (node, the labels of the targets that enclose it, innermost last)
    stack: list[tuple[SerializedNode, tuple[_Label, ...]]] = [(target, ())]
    while stack:
        node, enclosing = stack.pop()
        if node.type == TEXT_NODE:
            for label in enclosing:
                label.add_text(node.textContent)
            continue
        if node.type == ELEMENT_NODE:
            tag = node.tagName.lower()
            if tag in TARGET_TAGS:
                enclosing = (*enclosing, _Label(node.attributes))
            if 0 < node.id <= MAX_NODE_ID:
                found.append((node.id, enclosing[-1]))
            if tag in TEXTLESS_TAGS:
                continue  # its children are no target's text, and not clickable
        stack.extend((child, enclosing) for child in reversed(children_of(node)))


class _Label:
    __slots__ = ("_attributes", "_parts", "_size", "_text")

    def __init__(self, attributes: Raw) -> None:
        self._attributes = attributes
        self._parts: list[str] = []
        self._size = 0
        self._text: str | None = None

    def add_text(self, text: str) -> None:
        if self._size < _LABEL_SOURCE_CHARS:
            self._parts.append(text)
            self._size += len(text)

    def text(self) -> str:
        """Worked out once: every element inside the target shares it."""
        if self._text is None:
            self._text = collapse_whitespace("".join(self._parts)) or self._from_attributes()
        return self._text

    def _from_attributes(self) -> str:
        if not self._attributes:
            return ""
        try:
            attributes = _attributes_decoder.decode(self._attributes)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return ""
        return collapse_whitespace(attributes.aria_label or attributes.title or "")
