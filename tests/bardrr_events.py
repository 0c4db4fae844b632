"""rrweb events shaped like what the real ``bardrr`` 2.3.1 agent sends (rrweb 2.0.0-alpha.4 underneath).

Read from the agent's source (``npm pack bardrr@2.3.1``) and rrweb's recorder and console plugin:

- Meta (type 4): ``{"href", "width", "height"}``; FullSnapshot (type 2): ``{"node": <serialized DOM>,
  "initialOffset": {"left", "top"}}``; a session's first batch starts with both.
- Incremental (type 3): mouse moves are ``source`` 1 with ``positions``; a click is ``source`` 2, ``type`` 2
  with the node ``id`` and ``x``/``y``. The agent adds ``conversionData {"eventType": "click", "textContent"}``
  only when the clicked node's ``nodeName`` is ``BUTTON`` (it also checks ``ANCHOR``, which is no nodeName, so
  links — ``A`` — are never marked; Bard names them from the snapshot). ``textContent`` is the raw DOM text,
  whitespace and all.
- An input (type 3, ``source`` 5) is ``{"text", "isChecked", "id"}`` per change of a field's value (each
  keystroke), ``text`` the whole value so far (masked for passwords).
- Custom (type 5): ``{"tag", "payload": null}`` (``Agent.handleCustomEvent`` passes ``null``), with
  ``conversionData {"eventType": "custom", "customEventType": tag}``.
- Plugin (type 6) from the console plugin, recording level ``error`` only: ``{"plugin": "rrweb/console@1",
  "payload": {"level", "trace": [...], "payload": [<JSON-stringified args>]}}``.

Every function returns a fresh ``dict``; :func:`record_body` and :func:`record_headers` build what
``POST /record`` carries. Timestamps are milliseconds since the epoch, as ``Date.now()`` gives them.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

Event = dict[str, Any]

BUTTON_ID = 42
LINK_ID = 57
LINK_LABEL = "Cart"
ACCOUNT_LINK_ID = 60
ACCOUNT_ICON_PATH_ID = 62
ACCOUNT_LABEL = "Your account"
"""An icon-only link: ``<a aria-label="Your account"><svg><path/></svg></a>``; a click lands on the path."""
BUTTON_TEXT = "\n      Add to   cart\n    "
"""What ``textContent`` gives for ``<button>\\n      Add to   cart\\n    </button>``."""
BUTTON_LABEL = "Add to cart"
"""The label Bard derives from it: whitespace collapsed and trimmed."""
CUSTOM_TAG = "checkout-started"
ERROR_MESSAGE = "TypeError: cart is undefined"


def now_ms() -> int:
    return int(time.time() * 1000)


def meta(ts: int, href: str = "https://shop.example.com/products/42") -> Event:
    return {"type": 4, "data": {"href": href, "width": 1440, "height": 900}, "timestamp": ts}


def _element(node_id: int, tag: str, attributes: dict[str, str], children: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": 2, "tagName": tag, "attributes": attributes, "childNodes": children, "id": node_id}


def _text(node_id: int, text: str) -> dict[str, Any]:
    return {"type": 3, "textContent": text, "id": node_id}


def full_snapshot(ts: int, products: int = 60) -> Event:
    """A serialized product-list page; with the default 60 products about 50 KB of JSON."""
    next_id = 100

    def new_id() -> int:
        nonlocal next_id
        next_id += 1
        return next_id

    cards = []
    for n in range(products):
        cards.append(
            _element(new_id(), "li", {"class": "product-card", "data-sku": f"SKU-{n:05d}"}, [
                _element(new_id(), "img", {"src": f"https://cdn.example.com/img/{n}.webp", "alt": f"Product {n}"}, []),
                _element(new_id(), "h3", {"class": "product-title"}, [_text(new_id(), f"Ceramic mug no. {n}")]),
                _element(new_id(), "p", {"class": "product-description"}, [
                    _text(new_id(), "Glazed stoneware, dishwasher safe, holds 350 ml. Ships in two days.")
                ]),
                _element(new_id(), "span", {"class": "price"}, [_text(new_id(), f"${12 + n % 30}.00")]),
            ])
        )
    body = _element(5, "body", {}, [
        _element(6, "header", {"class": "site-header"}, [
            _element(LINK_ID, "a", {"href": "/cart", "class": "nav-link"}, [_text(58, LINK_LABEL)]),
            _element(ACCOUNT_LINK_ID, "a", {"href": "/account", "aria-label": ACCOUNT_LABEL}, [
                _element(61, "svg", {"viewBox": "0 0 24 24"}, [
                    _element(ACCOUNT_ICON_PATH_ID, "path", {"d": "M0 0h24v24"}, []),
                ]),
            ]),
            _element(BUTTON_ID, "button", {"class": "btn btn-primary", "type": "button"}, [_text(43, BUTTON_TEXT)]),
        ]),
        _element(7, "ul", {"class": "product-list"}, cards),
    ])
    head = _element(3, "head", {}, [
        _element(4, "title", {}, [_text(8, "Shop — Products")]),
        _element(9, "style", {"_cssText": ".product-card{display:flex;gap:8px}" * 20}, []),
    ])
    document = {
        "type": 0,
        "childNodes": [
            {"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2},
            _element(1, "html", {"lang": "en"}, [head, body]),
        ],
        "compatMode": "CSS1Compat",
        "id": 0,
    }
    return {"type": 2, "data": {"node": document, "initialOffset": {"left": 0, "top": 0}}, "timestamp": ts}


def mouse_move(ts: int, x: int = 300, y: int = 200) -> Event:
    positions = [{"x": x + i * 3, "y": y + i * 2, "id": 7, "timeOffset": -50 * (3 - i)} for i in range(4)]
    return {"type": 3, "data": {"source": 1, "positions": positions}, "timestamp": ts}


def scroll(ts: int, y: int = 480) -> Event:
    return {"type": 3, "data": {"source": 3, "id": 1, "x": 0, "y": y}, "timestamp": ts}


def button_click(ts: int, text: str = BUTTON_TEXT) -> Event:
    """A click on a ``<button>``: the agent tags it."""
    return {
        "type": 3,
        "data": {"source": 2, "type": 2, "id": BUTTON_ID, "x": 812, "y": 34},
        "timestamp": ts,
        "conversionData": {"eventType": "click", "textContent": text},
    }


def link_click(ts: int, node_id: int = LINK_ID) -> Event:
    """A click on an ``<a>`` (or, with ``node_id``, on any node): the agent does not mark it (it looks for
    ``ANCHOR``)."""
    return {"type": 3, "data": {"source": 2, "type": 2, "id": node_id, "x": 700, "y": 34}, "timestamp": ts}


def mutation_adding_link(ts: int, link_id: int, text: str, parent_id: int = 6) -> Event:
    """A mutation (incremental, source 0) adding ``<a href="/sale"><b>{text}</b>!</a>`` under ``parent_id``.
    rrweb sends each added node on its own (``skipChild``), children naming their parent and next sibling,
    and not in document order: here the ``!`` comes before the ``<b>``."""
    return {
        "type": 3,
        "data": {
            "source": 0, "texts": [], "attributes": [], "removes": [],
            "adds": [
                {"parentId": parent_id, "nextId": None,
                 "node": {"type": 2, "tagName": "a", "attributes": {"href": "/sale"}, "childNodes": [], "id": link_id}},
                {"parentId": link_id, "nextId": None, "node": {"type": 3, "textContent": "!", "id": link_id + 3}},
                {"parentId": link_id, "nextId": link_id + 3,
                 "node": {"type": 2, "tagName": "b", "attributes": {}, "childNodes": [], "id": link_id + 1}},
                {"parentId": link_id + 1, "nextId": None, "node": {"type": 3, "textContent": text, "id": link_id + 2}},
            ],
        },
        "timestamp": ts,
    }


EMAIL_ID = 201
EMAIL_LABEL = "Email address"
PASSWORD_ID = 204
PASSWORD_LABEL = "Password"
NOTES_ID = 206
NOTES_LABEL = "Delivery notes"
NEWSLETTER_ID = 208
TYPED_SECRET = "ada@secret.example"
"""What the user types in the tests: it must appear in no label."""


def signup_form(first_id: int = 200) -> dict[str, Any]:
    """``<form>``: a ``<label for>`` email field (its value attribute already holding what was typed, as rrweb
    serializes a filled field), a password field in an enclosing label, a textarea named by its aria-label (its
    text is its content) and a checkbox (no text field). Ids from ``first_id``: 201 email, 204 password, 206
    notes, 208 the checkbox, with the default."""
    i = first_id
    return _element(i, "form", {"action": "/signup"}, [
        _element(i + 9, "label", {"for": "email"}, [_text(i + 10, EMAIL_LABEL)]),
        _element(i + 1, "input", {"id": "email", "type": "email", "name": "email", "value": TYPED_SECRET}, []),
        _element(i + 2, "label", {}, [
            _element(i + 3, "span", {}, [_text(i + 11, f" {PASSWORD_LABEL} ")]),
            _element(i + 4, "input", {"type": "password", "name": "pw", "value": "*********"}, []),
        ]),
        _element(i + 6, "textarea", {"aria-label": NOTES_LABEL, "name": "notes", "value": TYPED_SECRET},
                 [_text(i + 7, TYPED_SECRET)]),
        _element(i + 12, "label", {}, [
            _element(i + 8, "input", {"type": "checkbox", "name": "newsletter"}, []), _text(i + 13, "Newsletter"),
        ]),
    ])


def signup_snapshot(ts: int) -> Event:
    """A serialized signup page: the header of :func:`full_snapshot` and :func:`signup_form`."""
    body = _element(5, "body", {}, [
        _element(6, "header", {}, [_element(LINK_ID, "a", {"href": "/cart"}, [_text(58, LINK_LABEL)])]),
        signup_form(),
    ])
    document = {"type": 0, "childNodes": [_element(1, "html", {}, [body])], "id": 0}
    return {"type": 2, "data": {"node": document, "initialOffset": {"left": 0, "top": 0}}, "timestamp": ts}


def mutation_adding_form(ts: int, first_id: int = 200, parent_id: int = 6) -> Event:
    """A mutation adding :func:`signup_form` under ``parent_id``, each node on its own as rrweb sends them
    (children naming their parent), last sibling first."""
    adds: list[dict[str, Any]] = []

    def add(node: dict[str, Any], parent: int, next_id: int | None) -> None:
        children = node.get("childNodes", [])
        adds.append({"parentId": parent, "nextId": next_id, "node": {**node, "childNodes": []}})
        for index in reversed(range(len(children))):
            add(children[index], node["id"], children[index + 1]["id"] if index + 1 < len(children) else None)

    add(signup_form(first_id), parent_id, None)
    return {"type": 3, "data": {"source": 0, "texts": [], "attributes": [], "removes": [], "adds": adds},
            "timestamp": ts}


def typing(ts: int, node_id: int, text: str = TYPED_SECRET, every_ms: int = 120) -> list[Event]:
    """Typing ``text`` into node ``node_id``: rrweb's input event (incremental, source 5) per keystroke, each
    carrying the field's whole value so far."""
    return [{"type": 3, "data": {"source": 5, "text": text[: n + 1], "isChecked": False, "id": node_id},
             "timestamp": ts + n * every_ms} for n in range(len(text))]


def custom_event(ts: int, tag: str = CUSTOM_TAG) -> Event:
    return {
        "type": 5,
        "data": {"tag": tag, "payload": None},
        "timestamp": ts,
        "conversionData": {"eventType": "custom", "customEventType": tag},
    }


def console_error(ts: int, message: str = ERROR_MESSAGE, level: str = "error") -> Event:
    return {
        "type": 6,
        "data": {
            "plugin": "rrweb/console@1",
            "payload": {
                "level": level,
                "trace": ["addToCart (https://shop.example.com/static/app.js:120:15)",
                          "HTMLButtonElement.onclick (https://shop.example.com/products/42:1:1)"],
                "payload": [json.dumps(message)],
            },
        },
        "timestamp": ts,
    }


def first_batch(start: int | None = None) -> list[Event]:
    """A session's first batch of ten, as the agent sends it: Meta, FullSnapshot, moves, the two clicks, a
    custom event and a console error."""
    t = now_ms() if start is None else start
    return [
        meta(t),
        full_snapshot(t + 1),
        mouse_move(t + 120),
        mouse_move(t + 260, 340, 220),
        button_click(t + 400),
        scroll(t + 900),
        link_click(t + 1500),
        custom_event(t + 1600),
        console_error(t + 1700),
        mouse_move(t + 2000, 500, 300),
    ]


def later_batch(start: int | None = None, size: int = 10) -> list[Event]:
    """A following batch: mostly moves and scrolls, no snapshot."""
    t = now_ms() if start is None else start
    return [mouse_move(t + 50 * i, 100 + i, 100 + i) if i % 3 else scroll(t + 50 * i, 100 * i) for i in range(size)]


def batch_after_idle_timeout(start: int | None = None) -> list[Event]:
    """The first batch of the new sessionId the agent starts after MAX_IDLE_TIME without activity: its stasher
    held the re-taken Meta and FullSnapshot until the next real event, then stamped them one millisecond
    before that event and sent them first."""
    t = now_ms() if start is None else start
    return [meta(t - 1), full_snapshot(t - 1), button_click(t)] + later_batch(t + 100, 7)


def record_body(events: list[Event], session_id: str | None = None, max_idle_time: Any = 60_000) -> dict[str, Any]:
    """The JSON body of ``POST /record``, exactly as the agent's ``Sender.send`` builds it."""
    return {
        "sessionId": session_id or str(uuid.uuid4()),
        "events": events,
        "MAX_IDLE_TIME": max_idle_time,
    }


def record_headers(token: str | None, app_name: str = "shop") -> dict[str, str]:
    """The headers of ``POST /record`` with the agent's casing; ``token=None`` is the race the agent loses
    when a batch leaves before ``/authenticate`` answered: ``bearer undefined``."""
    return {
        "Content-Type": "application/json",
        "authorization": f"bearer {token if token is not None else 'undefined'}",
        "appName": app_name,
    }
