"""``bard demo``: realistic sessions recorded through the agent API over HTTP, as browsers running bardrr send them,
then two example funnels through the replayer API.

Every session is a visit to the demo shop (:mod:`bard.demo_pages`: the shop's real pages, serialized as rrweb does)
by a made-up visitor: a Meta event and a full snapshot at every page load, mouse moves, scrolls, clicks on links
(which the agent leaves unmarked) and on buttons (marked with ``conversionData`` as the agent does), cart updates
(DOM mutations), a checkout form (masked inputs, as the agent's ``maskAllInputs`` gives them), the custom event
``order-placed``, console errors through the console plugin, pauses of a few seconds to a minute, and the behaviour
signals a real visitor produces: rage clicks on a button that does nothing, dead clicks, error clicks. Sessions
belong to several apps and browsers (their ``User-Agent``), start over the past days and last from seconds to
many minutes. A seed makes the visits repeatable; session ids are always new, so a re-run adds sessions.

How they are sent is how the agent sends: ``GET /authenticate``, then ``POST /record`` in batches of 10 with its
headers (``Content-Type``, ``authorization: bearer``, ``appName``). Each body says ``MAX_IDLE_TIME`` 1000 ms, as an
app that chose a short idle timeout would: the sessions then end on the server through the session ender's
ordinary path (no batch for ``MAX_IDLE_TIME`` plus ``BARD_ENDER_GRACE_SECONDS``, by the server's clock) a few
seconds after the last batch, instead of a minute, and ``bard demo`` waits for them to show in the session list
(``--wait``), nothing written to any database behind Bard's back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bard.demo_pages import Page, Target, body_id, page
from bard.demo_shop import CATALOGUE, Product

Event = dict[str, Any]

BATCH_SIZE = 10
RECORD_IDLE_MS = 1000
CUSTOM_EVENT = "order-placed"
WISHLIST_ERROR = "Wishlist service unavailable: could not save {id}"
DAY_MS = 86_400_000
DAYS = 14
CONCURRENCY = 4


@dataclass(frozen=True)
class App:
    name: str
    origin: str
    brand: str
    share: float


APPS = (
    App("Demo shop", "https://shop.bard-demo.example", "Bard Coffee Co.", 0.6),
    App("Coffee club", "https://club.bard-demo.example", "Bard Coffee Club", 0.25),
    App("Wholesale portal", "https://wholesale.bard-demo.example", "Bard Coffee Wholesale", 0.15),
)


@dataclass(frozen=True)
class Client:
    user_agent: str
    width: int
    height: int
    share: float


CLIENTS = (
    Client("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36", 1536, 864, 0.3),
    Client("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/18.1 Safari/605.1.15", 1440, 900, 0.15),
    Client("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 1920, 1080, 0.1),
    Client("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", 1366, 768, 0.1),
    Client("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/18.1 Mobile/15E148 Safari/604.1", 390, 844, 0.2),
    Client("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Mobile Safari/537.36", 412, 915, 0.15),
)


# --- rrweb events, as the agent (rrweb 2.0.0-alpha.4 and its console plugin) records them ------------------------

def meta(ts: int, href: str, width: int, height: int) -> Event:
    return {"type": 4, "data": {"href": href, "width": width, "height": height}, "timestamp": ts}


def full_snapshot(ts: int, node: dict[str, Any]) -> Event:
    return {"type": 2, "data": {"node": node, "initialOffset": {"left": 0, "top": 0}}, "timestamp": ts}


def mouse_move(ts: int, positions: list[tuple[int, int, int]], node_id: int) -> Event:
    """``positions``: (x, y, ms before ``ts``), oldest first, as rrweb batches them."""
    return {"type": 3, "data": {"source": 1, "positions": [
        {"x": x, "y": y, "id": node_id, "timeOffset": -ago} for x, y, ago in positions]}, "timestamp": ts}


def mouse_interaction(ts: int, kind: int, node_id: int, x: int, y: int) -> Event:
    """``kind``: 0 mouseup, 1 mousedown, 2 click."""
    return {"type": 3, "data": {"source": 2, "type": kind, "id": node_id, "x": x, "y": y}, "timestamp": ts}


def scroll(ts: int, node_id: int, y: int) -> Event:
    return {"type": 3, "data": {"source": 3, "id": node_id, "x": 0, "y": y}, "timestamp": ts}


def masked_input(ts: int, node_id: int, length: int) -> Event:
    return {"type": 3, "data": {"source": 5, "text": "*" * length, "isChecked": False, "id": node_id},
            "timestamp": ts}


def text_mutation(ts: int, node_id: int, value: str) -> Event:
    return {"type": 3, "data": {"source": 0, "texts": [{"id": node_id, "value": value}], "attributes": [],
                                "removes": [], "adds": []}, "timestamp": ts}


def custom_event(ts: int, tag: str) -> Event:
    return {"type": 5, "data": {"tag": tag, "payload": None}, "timestamp": ts,
            "conversionData": {"eventType": "custom", "customEventType": tag}}


def console_error(ts: int, message: str, origin: str) -> Event:
    return {"type": 6, "data": {"plugin": "rrweb/console@1", "payload": {
        "level": "error",
        "trace": [f"HTMLButtonElement.onclick ({origin}/assets/index.js:1:4711)"],
        "payload": [json.dumps(message)],
    }}, "timestamp": ts}


def record_headers(token: str, app_name: str) -> dict[str, str]:
    """What the agent's ``Sender.send`` sets (a browser adds its ``User-Agent`` and ``Origin``)."""
    return {"Content-Type": "application/json", "authorization": f"bearer {token}", "appName": app_name}


def batches(events: list[Event]) -> list[list[Event]]:
    return [events[i:i + BATCH_SIZE] for i in range(0, len(events), BATCH_SIZE)]


# --- visits ---------------------------------------------------------------------------------------------------

@dataclass
class Visit:
    """One made-up session: what a visitor did, as the events the agent would send."""

    session_id: str
    app: App
    client: Client
    events: list[Event] = field(default_factory=list)
    placed_order: bool = False

    @property
    def started_at(self) -> int:
        return int(self.events[0]["timestamp"])


class _Visitor:
    def __init__(self, rng: random.Random, app: App, client: Client, start: int) -> None:
        self.rng, self.app, self.client = rng, app, client
        self.t = start
        self.events: list[Event] = []
        self.cart: dict[str, int] = {}
        self.page: Page | None = None
        self.x, self.y = client.width // 2, client.height // 2
        self.scale = min(1.0, client.width / 1280)
        self.placed_order = False

    # time
    def pause(self, low: int, high: int) -> None:
        self.t += self.rng.randint(low, high)

    def think(self) -> None:
        """A person's pace between actions; now and then they leave the tab alone for a while (an idle gap)."""
        if self.rng.random() < 0.15:
            self.pause(8_000, 90_000)
        else:
            self.pause(1_200, 4_500)

    # what the agent records
    def load(self, path: str) -> None:
        lines = [(p, q) for p in CATALOGUE for pid, q in self.cart.items() if p.id == pid]
        self.page = page(path, cart=sum(self.cart.values()), lines=lines, brand=self.app.brand)
        self.events.append(meta(self.t, self.app.origin + path, self.client.width, self.client.height))
        self.events.append(full_snapshot(self.t + self.rng.randint(1, 5), self.page.node))
        self.pause(300, 900)

    def move_to(self, x: int, y: int) -> None:
        assert self.page is not None
        steps = self.rng.randint(2, 4)
        for _ in range(steps):
            positions = []
            for k in range(3):
                self.x += (x - self.x) // 2 + self.rng.randint(-6, 6)
                self.y += (y - self.y) // 2 + self.rng.randint(-6, 6)
                positions.append((max(0, self.x), max(0, self.y), 100 * (3 - k)))
            self.pause(120, 350)
            self.events.append(mouse_move(self.t, positions, body_id(self.page)))
        self.x, self.y = x, y

    def scroll_by(self) -> None:
        assert self.page is not None
        bottom = max(240, self.page.height - self.client.height + 200)
        for y in sorted(self.rng.sample(range(80, bottom, 40), 2)):
            self.pause(150, 500)
            self.events.append(scroll(self.t, self.page.node["id"], y))

    def point(self, target: Target) -> tuple[int, int]:
        return int(target.x * self.scale) + self.rng.randint(-4, 4), target.y + self.rng.randint(-3, 3)

    def click(self, name: str, *, times: int = 1, spread: tuple[int, int] = (160, 260)) -> Target:
        assert self.page is not None
        target = self.page.targets[name]
        x, y = self.point(target)
        self.move_to(x, y)
        for n in range(times):
            if n:
                self.pause(*spread)
            px, py = x + self.rng.randint(-3, 3), y + self.rng.randint(-3, 3)
            self.events.append(mouse_interaction(self.t, 1, target.node_id, px, py))
            self.pause(40, 110)
            self.events.append(mouse_interaction(self.t, 0, target.node_id, px, py))
            event = mouse_interaction(self.t, 2, target.node_id, px, py)
            if target.tag == "button":  # the agent marks buttons, never links (it looks for "ANCHOR")
                event["conversionData"] = {"eventType": "click", "textContent": target.text}
            self.events.append(event)
        return target

    def follow(self, name: str, path: str) -> None:
        self.click(name)
        self.pause(120, 450)
        self.load(path)

    def add_to_cart(self, name: str, product: Product) -> None:
        assert self.page is not None
        self.click(name)
        self.cart[product.id] = self.cart.get(product.id, 0) + 1
        self.pause(2, 30)
        self.events.append(text_mutation(self.t, self.page.cart_count_text_id, str(sum(self.cart.values()))))

    # the journey
    def visit(self) -> None:
        rng = self.rng
        path = "/" if rng.random() < 0.65 else f"/products/{rng.choice(CATALOGUE).id}"
        self.load(path)
        for _ in range(rng.choice((rng.randint(2, 8), rng.randint(6, 30)))):
            assert self.page is not None
            self.think()
            if rng.random() < 0.06 and len(self.events) > 6:
                return  # gone
            if self.page.path == "/":
                self.on_products()
            elif self.page.path.startswith("/products/"):
                self.on_product()
            elif self.page.path == "/cart":
                if not self.on_cart():
                    return
            elif self.page.path == "/checkout":
                self.on_checkout()
                return
            else:
                self.follow("keep", "/")

    def on_products(self) -> None:
        rng, product = self.rng, self.rng.choice(CATALOGUE)
        roll = rng.random()
        if roll < 0.25:
            self.scroll_by()
        elif roll < 0.65:
            self.follow(f"product:{product.id}", f"/products/{product.id}")
        elif roll < 0.85 and not (self.cart and rng.random() < 0.5):
            self.add_to_cart(f"add:{product.id}", product)
        else:
            self.follow("nav:cart", "/cart")

    def on_product(self) -> None:
        assert self.page is not None
        rng = self.rng
        product = next(p for p in CATALOGUE if self.page.path.endswith(p.id))
        roll = rng.random()
        if roll < 0.35:
            self.add_to_cart("add", product)
        elif roll < 0.45:
            self.click("wishlist")  # logs a console error: an error click (and, nothing changing, a dead one)
            self.pause(3, 40)
            self.events.append(console_error(self.t, WISHLIST_ERROR.format(id=product.id), self.app.origin))
        elif roll < 0.55:
            if rng.random() < 0.5:  # "Compare" does nothing: clicked again and again, a rage click
                self.click("compare", times=rng.randint(3, 5))
            else:
                self.click("compare")
        elif roll < 0.6:
            self.click("swatch")  # a picture that is no link: a dead click
        elif roll < 0.8 or (self.cart and rng.random() < 0.4):
            self.follow("nav:cart", "/cart")
        else:
            self.follow("back", "/")

    def on_cart(self) -> bool:
        if not self.cart:
            self.follow("browse", "/")
            return True
        if self.rng.random() < 0.8:
            self.follow("checkout", "/checkout")
            return True
        return False  # looked at the total, left

    def on_checkout(self) -> None:
        assert self.page is not None
        for name, length in (("name", 12), ("email", 18), ("address", 24)):
            target = self.click(f"input:{name}")
            for n in range(1, length + 1, 3):
                self.pause(90, 300)
                self.events.append(masked_input(self.t, target.node_id, n))
            self.pause(400, 1500)
        if self.rng.random() < 0.25:
            return  # filled the form, never placed the order
        self.click("place")
        self.pause(2, 20)
        self.events.append(custom_event(self.t, CUSTOM_EVENT))
        self.placed_order = True
        self.pause(30, 120)
        self.cart.clear()
        self.load("/thanks")
        self.think()
        self.move_to(400, 300)


def visits(count: int, seed: int, now_ms: int, new_id: Callable[[], str] | None = None) -> list[Visit]:
    """``count`` visits, the same for the same seed (and ``now_ms``), each with a new session id."""
    rng = random.Random(seed)
    found = []
    for _ in range(count):
        app = rng.choices(APPS, weights=[a.share for a in APPS])[0]
        client = rng.choices(CLIENTS, weights=[c.share for c in CLIENTS])[0]
        start = now_ms - rng.randint(0, DAYS - 1) * DAY_MS - rng.randint(10 * 60_000, DAY_MS // 2)
        visitor = _Visitor(rng, app, client, start)
        visitor.visit()
        found.append(Visit(new_id() if new_id else str(uuid.uuid4()), app, client, visitor.events,
                           visitor.placed_order))
    return found


# --- funnels --------------------------------------------------------------------------------------------------

FUNNELS: tuple[dict[str, Any], ...] = (
    {"name": "Demo: checkout",
     "steps": [{"kind": "click", "label": "Add to cart"}, {"kind": "click", "label": "Checkout"},
               {"kind": "custom", "label": CUSTOM_EVENT}]},
    {"name": "Demo: from the cart to an order (Demo shop)",
     "filters": [{"type": "app_name", "names": ["Demo shop"]}],
     "steps": [{"kind": "click", "label": "Cart"}, {"kind": "click", "label": "Checkout"},
               {"kind": "click", "label": "Place order"}, {"kind": "custom", "label": CUSTOM_EVENT}]},
)


# --- the command ----------------------------------------------------------------------------------------------

class DemoError(Exception):
    """Something ``bard demo`` cannot do; the message says what and what to do."""


LOCAL_HOSTS = {"localhost"}


def is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host) in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    except ValueError:
        return False


def check_url(url: str, what: str, option: str, *, allow_remote: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DemoError(f"{option}: {what} must be an http:// or https:// URL, got {url!r}")
    if not allow_remote and not is_local(url):
        raise DemoError(f"{option}: {what} {url} is not on this machine (localhost, 127.0.0.1 or ::1); demo data "
                        "is made up: pass --allow-remote to record it into a Bard elsewhere")
    return url.rstrip("/")


@dataclass
class Outcome:
    sessions: list[Visit]
    events: int
    funnels_created: list[str]
    funnels_kept: list[str]
    ended: int
    seed: int


class Progress:
    """What a run reports as it goes: ``bard demo`` draws tqdm bars; tests pass nothing."""

    def start(self, what: str, total: int, unit: str) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...


async def run(agent_url: str, replayer_url: str, token: str, *, sessions: int, seed: int, wait_seconds: float,
              progress: Progress | None = None, now_ms: int | None = None) -> Outcome:
    progress = progress or Progress()
    planned = visits(sessions, seed, now_ms if now_ms is not None else int(time.time() * 1000))
    timeout = httpx.Timeout(30.0)
    async with httpx.AsyncClient(base_url=agent_url, timeout=timeout) as agent, \
            httpx.AsyncClient(base_url=replayer_url, timeout=timeout,
                              headers={"Authorization": f"Bearer {token}"}) as replayer:
        await _check_replayer(replayer)
        total = sum(len(v.events) for v in planned)
        progress.start("recording sessions", total, "events")
        await _record(agent, planned, progress)
        progress.finish()
        created, kept = await _create_funnels(replayer)
        progress.start("waiting for them to end", len(planned), "sessions")
        ended = await _wait_ended(replayer, [v.session_id for v in planned], wait_seconds, progress)
        progress.finish()
    return Outcome(planned, total, created, kept, ended, seed)


async def _check_replayer(replayer: httpx.AsyncClient) -> None:
    try:
        answer = await replayer.get("/v1/funnels")
    except httpx.TransportError as exc:
        raise DemoError(f"the replayer API at {replayer.base_url} does not answer ({exc}): is `bard up` "
                        "running?") from None
    if answer.status_code == 401:
        raise DemoError(f"the replayer API at {replayer.base_url} refused the dashboard token (401): run "
                        "`bard demo` with the same BARD_DATA_DIR or BARD_DASHBOARD_TOKEN as Bard")
    if not answer.is_success:
        raise DemoError(f"the replayer API answered GET /v1/funnels with {answer.status_code}: {answer.text[:300]}")


async def _token(agent: httpx.AsyncClient, client: Client) -> str:
    try:
        answer = await agent.get("/authenticate", headers={"Content-Type": "application/json",
                                                             "User-Agent": client.user_agent})
    except httpx.TransportError as exc:
        raise DemoError(f"the agent API at {agent.base_url} does not answer ({exc}): is `bard up` running?") from None
    if not answer.is_success:
        raise DemoError(f"the agent API answered GET /authenticate with {answer.status_code}: {answer.text[:300]}")
    return str(answer.json()["accessToken"])


async def _record(agent: httpx.AsyncClient, planned: list[Visit], progress: Progress) -> None:
    # One token per browser kind, as a visitor's browser keeps its own (and /authenticate is rate limited).
    tokens = {c.user_agent: await _token(agent, c) for c in {v.client for v in planned}}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def send(visit: Visit) -> None:
        async with gate:
            headers = {**record_headers(tokens[visit.client.user_agent], visit.app.name),
                       "User-Agent": visit.client.user_agent, "Origin": visit.app.origin}
            for batch in batches(visit.events):
                body = json.dumps({"sessionId": visit.session_id, "events": batch, "MAX_IDLE_TIME": RECORD_IDLE_MS})
                answer = await agent.post("/record", content=body, headers=headers)
                if not answer.is_success:
                    raise DemoError(f"the agent API answered POST /record with {answer.status_code}: "
                                    f"{answer.text[:300]}")
                progress.advance(len(batch))

    tasks = [asyncio.create_task(send(v)) for v in planned]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _create_funnels(replayer: httpx.AsyncClient) -> tuple[list[str], list[str]]:
    answer = await replayer.get("/v1/funnels")
    existing = {f["name"] for f in answer.json()["funnels"]}
    created, kept = [], []
    for funnel in FUNNELS:
        if funnel["name"] in existing:
            kept.append(funnel["name"])
            continue
        made = await replayer.post("/v1/funnels", json=funnel)
        if made.status_code != 201:
            raise DemoError(f"the replayer API refused the funnel {funnel['name']!r} ({made.status_code}): "
                            f"{made.text[:300]}")
        created.append(funnel["name"])
    return created, kept


async def _wait_ended(replayer: httpx.AsyncClient, session_ids: Iterable[str], wait_seconds: float,
                      progress: Progress) -> int:
    """Until every session shows as ended in the replayer API, or ``wait_seconds`` have passed."""
    pending = list(session_ids)
    total = len(pending)
    deadline = time.monotonic() + wait_seconds
    gate = asyncio.Semaphore(CONCURRENCY)

    async def ended(session_id: str) -> bool:
        async with gate:
            answer = await replayer.get(f"/v1/sessions/{session_id}")
            return answer.status_code == 200 and answer.json().get("status") == "ended"

    while pending:
        # Sessions end in order of their last batch, so the last one sent is the one to watch until it is there.
        if await ended(pending[-1]) or time.monotonic() >= deadline:
            done = await asyncio.gather(*(ended(s) for s in pending))
            still = [s for s, d in zip(pending, done, strict=True) if not d]
            progress.advance(len(pending) - len(still))
            pending = still
        if not pending or time.monotonic() >= deadline:
            break
        await asyncio.sleep(1.0)
    return total - len(pending)


def describe(outcome: Outcome, replayer_url: str, wait_seconds: float) -> str:
    apps = sorted({v.app.name for v in outcome.sessions})
    starts = [v.started_at for v in outcome.sessions]
    days = sorted({dt.datetime.fromtimestamp(s / 1000, tz=dt.UTC).date() for s in starts})
    orders = sum(v.placed_order for v in outcome.sessions)
    lines = [f"Recorded {len(outcome.sessions)} sessions ({outcome.events} events, seed {outcome.seed}) of "
             f"{', '.join(apps)}, started {days[0]} to {days[-1]}; {orders} placed an order."]
    missing = len(outcome.sessions) - outcome.ended
    if missing:
        lines.append(f"{outcome.ended} have ended so far; the other {missing} show in the session list once the "
                     f"session ender moves them (it did not within {wait_seconds:g} s: is it running?).")
    else:
        lines.append("All of them have ended and are in the session list.")
    for name in outcome.funnels_created:
        lines.append(f"Created the funnel {name!r}.")
    for name in outcome.funnels_kept:
        lines.append(f"Kept the funnel {name!r}, which exists already.")
    lines.append(f"Open {replayer_url} to replay them and see the funnels.")
    return "\n".join(lines)


class Bars(Progress):
    """tqdm progress bars on standard error."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, what: str, total: int, unit: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=what, unit=f" {unit}", unit_scale=False, dynamic_ncols=True)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
