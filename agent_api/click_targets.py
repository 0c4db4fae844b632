"""Clicks on links and buttons, and typing in text fields, named from the page's own DOM as rrweb recorded it.

The agent marks a click only when the clicked node itself is a ``BUTTON``: its check for ``ANCHOR`` matches no
element (an ``<a>`` is ``A``), and a click on the ``<span>`` or icon inside a button arrives unmarked too. It
marks no typing at all. rrweb names the clicked or typed-in node by the same id it gave that node when it
serialized the page, so Bard finds the targets itself:

- A **click target** is an ``<a>`` or ``<button>`` element. Its label is the text of its subtree as serialized
  (the DOM's ``textContent``, ``<script>`` and ``<style>`` left out), or its ``aria-label`` or ``title`` when it
  has no text. Every element inside a target stands for it (the innermost target wins), as a click on the icon of
  a button is a click on the button.
- A **text field** is a ``<textarea>``, or an ``<input>`` whose ``type`` is ``text``, ``email``, ``search``,
  ``tel``, ``url``, ``number`` or ``password``, or absent or unknown (a browser shows those as text). Not
  checkboxes, radios, buttons, hidden, file, range, color or date/time pickers, and not ``<select>``: choosing
  is no typing (rrweb records all of them as inputs too). Its label is the first non-empty of: the text of the
  ``<label for=ID>`` whose ``for`` is the field's ``id`` (the first label for it, and only for the first field
  with that id); the text of the ``<label>`` enclosing it (one without ``for``, and only for the first labelable
  element inside it, as the HTML spec says); its ``aria-label``; its ``name``; its ``placeholder``. A label's
  text leaves out every field's, ``<select>``'s, ``<script>``'s and ``<style>``'s subtree; whitespace is
  collapsed and the label capped as click labels are. A field's ``value`` attribute and what the user typed
  (rrweb's ``data.text``) are never read: the label is the page's text about the field, never its content.
- Targets come from a full snapshot (type 2: the whole page) and from the nodes a mutation adds (type 3,
  source 0; rrweb sends each added node on its own, with ``parentId`` and ``nextId``, and the subtree is put
  back together here). A ``<label for>`` names a field of the same event only.
- A full snapshot starts a **page**: rrweb numbers the nodes afresh, so an id from an earlier page names
  nothing any more.

A click on a target, or an input (type 3, source 5) in a text field, in the same batch is named at once. It
usually comes batches later, perhaps to another agent API process, so the targets are kept in PostgreSQL beside
the active session, a row per snapshot or mutation (``active_session_click_targets``: click targets in
``targets``, text fields in ``inputs``; see :mod:`agent_api.sessions`). An unmarked click on node N at time t is
tagged ``click`` when the latest row at or before t that has N among its click targets or starts a page has N;
an input on node N is tagged ``input`` by the same rule over the rows' text fields. Client timestamps only order
events of one session's own clock (DESIGN.md, invariant 5).

rrweb sends an input per keystroke. A run of them in one field, with no other conversion event of the batch
between, is one ``input`` event: the first, the moment the user started typing there (a funnel step takes the
earliest match). Typing in another field, a click or a new page ends the run; a run that spans two batches
counts once in each.

Not followed: later changes to a target's text or a field's attributes (the label is what it had when it entered
the page), a child added later into an existing target or label, a ``<label for>`` arriving in another event
than its field, ``aria-labelledby``, fields inside a link or button, and the state of a session before it ended
(a late batch starts afresh). A click the agent did mark keeps the agent's ``textContent`` as its label, as the
issue asks.

Bad shapes are not errors here: this is replay data the agent API stores verbatim, and a snapshot Bard cannot
read only means its clicks and inputs stay untagged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgspec
from msgspec import Raw, Struct

from agent_api.tagging import collapse_whitespace

TARGET_TAGS = frozenset({"a", "button"})
FIELD_TAGS = frozenset({"input", "textarea"})
LABEL_TAG = "label"
TEXTLESS_TAGS = frozenset({"script", "style"})
NOT_LABEL_TEXT_TAGS = frozenset({*FIELD_TAGS, "select", *TEXTLESS_TAGS})
"""Inside a ``<label>``, the subtrees of these are no part of its text: a field's own content (a ``<textarea>``'s
text is its value), a ``<select>``'s options, code."""
LABELABLE_TAGS = frozenset({"button", "input", "meter", "output", "progress", "select", "textarea"})
TEXT_INPUT_TYPES = frozenset({"", "text", "email", "search", "tel", "url", "number", "password"})
OTHER_INPUT_TYPES = frozenset({"checkbox", "radio", "submit", "button", "reset", "image", "hidden", "file", "range",
                               "color", "date", "datetime-local", "month", "week", "time"})
"""The ``<input>`` types that are no text field; any other type, known or not, is one (HTML shows an unknown
type as text)."""
_SPECIAL_TAGS = frozenset({*TARGET_TAGS, *FIELD_TAGS, LABEL_TAG, *TEXTLESS_TAGS})
ELEMENT_NODE = 2  # rrweb's NodeType
TEXT_NODE = 3
MAX_NODE_ID = 2**31 - 1  # PostgreSQL integer; rrweb counts from 1
MAX_TARGETS_PER_BATCH = 20_000
"""A page with more link, button and text field elements than this has the rest untagged: the bound keeps one
batch's PostgreSQL work small whatever the page."""
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


# Any: an attribute that is no string (rrweb writes some as numbers or true) names nothing, and refuses nothing.
# No ``value``: a field's content is never decoded, let alone kept.
class _FieldAttributes(Struct, frozen=True):
    id: Any = None
    type: Any = None
    aria_label: Any = msgspec.field(default=None, name="aria-label")
    name: Any = None
    placeholder: Any = None


class _LabelElementAttributes(Struct, frozen=True):
    for_: Any = msgspec.field(default=None, name="for")


_snapshot_decoder = msgspec.json.Decoder(_Snapshot)
_mutation_decoder = msgspec.json.Decoder(_Mutation)
_attributes_decoder = msgspec.json.Decoder(_LabelAttributes)
_field_attributes_decoder = msgspec.json.Decoder(_FieldAttributes)
_label_attributes_decoder = msgspec.json.Decoder(_LabelElementAttributes)


class Target(NamedTuple):
    node_id: int
    label: str


class PageTargets(NamedTuple):
    """What one snapshot or mutation brought: its click targets and its text fields, each ``{node id: label}``."""

    clicks: dict[int, str]
    inputs: dict[int, str]


NO_TARGETS = PageTargets({}, {})


def may_hold_targets(raw: bytes | Raw) -> bool:
    """A cheap look at the raw event before decoding it: does any element name look like a target's?"""
    data = bytes(raw) if isinstance(raw, Raw) else raw
    return b'"tagName"' in data and (
        b'"a"' in data or b'"button"' in data or b'"input"' in data or b'"textarea"' in data
    )


def read_snapshot(raw: bytes | Raw, limit: int = MAX_TARGETS_PER_BATCH) -> PageTargets:
    """The click targets and text fields of a full snapshot event, at most ``limit`` in all; none when it is not
    shaped as rrweb makes it."""
    try:
        root = _snapshot_decoder.decode(raw).data.node
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return NO_TARGETS
    return _PageReader(lambda node: node.childNodes, limit).read([root])


def read_mutation(raw: bytes | Raw, limit: int = MAX_TARGETS_PER_BATCH) -> PageTargets:
    """The click targets and text fields among the nodes a mutation event adds, at most ``limit`` in all, each
    subtree put back together from ``parentId`` and ``nextId``; none when it is not shaped as rrweb makes it."""
    try:
        adds = _mutation_decoder.decode(raw).data.adds
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return NO_TARGETS
    added = {add.node.id for add in adds}
    siblings: dict[int, list[_Add]] = {}
    roots: list[SerializedNode] = []
    for add in adds:
        if add.parentId in added:
            siblings.setdefault(add.parentId, []).append(add)
        else:
            roots.append(add.node)
    children = {parent: _in_sibling_order(group) for parent, group in siblings.items()}
    return _PageReader(lambda node: children.get(node.id, []), limit).read(roots)


def snapshot_targets(raw: bytes | Raw, limit: int = MAX_TARGETS_PER_BATCH) -> list[Target]:
    """The click targets of a full snapshot event (:func:`read_snapshot` without the fields)."""
    return [Target(node_id, label) for node_id, label in read_snapshot(raw, limit).clicks.items()]


def mutation_targets(raw: bytes | Raw, limit: int = MAX_TARGETS_PER_BATCH) -> list[Target]:
    """The click targets a mutation event adds (:func:`read_mutation` without the fields)."""
    return [Target(node_id, label) for node_id, label in read_mutation(raw, limit).clicks.items()]


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


def _attribute_text(value: Any) -> str:
    return collapse_whitespace(value) if type(value) is str else ""


class _Field:
    """A text field found in the tree, labelled once the whole tree (and so every ``<label for>``) is read."""

    __slots__ = ("attributes", "enclosing", "node_id")

    def __init__(self, node_id: int, attributes: _FieldAttributes, enclosing: _EnclosingLabel | None) -> None:
        self.node_id = node_id
        self.attributes = attributes
        self.enclosing = enclosing


class _EnclosingLabel:
    """A ``<label>`` being read: its text, and whether a labelable element inside it already took it."""

    __slots__ = ("for_id", "taken", "text")

    def __init__(self, for_id: str | None) -> None:
        self.for_id = for_id
        self.taken = for_id is not None  # a label with ``for`` labels that element, not what it encloses
        self.text = _Label(Raw())


class _PageReader:
    """Find the click targets and text fields, then label them. Outside targets and labels (most of a page) a
    node costs only a look at its tag. Stacks, not recursion: the input is untrusted and may be deep."""

    def __init__(self, children_of: Callable[[SerializedNode], Sequence[SerializedNode]], limit: int) -> None:
        self._children_of = children_of
        self._limit = limit
        self._clicks: list[tuple[int, _Label]] = []
        self._fields: list[_Field] = []
        self._labels_for: dict[str, _Label] = {}  # the first <label for=X> of each X

    def read(self, roots: Sequence[SerializedNode]) -> PageTargets:
        children_of, clicks, fields, limit = self._children_of, self._clicks, self._fields, self._limit
        stack = list(reversed(roots))
        while stack:
            node = stack.pop()
            if node.type == ELEMENT_NODE:
                tag = node.tagName
                if tag in _SPECIAL_TAGS or (tag := tag.lower()) in _SPECIAL_TAGS:
                    if tag in TARGET_TAGS:
                        self._walk_target(node, None)
                    elif tag in FIELD_TAGS:
                        self._add_field(node, tag, None)
                    elif tag == LABEL_TAG:
                        self._walk_label(node)
                    if len(clicks) + len(fields) >= limit:  # counted only where something was found
                        break
                    continue  # script and style: nothing to click or type in
            children = children_of(node)
            if children:
                stack.extend(reversed(children))
        return self._labelled()

    def _labelled(self) -> PageTargets:
        room = max(0, self._limit - len(self._clicks))
        clicks = {node_id: label.text() for node_id, label in self._clicks[: self._limit]}
        inputs: dict[int, str] = {}
        ids_seen: set[str] = set()
        for field in self._fields[:room]:
            attributes, label = field.attributes, ""
            html_id = attributes.id if type(attributes.id) is str and attributes.id else None
            if html_id is not None and html_id not in ids_seen:
                ids_seen.add(html_id)  # getElementById: a label for X labels the first field with id X
                labelled_by = self._labels_for.get(html_id)
                if labelled_by is not None:
                    label = labelled_by.text()
            if not label and field.enclosing is not None:
                label = field.enclosing.text.text()
            inputs[field.node_id] = (label or _attribute_text(attributes.aria_label)
                                     or _attribute_text(attributes.name) or _attribute_text(attributes.placeholder))
        return PageTargets(clicks, inputs)

    def _add_field(self, node: SerializedNode, tag: str, label: _EnclosingLabel | None) -> None:
        """A labelable ``<input>`` or ``<textarea>``: recorded if it is a text field; either way it takes the
        label it is in, when it is the first labelable element there."""
        attributes = _decode_field_attributes(node.attributes)
        input_type = attributes.type.strip().lower() if type(attributes.type) is str else ""
        if tag == "input" and input_type == "hidden":
            return  # no labelable element
        enclosing = None
        if label is not None and not label.taken:
            label.taken, enclosing = True, label
        is_text = tag == "textarea" or input_type in TEXT_INPUT_TYPES or input_type not in OTHER_INPUT_TYPES
        if is_text and 0 < node.id <= MAX_NODE_ID:
            self._fields.append(_Field(node.id, attributes, enclosing))

    def _walk_label(self, label_node: SerializedNode) -> None:
        """A ``<label>`` and its subtree: its text, the fields and targets in it (a link in a label is still a
        link: "I agree to the <a>terms</a>")."""
        # (node, the label it is in, whether its text counts for that label)
        stack: list[tuple[SerializedNode, _EnclosingLabel, bool]] = [(label_node, self._new_label(label_node), True)]
        first = True
        while stack:
            node, label, counts = stack.pop()
            if node.type == TEXT_NODE:
                if counts:
                    label.text.add_text(node.textContent)
                continue
            if node.type == ELEMENT_NODE and not first:
                tag = node.tagName.lower()
                if tag in TARGET_TAGS:
                    if tag == "button":
                        label.taken = True  # a button is labelable: it takes the label, not a field after it
                    self._walk_target(node, label.text if counts else None)
                    continue
                if tag in FIELD_TAGS:
                    self._add_field(node, tag, label)
                    continue  # its own text (a textarea's value) is no one's label
                if tag == LABEL_TAG:  # nested labels are invalid HTML: the inner one has its own text
                    label, counts = self._new_label(node), True
                elif tag in LABELABLE_TAGS:
                    label.taken = True
                if tag in NOT_LABEL_TEXT_TAGS:
                    counts = False
            first = False
            stack.extend((child, label, counts) for child in reversed(self._children_of(node)))

    def _new_label(self, node: SerializedNode) -> _EnclosingLabel:
        for_value = _decode_label_for(node.attributes)
        label = _EnclosingLabel(for_value)
        if for_value is not None and for_value not in self._labels_for:
            self._labels_for[for_value] = label.text
        return label

    def _walk_target(self, target: SerializedNode, outer_text: _Label | None) -> None:
        """The target and every element inside it, in document order; a target inside it is the innermost for
        its own elements, and its text counts for both (as the DOM's ``textContent`` does), and for the label
        around it (``outer_text``)."""
        found, children_of = self._clicks, self._children_of
        # (node, the labels of the targets that enclose it, innermost last)
        stack: list[tuple[SerializedNode, tuple[_Label, ...]]] = [(target, ())]
        while stack:
            node, enclosing = stack.pop()
            if node.type == TEXT_NODE:
                for label in enclosing:
                    label.add_text(node.textContent)
                if outer_text is not None:
                    outer_text.add_text(node.textContent)
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


def _decode_field_attributes(raw: Raw) -> _FieldAttributes:
    if raw:
        try:
            return _field_attributes_decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # attributes rrweb would not write: the field is still one, named by nothing of its own
    return _NO_FIELD_ATTRIBUTES


def _decode_label_for(raw: Raw) -> str | None:
    if not raw:
        return None
    try:
        value = _label_attributes_decoder.decode(raw).for_
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return value if type(value) is str else None


_NO_FIELD_ATTRIBUTES = _FieldAttributes()


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
