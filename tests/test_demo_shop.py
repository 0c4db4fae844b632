"""The demo shop that ``bard up`` serves: a person (here Chromium, driven by Playwright) clicks around a site recorded
by the real bardrr 2.3.1 agent, cross-origin to the agent API; the session shows in the active view, then, idle,
ends and replays with its page, clicks, custom event and console error. Real services throughout (``bard up`` in a
subprocess: PostgreSQL, RabbitMQ, chDB)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from bard import demo_pages, demo_shop
from tests.bard_process import Bard, free_port
from tests.dashboard_stack import chromium, screenshot, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.clickhouse, pytest.mark.browser,
              pytest.mark.slow]

# The agent's MAX_IDLE_TIME in the shop (BARD_MAX_IDLE_DEFAULT_MS): long enough to look at the active view, short
# enough that the test does not wait a minute for the session to end.
IDLE_MS = 8_000
WISHLIST_ERROR = "Wishlist service unavailable: could not save ethiopia-guji"


@pytest.fixture(scope="module")
def bard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bard]:
    if not demo_shop.is_built():
        pytest.fail("the demo shop is not built: run the tests with ./bardctl test (it builds it)")
    bard = Bard(tmp_path_factory.mktemp("demo_shop"), BARD_DEMO_PORT=str(free_port()),
                BARD_MAX_IDLE_DEFAULT_MS=str(IDLE_MS), BARD_ENDER_INTERVAL_SECONDS="0.5",
                BARD_ENDER_GRACE_SECONDS="0.5", BARD_LOG_LEVEL="WARNING")
    try:
        bard.start()
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{bard.agent_port}/healthz").status_code == 200,
                 "bard up answering", bard)
        wait_for(lambda: "demo shop:" in bard.log(), "the banner", bard)
        yield bard
    finally:
        bard.kill()
        asyncio.run(bard.drop_services())


@pytest.fixture(scope="module")
def browser(bard: Bard) -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def shop_url(bard: Bard) -> str:
    return f"http://127.0.0.1:{bard.env['BARD_DEMO_PORT']}"


def api(bard: Bard) -> httpx.Client:
    token = (bard.data_dir / "dashboard_token").read_text().strip()
    return httpx.Client(base_url=f"http://127.0.0.1:{bard.replayer_port}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_bard_up_prints_the_shop_address_and_renders_its_config(bard: Bard) -> None:
    assert f"demo shop:      {shop_url(bard)}" in bard.log()
    config = httpx.get(shop_url(bard) + "/bard-demo.json").json()
    assert config["endpoint"] == f"http://127.0.0.1:{bard.agent_port}"
    assert config["appName"] == demo_shop.APP_NAME and config["maxIdleTime"] == IDLE_MS
    assert [p["id"] for p in config["products"]] == [p.id for p in demo_shop.CATALOGUE]
    # A client-side route gets the page; a missing asset is a 404; nothing leaves the build.
    assert "<main id=\"app\">" in httpx.get(shop_url(bard) + "/products/house-blend").text
    assert httpx.get(shop_url(bard) + "/assets/missing.js").status_code == 404
    assert httpx.get(shop_url(bard) + "/%2e%2e/package.json").status_code == 404


def body_of(document: dict[str, Any]) -> dict[str, Any]:
    html = next(n for n in document["childNodes"] if n.get("tagName") == "html")
    return next(n for n in html["childNodes"] if n.get("tagName") == "body")


def shape(node: dict[str, Any]) -> Any:
    """A serialized node without what differs between two recordings of one page: ids, the page's origin in link
    addresses (rrweb makes them absolute), whitespace between tags and the page's own script."""
    if node["type"] == 3:
        return node["textContent"]
    attributes = {k: re.sub(r"^https?://[^/]+", "", v) if k == "href" else v for k, v in node["attributes"].items()}
    children = [shape(c) for c in node["childNodes"]
                if not (c["type"] == 3 and not c["textContent"].strip()) and c.get("tagName") != "script"]
    return [node["tagName"], attributes, children]


def visit_the_shop(page: Page, url: str, problems: list[str]) -> None:
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.goto(url)
    expect(page.get_by_role("heading", name="Products")).to_be_visible()
    page.get_by_role("link", name="Ethiopia Guji").click()
    expect(page.get_by_role("heading", name="Ethiopia Guji")).to_be_visible()
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_role("status")).to_contain_text("is in your cart")
    page.mouse.move(200, 300)
    page.mouse.move(400, 350)
    page.wait_for_timeout(1200)  # a person's pace: no earlier click is within 1 s of the error
    page.get_by_role("button", name="Save to wishlist").click()  # console.error: an error click (and a dead one)
    page.wait_for_timeout(1200)
    page.get_by_role("button", name="Compare").click()  # does nothing: a dead click
    page.wait_for_timeout(1200)
    screenshot(page, "demo-shop-product")
    page.get_by_role("link", name="Cart", exact=True).click()
    expect(page.locator("#cart-count")).to_have_text("1")
    page.get_by_role("button", name="Checkout").click()
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Address").fill("12 Analytical Row")
    screenshot(page, "demo-shop-checkout")
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()


def test_a_visit_to_the_shop_is_recorded_shown_active_then_ended_and_replayable(bard: Bard, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    shop = context.new_page()
    problems: list[str] = []
    errors: list[str] = []
    shop.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    visit_the_shop(shop, shop_url(bard), problems)
    session_id = shop.evaluate("sessionStorage.getItem('sessionId')")
    assert re.fullmatch(r"[0-9a-f-]{36}", session_id or ""), session_id
    with api(bard) as client:
        def active() -> bool:
            found = client.get("/v1/active-sessions").json()["sessions"]
            return any(s["session_id"] == session_id for s in found)
        wait_for(active, "the visit in the active view", bard)

        dashboard = context.new_page()
        dashboard.goto(f"http://127.0.0.1:{bard.replayer_port}/login")
        dashboard.get_by_label("Dashboard token").fill(client.headers["Authorization"].removeprefix("Bearer "))
        dashboard.get_by_role("button", name="Sign in").click()
        dashboard.wait_for_url(re.compile(r"/sessions"))
        dashboard.goto(f"http://127.0.0.1:{bard.replayer_port}/sessions?view=active")
        expect(dashboard.locator("body")).to_contain_text(session_id[:8], timeout=15_000)
        screenshot(dashboard, "demo-shop-active-view")

        # Idle: the agent sends what it holds at MAX_IDLE_TIME, the ender ends the session after it.
        def ended() -> bool:
            answer = client.get(f"/v1/sessions/{session_id}")
            return answer.status_code == 200 and answer.json()["status"] == "ended"
        wait_for(ended, "the visit ended", bard)
        session = client.get(f"/v1/sessions/{session_id}").json()
        events: list[dict[str, Any]] = client.get(f"/v1/sessions/{session_id}/events").json()
        markers = client.get(f"/v1/sessions/{session_id}/markers").json()["markers"]

    assert problems == [], problems
    assert any("Wishlist service unavailable" in e for e in errors), errors
    assert session["app_name"] == demo_shop.APP_NAME
    assert session["browser"].startswith("Chrom") or session["device_type"] == "bot", session
    assert session["error_count"] == 1
    assert session["error_click_count"] == 1 and session["dead_click_count"] == 2, session

    types = [e["type"] for e in events]
    assert 4 in types and 2 in types
    snapshot = json.dumps(next(e for e in events if e["type"] == 2)["data"]["node"])
    assert "Bard Coffee Co." in snapshot and "House blend" in snapshot and "_cssText" in snapshot
    # The pages `bard demo` records are the shop's own: its body as rrweb took it, drawn again by bard.demo_pages.
    first = next(e for e in events if e["type"] == 2)["data"]["node"]
    assert shape(body_of(first)) == shape(body_of(demo_pages.page("/").node))
    clicks = [e for e in events if e["type"] == 3 and e["data"].get("source") == 2 and e["data"].get("type") == 2]
    tagged = [e["conversionData"]["textContent"] for e in clicks if "conversionData" in e]
    assert {"Add to cart", "Save to wishlist", "Compare", "Checkout", "Place order"} <= set(tagged), tagged
    assert len(clicks) > len(tagged)  # the links: the agent never marks them
    custom = [e for e in events if e["type"] == 5]
    assert [c["data"]["tag"] for c in custom] == ["order-placed"]
    assert custom[0]["conversionData"] == {"eventType": "custom", "customEventType": "order-placed"}
    console = [e for e in events if e["type"] == 6]
    assert len(console) == 1 and console[0]["data"]["plugin"] == "rrweb/console@1"
    assert WISHLIST_ERROR in json.dumps(console[0]["data"]["payload"]["payload"])
    kinds = {(m["kind"], m["label"]) for m in markers}
    assert {("click", "Ethiopia Guji"), ("click", "Add to cart"), ("click", "Cart"), ("custom", "order-placed"),
            ("error_click", "Save to wishlist"), ("dead_click", "Compare")} <= kinds, kinds
    assert any(m["kind"] == "error" for m in markers), markers

    dashboard.goto(f"http://127.0.0.1:{bard.replayer_port}/sessions/{session_id}")
    frame = dashboard.frame_locator(".replay-frame iframe")
    expect(frame.locator("body")).to_contain_text("Bard Coffee Co.", timeout=30_000)
    expect(frame.locator("body")).to_contain_text("House blend")
    timeline = dashboard.get_by_role("complementary", name="Events in this session")
    for text in ("Add to cart", "order-placed", "Wishlist service unavailable"):
        expect(timeline).to_contain_text(text)
    screenshot(dashboard, "demo-shop-replay")
    context.close()


def test_with_its_port_taken_bard_up_runs_without_the_shop_and_says_why(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bard = Bard(tmp_path, BARD_DEMO_PORT=str(port), BARD_LOG_LEVEL="WARNING")
        try:
            bard.start()
            wait_for(lambda: "Bard is up" in bard.log(), "the banner", bard)
            assert httpx.get(f"http://127.0.0.1:{bard.agent_port}/healthz").status_code == 200
            log = bard.log()
            assert f"running without the demo shop: cannot listen on 127.0.0.1:{port} (BARD_DEMO_PORT)" in log
            assert "\n  demo shop:" not in log and "Traceback" not in log
        finally:
            bard.kill()
            off_this_loop(bard.drop_services())


def test_a_demo_port_of_0_serves_no_shop() -> None:
    from bard.settings import Settings, SettingsError

    assert Settings.from_mapping({"BARD_DEMO_PORT": "0"}).demo_port == 0
    assert Settings().demo_port == 3002
    with pytest.raises(SettingsError, match="BARD_DEMO_PORT must be a port number"):
        Settings.from_mapping({"BARD_DEMO_PORT": "70000"})


def in_process(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:3002")


def off_this_loop(coroutine: Any) -> Any:
    """Run ``coroutine`` in a thread of its own: the module's Playwright (sync API) runs an event loop in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.mark.parametrize(("host", "endpoint"), [
    ("127.0.0.1:3002", "http://127.0.0.1:4101"),
    ("localhost:3002", "http://localhost:4101"),
    ("[::1]:3002", "http://[::1]:4101"),
    ("shop.internal:8080", "http://shop.internal:4101"),
])
def test_the_page_learns_the_agent_api_as_its_browser_reaches_it(host: str, endpoint: str) -> None:
    from bard.settings import Settings

    settings = Settings.from_mapping({"BARD_AGENT_API_PORT": "4101", "BARD_MAX_IDLE_DEFAULT_MS": "45000"})

    async def ask() -> Any:
        async with in_process(demo_shop.create_app(settings)) as client:
            return (await client.get("/bard-demo.json", headers={"Host": host})).json()

    config = off_this_loop(ask())
    assert config["endpoint"] == endpoint and config["maxIdleTime"] == 45_000


def test_an_unbuilt_shop_says_how_to_build_it(tmp_path: Path) -> None:
    from bard.settings import Settings

    assert not demo_shop.is_built(tmp_path)

    async def ask() -> tuple[httpx.Response, httpx.Response]:
        async with in_process(demo_shop.create_app(Settings(), tmp_path)) as client:
            return await client.get("/cart"), await client.get("/bard-demo.json")

    page, config = off_this_loop(ask())
    assert page.status_code == 404 and "./bardctl up builds it" in page.text
    assert config.status_code == 200


def test_narrowed_agent_origins_without_the_shop_are_warned_about(tmp_path: Path) -> None:
    port = free_port()
    bard = Bard(tmp_path, BARD_DEMO_PORT=str(port), BARD_AGENT_CORS_ORIGINS="https://app.example.com",
                BARD_LOG_LEVEL="WARNING")
    try:
        bard.start()
        wait_for(lambda: "Bard is up" in bard.log(), "the banner", bard)
        assert (f"the demo shop at http://127.0.0.1:{port} is not in BARD_AGENT_CORS_ORIGINS: browsers will not "
                "let it record") in bard.log()
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        bard.kill()
        off_this_loop(bard.drop_services())
