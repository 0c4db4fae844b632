"""The demo shop's pages as rrweb serializes them: the DOM of ``demo/`` (``index.html`` and ``src/main.js``), drawn
in Python from the same catalogue (:data:`bard.demo_shop.CATALOGUE`), so that ``bard demo`` records full snapshots
of the pages a person sees in the demo shop and the player rebuilds them with the shop's own style sheet.

rrweb's serialized node (rrweb-snapshot 2.0.0-alpha.4): a document ``{"type": 0, "childNodes", "compatMode",
"id"}``, a doctype ``{"type": 1, "name", "publicId", "systemId", "id"}``, an element ``{"type": 2, "tagName",
"attributes", "childNodes", "id"}`` and a text ``{"type": 3, "textContent", "id"}``; a style sheet that the page
links is inlined as the ``_cssText`` attribute of its ``<link>``. Ids count from 1 in document order, as the
recorder's mirror gives them to a fresh page.

Each :class:`Page` also knows, for what a visitor can click, the node id and a point inside it (in CSS pixels of a
1280-pixel-wide window: the layout of ``demo/src/style.css``), so clicks name real nodes of the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bard.demo_shop import CATALOGUE, SOURCES, Product

STYLE_SHEET = SOURCES / "src" / "style.css"
LAYOUT_WIDTH = 1280


@dataclass
class Target:
    """Something to click: its node id, its text (what the agent sends as ``textContent``), a point inside it."""

    node_id: int
    text: str
    x: int
    y: int
    tag: str


@dataclass
class Page:
    path: str
    title: str
    node: dict[str, Any]
    targets: dict[str, Target] = field(default_factory=dict)
    inputs: list[int] = field(default_factory=list)
    cart_count_text_id: int = 0
    height: int = 800


@dataclass
class _Element:
    tag: str
    attributes: dict[str, str]
    children: list[_Element | str]
    target: str = ""  # a name under which the page keeps this element as a Target
    at: tuple[int, int] = (0, 0)


def el(tag: str, attributes: dict[str, str] | None = None, *children: _Element | str, target: str = "",
       at: tuple[int, int] = (0, 0)) -> _Element:
    return _Element(tag, attributes or {}, list(children), target, at)


def _text_of(element: _Element | str) -> str:
    if isinstance(element, str):
        return element
    return "".join(_text_of(child) for child in element.children)


def _price(cents: int) -> str:
    return f"${cents / 100:.2f}"


def _style_sheet() -> str:
    try:
        return STYLE_SHEET.read_text()
    except OSError:  # an installed Bard without the demo's sources: the replay is unstyled
        return ""


def _products(cart: int) -> list[_Element]:
    cards = []
    for n, product in enumerate(CATALOGUE):
        column, row = n % 4, n // 4
        x, y = 250 + column * 183, 180 + row * 240
        cards.append(el("li", {"class": "card"},
                        el("a", {"class": "card-link", "href": f"/products/{product.id}"},
                           el("div", {"class": "swatch", "style": f"background:{product.color}"}),
                           el("h2", {}, product.name), target=f"product:{product.id}", at=(x, y)),
                        el("p", {"class": "price"}, _price(product.price)),
                        el("button", {"type": "button", "class": "add"}, "Add to cart",
                           target=f"add:{product.id}", at=(x - 20, y + 130))))
    return [el("h1", {}, "Products"), el("ul", {"class": "grid"}, *cards)]


def _product(product: Product) -> list[_Element]:
    return [
        el("a", {"class": "back", "href": "/"}, "All products", target="back", at=(240, 89)),
        el("article", {"class": "product"},
           el("div", {"class": "swatch large", "style": f"background:{product.color}"}, target="swatch",
              at=(350, 250)),
           el("div", {},
              el("h1", {}, product.name),
              el("p", {"class": "description"}, product.description),
              el("p", {"class": "price"}, _price(product.price)),
              el("div", {"class": "actions"},
                 el("button", {"type": "button", "class": "add"}, "Add to cart", target="add", at=(605, 309)),
                 el("button", {"type": "button", "class": "secondary"}, "Save to wishlist", target="wishlist",
                    at=(758, 309)),
                 el("button", {"type": "button", "class": "secondary"}, "Compare", target="compare", at=(903, 309))),
              el("p", {"class": "status", "role": "status"}))),
    ]


def _cart(lines: list[tuple[Product, int]]) -> list[_Element]:
    if not lines:
        return [el("h1", {}, "Cart"), el("p", {}, "Your cart is empty. "),
                el("a", {"href": "/"}, "Browse products", target="browse", at=(240, 170))]
    total = sum(p.price * q for p, q in lines)
    return [
        el("h1", {}, "Cart"),
        el("ul", {"class": "lines"}, *[el("li", {}, el("span", {}, f"{p.name} × {q}"),
                                          el("span", {}, _price(p.price * q))) for p, q in lines]),
        el("p", {"class": "total"}, f"Total {_price(total)}"),
        el("button", {"type": "button", "class": "primary"}, "Checkout", target="checkout",
           at=(240, 190 + 41 * len(lines))),
    ]


def _checkout() -> list[_Element]:
    def field_(label: str, name: str, kind: str, y: int) -> _Element:
        return el("label", {}, label, el("input", {"name": name, "type": kind, "required": "", "autocomplete": "off",
                                                   "value": ""}, target=f"input:{name}", at=(400, y)))
    return [el("h1", {}, "Checkout"),
            el("form", {"class": "checkout"}, field_("Name", "name", "text", 190),
               field_("Email", "email", "email", 262), field_("Address", "address", "text", 334),
               el("button", {"type": "submit", "class": "primary"}, "Place order", target="place", at=(260, 392)))]


def _thanks() -> list[_Element]:
    return [el("h1", {}, "Thank you!"), el("p", {}, "Your order is placed (not really: this is a demo)."),
            el("a", {"href": "/"}, "Keep shopping", target="keep", at=(250, 190))]


def page(path: str, *, cart: int = 0, lines: list[tuple[Product, int]] | None = None, brand: str = "Bard Coffee Co.",
         css: str | None = None) -> Page:
    """The page of the shop at ``path`` (``/``, ``/products/<id>``, ``/cart``, ``/checkout``, ``/thanks``) with
    ``cart`` items in the cart, serialized as rrweb's recorder takes it when the agent starts."""
    if path == "/":
        title, content = "Products", _products(cart)
    elif path.startswith("/products/"):
        product = next(p for p in CATALOGUE if p.id == path.removeprefix("/products/"))
        title, content = product.name, _product(product)
    elif path == "/cart":
        title, content = "Cart", _cart(lines or [])
    elif path == "/checkout":
        title, content = "Checkout", _checkout()
    elif path == "/thanks":
        title, content = "Thank you", _thanks()
    else:
        raise ValueError(f"no page {path!r} in the demo shop")
    sheet = _style_sheet() if css is None else css
    head = el("head", {},
              el("meta", {"charset": "utf-8"}),
              el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
              el("title", {}, "Bard demo shop"),
              el("link", {"rel": "stylesheet", "crossorigin": "", "href": "/assets/index.css", "_cssText": sheet}))
    body = el("body", {},
              el("header", {"class": "top"},
                 el("a", {"class": "brand", "href": "/"}, brand, target="brand", at=(119, 27)),
                 el("nav", {},
                    el("a", {"class": "nav-link", "href": "/"}, "Products", target="nav:products", at=(1112, 27)),
                    el("a", {"class": "nav-link", "href": "/cart"}, "Cart", target="nav:cart", at=(1184, 27)),
                    el("span", {"class": "cart-count", "id": "cart-count", "aria-label": "items in the cart"},
                       str(cart)))),
              el("main", {"id": "app"}, *content),
              el("footer", {"class": "bottom"},
                 "A demo shop recorded by the bardrr agent into Bard. Nothing here is for sale."))
    result = Page(path, title, {}, height=max(800, 300 + 240 * ((len(CATALOGUE) + 3) // 4)) if path == "/" else 800)
    next_id = 0

    def new_id() -> int:
        nonlocal next_id
        next_id += 1
        return next_id

    def serialize(node: _Element | str, parent: _Element | None) -> dict[str, Any]:
        if isinstance(node, str):
            node_id = new_id()
            if parent is not None and parent.attributes.get("id") == "cart-count":
                result.cart_count_text_id = node_id
            return {"type": 3, "textContent": node, "id": node_id}
        node_id = new_id()
        if node.target:
            result.targets[node.target] = Target(node_id, _text_of(node), *node.at, node.tag)
        if node.tag == "input":
            result.inputs.append(node_id)
        return {"type": 2, "tagName": node.tag, "attributes": dict(node.attributes),
                "childNodes": [serialize(child, node) for child in node.children], "id": node_id}

    document_id = new_id()
    doctype = {"type": 1, "name": "html", "publicId": "", "systemId": "", "id": new_id()}
    html = serialize(el("html", {"lang": "en"}, head, body), None)
    result.node = {"type": 0, "childNodes": [doctype, html], "compatMode": "CSS1Compat", "id": document_id}
    return result


def body_id(page_: Page) -> int:
    """The id of ``<body>``: rrweb names it in mouse moves over the page."""
    html = page_.node["childNodes"][1]
    return int(html["childNodes"][1]["id"])
