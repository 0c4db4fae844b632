"""What the dashboard's browser tests run against: ``bard up`` in a subprocess (real PostgreSQL, RabbitMQ and chDB,
the agent API, the consumer, the session ender and the replayer API serving the built dashboard), with sessions
recorded through ``/record`` as the bardrr agent sends them, and Debian's Chromium driven by Playwright.

The recorded data is fixed and known, so the tests can say exactly what each screen must show:

- 30 "list" sessions, one an hour back from now: app ``blog`` for every third (i % 3 == 0), ``shop`` otherwise;
  session i lasts (i + 1) s; every fourth (i % 4 == 0) logged a console error;
- the "replay" session: the agent's first batch (a product page, a button click on "Add to cart", a click on
  the "Cart" link, the custom event ``checkout-started``, a console error) and a later batch;
- 4 "completed" sessions (the first batch: the click, then the custom event) and 2 "dropped" ones (the click,
  no custom event), for a funnel "Add to cart" -> "checkout-started";
- 1 "long" session of 3,000 events over 5 minutes (one large batch, as the agent sends after a late token), which
  the server streams in several chunks: near its end a scroll to 960 px, then the custom event ``LONG_END_TAG``;
- 1 session still active (MAX_IDLE_TIME of an hour);
- 6 "described" sessions of app ``shop``, seeded straight into ClickHouse before ``bard up`` starts (:data:`DESCRIBED`,
  :func:`seed_warehouse`): ended, with client, page and signal details the agent API and the session ender would
  have read (browser, OS, device type, viewport, entry and exit path, page, click, rage, dead and error click
  counts), one as a session from before Bard kept them (every detail empty), and one that replays: its rrweb
  events, its clicks tagged "Pay now" and a rage click and a dead click in ``conversion_events``.

The recorded sessions get what the pipeline reads from them: an entry path from their Meta event, one page, no
client (httpx's User-Agent names no browser), no rage click (no three clicks at one spot), and no country (they
come from 127.0.0.1), but the "replay" session: its batches say ``X-Forwarded-For`` :data:`REPLAY_FORWARDED_FOR`
(its client the RIPE NCC's address, NL, with a forged entry left of it; then another country's address, which
the session does not keep: the first stays), as a proxy on the same machine would. uvicorn believes the header
from 127.0.0.1 by default, and ``bard up`` is told so as well (``BARD_TRUSTED_PROXIES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from replayer_api.dashboard import BUILT_IN
from tests import bardrr_events as bardrr
from tests.bard_process import WAIT_SECONDS, Bard

CHROMIUM = "/usr/bin/chromium"
# Headless as root, and quiet on a closed network (no background calls to Google's hosts).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
SHORT_IDLE_MS = 300
LIST_SESSIONS = 30
HOUR_MS = 3_600_000
LONG_EVENTS = 3_000
LONG_END_TAG = "reached-the-end"
LONG_END_SCROLL = 960


REPLAY_FORWARDED_FOR = ("203.0.113.77, 193.0.6.139", "1.0.16.1")  # the first and the later batch's header
REPLAY_COUNTRY = "NL"

RAGE_LABEL = "Pay now"
DEAD_LABEL = "Cart"


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (which cannot download its own browsers here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class Described:
    """An ended session seeded into ClickHouse with its client, page and signal details."""

    name: str
    minutes_ago: int
    duration_ms: int
    browser: str = ""
    browser_major: int = 0
    os: str = ""
    device_type: str = ""
    viewport: tuple[int, int] = (0, 0)
    entry_path: str = ""
    exit_path: str = ""
    pages: int = 0
    clicks: int = 0
    rage: int = 0
    dead: int = 0
    error_clicks: int = 0
    country: str = ""
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def entry_url(self) -> str:
        return f"https://shop.example.com{self.entry_path}?ref=mail" if self.entry_path else ""


# Durations of 40 s and more, so they never meet the list sessions' duration filters (up to 30 s); the longest
# session stays the "long" one (5 min).
DESCRIBED = [
    Described("replays", 15, 45_000, "Firefox", 121, "Windows", "desktop", (1440, 900), "/checkout/cart",
              "/checkout/done", 4, 5, rage=1, dead=1, country="DE"),
    Described("mac", 16, 50_000, "Chrome", 120, "Mac OS X", "desktop", (1280, 800), "/pricing", "/signup", 2, 6,
              error_clicks=1, country="US"),
    Described("iphone", 17, 60_000, "Mobile Safari", 17, "iOS", "mobile", (390, 844), "/checkout", "/checkout", 1, 3,
              rage=2, country="JP"),
    Described("android", 18, 70_000, "Chrome Mobile", 119, "Android", "mobile", (412, 915), "/blog/hello", "/blog",
              3, 2, country="BR"),
    Described("tablet", 19, 80_000, "Chrome", 120, "Android", "tablet", (800, 1280), "/", "/about", 2, 1, dead=2,
              country="US"),
    Described("old", 21, 90_000),
]


def described(name: str) -> Described:
    return next(d for d in DESCRIBED if d.name == name)


def replaying_events(start: int) -> list[dict[str, Any]]:
    """The events of the described session that replays: its entry page, three clicks on "Pay now" in 400 ms at
    one spot (a rage click), a scroll, a click on the "Cart" link that nothing answers (a dead click), moves."""
    events = [bardrr.meta(start, f"https://shop.example.com{described('replays').entry_path}"),
              bardrr.full_snapshot(start + 1, 6)]
    events += [bardrr.button_click(start + 1000 + 200 * i, RAGE_LABEL) for i in range(3)]
    events += [bardrr.scroll(start + 1500, 240), bardrr.link_click(start + 20_000)]
    events += [bardrr.mouse_move(start + 22_000 + 1000 * i) for i in range(23)]
    return events


def at(ms: int) -> str:
    """A DateTime64(3, 'UTC') as ClickHouse's JSONEachRow reads it."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def warehouse_rows(now: int) -> dict[str, list[dict[str, Any]]]:
    """The rows :func:`seed_warehouse` inserts: every described session, and the replaying one's events and
    conversion events (its clicks, its rage click at the first of them, its dead click)."""
    sessions = []
    for d in DESCRIBED:
        start = now - d.minutes_ago * 60_000
        counts = {"page": d.pages, "click": d.clicks, "rage_click": d.rage, "dead_click": d.dead,
                  "error_click": d.error_clicks}
        sessions.append({
            "session_id": d.session_id, "app_name": "shop", "started_at": at(start),
            "ended_at": at(start + d.duration_ms), "event_count": 30, "error_count": 0,
            "segments": [str(uuid.uuid4())], "segment_event_counts": [30], "segment_error_counts": [0], "version": 1,
            "browser": d.browser, "browser_major": d.browser_major, "os": d.os, "device_type": d.device_type,
            "viewport_width": d.viewport[0], "viewport_height": d.viewport[1], "entry_url": d.entry_url,
            "entry_path": d.entry_path, "exit_path": d.exit_path, "country": d.country,
            **{f"{name}_count": n for name, n in counts.items()},
            **{f"segment_{name}_counts": [n] for name, n in counts.items()},
        })
    replays = described("replays")
    start = now - replays.minutes_ago * 60_000
    batch = str(uuid.uuid4())
    events, conversions = [], []
    for seq, event in enumerate(replaying_events(start)):
        row = {"session_id": replays.session_id, "app_name": "shop", "ts": at(event["timestamp"]),
               "batch_id": batch, "seq": seq}
        events.append({**row, "type": event["type"], "event": json.dumps(event), "received_at": at(start)})
        if event.get("conversionData"):
            conversions.append({**row, "kind": "click", "label": RAGE_LABEL})
            if len([c for c in conversions if c["kind"] == "click"]) == 1:
                conversions.append({**row, "kind": "rage_click", "label": RAGE_LABEL})
        elif event["type"] == 3 and event["data"]["source"] == 2:
            conversions.append({**row, "kind": "dead_click", "label": DEAD_LABEL})
    return {"sessions": sessions, "events": events, "conversion_events": conversions}


SEED_WAREHOUSE = """
import asyncio, json, sys
from bard.settings import Settings
from bard.up import migrate_all
from clickhouse.client import client_for
settings = Settings.from_environ()
asyncio.run(migrate_all(settings))
client = client_for(settings)
for table, rows in json.load(sys.stdin).items():
    client.raw_insert(table, list(rows[0]), "\\n".join(json.dumps(row) for row in rows), fmt="JSONEachRow")
"""


def seed_warehouse(bard: Bard, now: int) -> None:
    """Migrate ``bard up``'s warehouse and insert :func:`warehouse_rows`, before it starts (chDB opens a data
    directory in one process at a time)."""
    done = subprocess.run([sys.executable, "-c", SEED_WAREHOUSE], env=bard.env, input=json.dumps(warehouse_rows(now)),
                          capture_output=True, text=True, timeout=WAIT_SECONDS, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stdout + done.stderr


@dataclass
class Recorded:
    list_sessions: list[dict[str, Any]] = field(default_factory=list)
    replay: str = ""
    replay_events: list[dict[str, Any]] = field(default_factory=list)
    completed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dropped: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    active: str = ""
    long: str = ""
    long_events: list[dict[str, Any]] = field(default_factory=list)
    ended_starts: list[int] = field(default_factory=list)  # every ended session's first event, ms

    @property
    def ended_count(self) -> int:
        return len(self.list_sessions) + 2 + len(self.completed) + len(self.dropped) + len(DESCRIBED)


@dataclass
class Stack:
    bard: Bard
    token: str
    recorded: Recorded

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.bard.replayer_port}"

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


def wait_for(condition: Any, what: str, bard: Bard) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        assert bard.process is not None
        if bard.process.poll() is not None:
            pytest.fail(f"bard up exited with {bard.process.returncode}:\n{bard.log()}")
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {WAIT_SECONDS} s:\n{bard.log()[-4000:]}")


def record_all(agent: httpx.Client, now: int) -> Recorded:
    token = agent.get("/authenticate").json()["accessToken"]
    recorded = Recorded()

    def send(events: list[dict[str, Any]], app: str = "shop", idle: int = SHORT_IDLE_MS,
             session: str | None = None, forwarded_for: str | None = None) -> str:
        session = session or str(uuid.uuid4())
        headers = bardrr.record_headers(token, app)
        if forwarded_for is not None:
            headers["X-Forwarded-For"] = forwarded_for
        answer = agent.post("/record", headers=headers, json=bardrr.record_body(events, session, idle))
        assert answer.is_success, answer.text
        return session

    for i in range(LIST_SESSIONS):
        start = now - (i + 1) * HOUR_MS
        events = [bardrr.meta(start, f"https://shop.example.com/list/{i}"), bardrr.full_snapshot(start + 1, 3)]
        events += [bardrr.mouse_move(start + (k + 1) * 1000) for k in range(i)]
        if i % 4 == 0:
            events.append(bardrr.console_error(start + 500, f"list error {i}"))
        events.append(bardrr.mouse_move(start + (i + 1) * 1000))
        app = "blog" if i % 3 == 0 else "shop"
        session = send(sorted(events, key=lambda e: e["timestamp"]), app)
        recorded.list_sessions.append({"session_id": session, "app": app, "start": start,
                                       "duration_ms": (i + 1) * 1000, "errors": int(i % 4 == 0),
                                       "events": len(events)})

    start = now - 10 * 60_000
    first = bardrr.first_batch(start)
    later = bardrr.later_batch(first[-1]["timestamp"] + 500)
    recorded.replay = send(first, forwarded_for=REPLAY_FORWARDED_FOR[0])
    send(later, session=recorded.replay, forwarded_for=REPLAY_FORWARDED_FOR[1])
    recorded.replay_events = first + later

    for n in range(4):
        events = bardrr.first_batch(now - (20 + n) * 60_000)
        recorded.completed[send(events)] = events
    for n in range(2):
        events = [e for e in bardrr.first_batch(now - (30 + n) * 60_000) if e["type"] != 5]
        recorded.dropped[send(events)] = events

    long_start = now - 40 * 60_000
    long = [bardrr.meta(long_start), bardrr.full_snapshot(long_start + 1)]
    long += [bardrr.mouse_move(long_start + 100 * (i + 1), i % 900, i % 500) for i in range(LONG_EVENTS - 5)]
    last = long[-1]["timestamp"]
    long += [bardrr.scroll(last + 100, LONG_END_SCROLL), bardrr.custom_event(last + 200, LONG_END_TAG),
             bardrr.mouse_move(last + 300)]
    recorded.long, recorded.long_events = send(long), long

    recorded.ended_starts = [s["start"] for s in recorded.list_sessions] + [start, long_start] + [
        events[0]["timestamp"] for events in (*recorded.completed.values(), *recorded.dropped.values())] + [
        now - d.minutes_ago * 60_000 for d in DESCRIBED]
    recorded.active = send(bardrr.first_batch(now - 5_000), idle=3_600_000)
    return recorded


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not (BUILT_IN / "index.html").is_file():
        pytest.fail("the dashboard is not built: run the tests with ./bardctl test (it builds it)")
    bard = Bard(tmp_path_factory.mktemp("dashboard"), BARD_ENDER_INTERVAL_SECONDS="0.5",
                BARD_ENDER_GRACE_SECONDS="0.5", BARD_LOG_LEVEL="WARNING",
                # Every test signs in again from 127.0.0.1; the limit itself is tested in test_replayer_access.
                BARD_LOGIN_RATE_PER_MINUTE="6000",
                # As a proxy in front of Bard would be: the "replay" session says where it came from.
                BARD_TRUSTED_PROXIES="127.0.0.1")
    now = bardrr.now_ms()
    try:
        seed_warehouse(bard, now)
        bard.start()
        agent = httpx.Client(base_url=f"http://127.0.0.1:{bard.agent_port}", timeout=30)
        with agent:
            wait_for(lambda: agent.get("/healthz").status_code == 200, "bard up answering", bard)
            recorded = record_all(agent, now)
        token = (bard.data_dir / "dashboard_token").read_text().strip()
        stack = Stack(bard, token, recorded)
        with stack.api() as api:
            def all_ended() -> bool:
                page = api.get("/v1/sessions", params={"limit": 100}).json()
                return len(page["sessions"]) == recorded.ended_count
            wait_for(all_ended, f"{recorded.ended_count} sessions ended", bard)
        yield stack
    finally:
        bard.kill()
        asyncio.run(bard.drop_services())


class Watch:
    """Everything that went wrong on a page: console errors, uncaught exceptions, failed requests and HTTP
    errors. A test names the answers it provokes on purpose (``allow``); anything else fails it."""

    def __init__(self, page: Any, origin: str) -> None:
        self.origin = origin
        self.problems: list[str] = []
        self.allowed: list[tuple[int, str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def allow(self, status: int, path: str) -> None:
        self.allowed.append((status, path))

    def _is_allowed(self, status: int, url: str) -> bool:
        return any(status == s and path in url for s, path in self.allowed)

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        # Chromium reports every HTTP error as a console error too; those are judged by _response.
        if re.match(r"Failed to load resource: the server responded with a status of (\d+)", message.text):
            location = message.location.get("url", "")
            status = int(re.findall(r"status of (\d+)", message.text)[0])
            if self._is_allowed(status, location):
                return
        self.problems.append(f"console error: {message.text} at {message.location}")

    def _failed(self, request: Any) -> None:
        if request.url.startswith(self.origin):
            # A navigation away cancels the page's pending reads: not a failure of the dashboard.
            if request.failure and "ERR_ABORTED" in request.failure:
                return
            self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Any) -> None:
        if response.url.startswith(self.origin) and response.status >= 400 and \
                not self._is_allowed(response.status, response.url):
            self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def check(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


def external_host(route: Any) -> None:
    """The recorded site's own assets (its images on https://cdn.example.com) are not Bard's: no network here,
    so the replay's iframe gets an empty answer for them instead of a failed request."""
    route.fulfill(status=204, body=b"")


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


UNNAMED_CONTROLS = """() => {
  const name = (el) => {
    const aria = el.getAttribute('aria-label') || '';
    const labelled = (el.getAttribute('aria-labelledby') || '').split(' ').map(id => document.getElementById(id))
      .filter(Boolean).map(n => n.textContent).join(' ');
    const labels = el.labels ? [...el.labels].map(l => l.textContent).join(' ') : '';
    // Buttons and links are named by their text; a field only by a label (its value or options are no name).
    const text = el.matches('a, button') ? el.textContent : '';
    return (aria || labelled || labels || text || el.getAttribute('title') || '').trim();
  };
  return [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]
    .filter(el => el.offsetParent !== null && !el.closest('.replay-frame'))
    .filter(el => !name(el)).map(el => el.outerHTML.slice(0, 120));
}"""
