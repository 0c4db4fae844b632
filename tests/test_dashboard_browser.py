"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against ``bard up`` (real services) with
sessions recorded through ``/record`` (see :mod:`tests.dashboard_stack` for the data). Every page is checked for
console errors and failed requests; screenshots of each screen land in ``tests/artifacts/``."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import bardrr_events as bardrr
from tests.dashboard_stack import (
    DEAD_LABEL,
    DESCRIBED,
    LONG_END_SCROLL,
    LONG_END_TAG,
    RAGE_LABEL,
    REPLAY_COUNTRY,
    UNNAMED_CONTROLS,
    Stack,
    Watch,
    chromium,
    described,
    external_host,
    screenshot,
    stack,
)

__all__ = ["stack"]  # the module-scoped fixture

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.clickhouse, pytest.mark.browser,
              pytest.mark.slow]

# The session table's columns, 1-based (CSS nth-child).
COLUMN = {name: i + 1 for i, name in enumerate(
    ["start", "duration", "app", "client", "country", "entry", "pages", "clicks", "events", "errors", "signals",
     "session"])}


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    """After the stack (so torn down before it: sync Playwright runs an event loop of its own)."""
    with chromium() as browser:
        yield browser


class Visit:
    def __init__(self, page: Page, watch: Watch, stack: Stack) -> None:
        self.page, self.watch, self.stack = page, watch, stack

    def go(self, path: str) -> Page:
        self.page.goto(self.stack.url + path)
        return self.page


def sign_in(page: Page, stack: Stack, token: str) -> None:
    page.get_by_label("Dashboard token").fill(token)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def visit(browser: Browser, stack: Stack) -> Iterator[Visit]:
    """A signed-in browser tab; at the end, no console error and no failed request may have happened."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), external_host)
    watch = Watch(page, stack.url)
    page.goto(stack.url + "/login")
    sign_in(page, stack, stack.token)
    page.wait_for_url(re.compile(r"/sessions"))
    yield Visit(page, watch, stack)
    context.close()
    watch.check()


def rows(page: Page) -> Any:
    return page.locator("table.sessions tbody tr")


def shown(page: Page) -> None:
    """Until the session table shows the state in the page's URL (a click re-renders a moment later)."""
    page.wait_for_function("() => { const s = document.querySelector('section[data-search]');"
                           " return s !== null && s.dataset.search === location.search; }")


def settled(page: Page) -> None:
    """Until nothing on the page is loading any more."""
    page.wait_for_function("() => document.querySelector('main') !== null && "
                           "document.querySelector('main .loading') === null")


def first_column(page: Page, column: int) -> list[str]:
    shown(page)
    return [text.strip() for text in page.locator(f"table.sessions tbody tr td:nth-child({column})").all_inner_texts()]


def replay_scrolled_to(page: Page, top: int) -> None:
    """Until the replayed page is scrolled to ``top``, as the recorded scroll events up to the player's moment
    leave it: proof that a seek reached the Replayer, not only the page's own controls."""
    page.wait_for_function(
        "top => { const frame = document.querySelector('.replay-frame iframe');"
        " const doc = frame && frame.contentDocument;"
        " return !!doc && (doc.scrollingElement || doc.documentElement).scrollTop === top; }", arg=top)


def count(text: str) -> int:
    """A count as the table shows it; a session recorded before Bard kept its details shows a dash, and sorts as 0."""
    return 0 if text == "–" else int(text)


def seconds(text: str) -> int:
    h, m, s = (int(part) for part in text.split(":"))
    return h * 3600 + m * 60 + s


def test_sign_in_wrong_token_and_sign_out(browser: Browser, stack: Stack) -> None:
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page, stack.url)
    page.goto(stack.url + "/sessions?app=shop")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.get_by_text("./var/dashboard_token")).to_be_visible()
    screenshot(page, "01-sign-in")

    watch.allow(401, "/login")
    sign_in(page, stack, "not-the-token")
    expect(page.get_by_role("alert")).to_have_text("That is not the dashboard token.")
    screenshot(page, "01-sign-in-wrong-token")

    sign_in(page, stack, stack.token)
    expect(page).to_have_url(re.compile(r"/sessions\?app=shop$"))  # back where the visit began
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(stack.url + "/funnels")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Ffunnels"))
    context.close()
    watch.check()


def test_signing_out_while_a_request_is_answered_401_lands_on_the_plain_sign_in(browser: Browser, stack: Stack) -> None:
    """A request of the page that the cleared cookie fails (401) while the sign-out is on its way must not send
    the person to a sign-in that would bring them back (``/login?next=...``): held in order here, with routes, as
    it happens by chance when the sign-out meets a request in flight."""
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page, stack.url)
    page.goto(stack.url + "/sessions")
    sign_in(page, stack, stack.token)
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    held: dict[str, Any] = {}
    page.route(re.compile(r"/v1/sessions(\?|$)"), lambda route: held.setdefault("list", route))
    page.route("**/logout", lambda route: held.setdefault("logout", route))
    page.goto(stack.url + "/sessions?app=shop")  # the page, its list held
    deadline = time.monotonic() + 10
    while "list" not in held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    # The sign-out (held). As its button does, but without Playwright's wait for the navigation it starts.
    page.evaluate("document.querySelector('form.signout').requestSubmit()")
    while "logout" not in held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert set(held) == {"list", "logout"}, held
    watch.allow(401, "/v1/sessions")
    held["list"].fulfill(status=401, content_type="application/json",
                         body='{"error": "unauthorized", "message": "sign in"}')
    page.wait_for_timeout(200)  # the page's answer to the 401 (it used to navigate to /login?next=...)
    held["logout"].continue_()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_label("Dashboard token")).to_be_visible()
    watch.check()
    context.close()


def test_session_list_filters_sorts_pages_and_keeps_its_state_in_the_url(visit: Visit) -> None:
    page, recorded = visit.page, visit.stack.recorded
    expect(rows(page)).to_have_count(25)
    screenshot(page, "02-sessions")
    # Newest first by default: the active session is not listed; the replay session started 10 minutes ago.
    starts = first_column(page, COLUMN["start"])
    assert starts == sorted(starts, reverse=True)

    # Paging forward and back, by keyset cursor, with the back button too.
    first_page = first_column(page, COLUMN["session"])
    page.get_by_role("button", name="Next page →").click()
    expect(page).to_have_url(re.compile(r"cursor="))
    expect(rows(page)).to_have_count(recorded.ended_count - 25)
    second_page = first_column(page, COLUMN["session"])
    assert not set(first_page) & set(second_page)
    expect(page.get_by_role("button", name="Next page →")).to_be_disabled()
    page.get_by_role("button", name="← Previous page").click()
    expect(page).to_have_url(re.compile(r"before="))
    expect(rows(page).first).to_contain_text(first_page[0])
    assert first_column(page, COLUMN["session"]) == first_page
    expect(page.get_by_role("button", name="← Previous page")).to_be_disabled()
    page.go_back()
    expect(page).to_have_url(re.compile(r"cursor="))
    expect(rows(page)).to_have_count(recorded.ended_count - 25)

    # Sorting by every column, both ways.
    page.goto(visit.stack.url + "/sessions")
    for label, key in (("duration", seconds), ("app", str), ("events", int), ("errors", int), ("pages", count),
                       ("clicks", count), ("start", str)):
        column = COLUMN[label]
        header = page.get_by_role("button", name=re.compile(f"^Sort by {label}"))
        header.click()
        expect(page.get_by_role("columnheader", name=re.compile(label, re.I))).to_have_attribute(
            "aria-sort", re.compile("ascending|descending"))
        order = page.get_by_role("columnheader", name=re.compile(label, re.I)).get_attribute("aria-sort")
        values = [key(v.replace(",", "")) for v in first_column(page, column)]
        assert values == sorted(values, reverse=order == "descending"), (label, order, values)
        header.click()
        expect(page.get_by_role("columnheader", name=re.compile(label, re.I))).not_to_have_attribute(
            "aria-sort", order or "")
        flipped = [key(v.replace(",", "")) for v in first_column(page, column)]
        assert flipped == sorted(flipped, reverse=order != "descending"), (label, flipped)
    page.get_by_role("button", name=re.compile("^Sort by duration")).click()
    expect(page).to_have_url(re.compile(r"sort=duration"))
    longest = formatted_duration(recorded.long_events[-1]["timestamp"] - recorded.long_events[0]["timestamp"])
    assert first_column(page, COLUMN["duration"])[0] == longest
    page.get_by_role("button", name=re.compile("^Sort by duration")).click()
    expect(page).to_have_url(re.compile(r"sort=duration&order=asc"))
    shortest = first_column(page, COLUMN["duration"])[0]
    page.go_back()
    expect(page).to_have_url(re.compile(r"sort=duration$"))
    assert first_column(page, COLUMN["duration"])[0] == longest
    assert shortest == "0:00:01"  # the first list session

    # Filters: apps, errors, duration, id prefix, start range; each one's state in the URL.
    page.goto(visit.stack.url + "/sessions")
    page.get_by_role("checkbox", name="blog").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"app=blog"))
    blog = [s for s in recorded.list_sessions if s["app"] == "blog"]
    expect(rows(page)).to_have_count(len(blog))
    assert set(first_column(page, COLUMN["app"])) == {"blog"}
    screenshot(page, "02-sessions-filtered")

    page.goto(visit.stack.url + "/sessions")
    page.get_by_role("combobox", name=re.compile("^Errors")).select_option("yes")
    page.get_by_label("Min duration (s)").fill("10")
    page.get_by_label("Max duration (s)").fill("25")
    page.get_by_role("button", name="Apply").click()
    expected = [s for s in recorded.list_sessions if s["errors"] and 10_000 <= s["duration_ms"] <= 25_000]
    expect(rows(page)).to_have_count(len(expected))
    assert sorted(first_column(page, COLUMN["duration"])) == sorted(
        f"0:00:{s['duration_ms'] // 1000:02d}" for s in expected)
    shared = page.url
    page.goto(visit.stack.url + "/sessions")
    page.goto(shared)  # a shared link shows the same list, filters filled in
    expect(rows(page)).to_have_count(len(expected))
    expect(page.get_by_label("Min duration (s)")).to_have_value("10")

    target = recorded.list_sessions[7]["session_id"]
    page.goto(visit.stack.url + "/sessions")
    page.get_by_label("Session id starts with").fill(target[:8])
    page.get_by_role("button", name="Apply").click()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text(target[:8])

    # The oldest list session's day: 30 h back, it holds list sessions only (every other session is under an
    # hour old), at most 24 of them and so less than a page, whatever the hour the tests run.
    day = _day(recorded.list_sessions[-1]["start"])
    page.goto(visit.stack.url + "/sessions")
    page.get_by_label("Started from (UTC day)").fill(day)
    page.get_by_label("Started until (UTC day, inclusive)").fill(day)
    page.get_by_role("button", name="Apply").click()
    expected = sum(1 for start in recorded.ended_starts if _day(start) == day)
    assert 0 < expected < 25
    expect(rows(page)).to_have_count(expected)
    assert {text[:10] for text in first_column(page, COLUMN["start"])} == {day}

    # Bad input: the API's message at the field it names.
    visit.watch.allow(400, "/v1/sessions")
    page.goto(visit.stack.url + "/sessions")
    page.get_by_label("Min duration (s)").fill("soon")
    page.get_by_role("button", name="Apply").click()
    error = page.locator("#filter-min-error")
    expect(error).to_contain_text("min_duration_ms")
    expect(page.get_by_label("Min duration (s)")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "02-sessions-bad-filter")

    # Empty state.
    page.goto(visit.stack.url + "/sessions?id=ffffffff-ffff")
    expect(page.get_by_text("No ended session matches these filters")).to_be_visible()

    # Active now: the one session still going, refreshed by itself.
    page.goto(visit.stack.url + "/sessions")
    page.get_by_role("button", name="Active now").click()
    expect(page).to_have_url(re.compile(r"view=active"))
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text(recorded.active[:8])
    expect(page.get_by_text(re.compile("Refreshes every 5 s; updated"))).to_be_visible()
    with page.expect_response(lambda r: "/v1/active-sessions" in r.url, timeout=15_000) as refreshed:
        pass  # nothing is clicked: the view asks again on its own
    assert refreshed.value.ok
    screenshot(page, "02-sessions-active")

    # A row opens its session.
    page.goto(visit.stack.url + "/sessions")
    rows(page).first.locator("td").nth(2).click()
    expect(page).to_have_url(re.compile(r"/sessions/[0-9a-f-]{36}$"))


def cell(page: Page, column: str, row: int = 0) -> Any:
    return rows(page).nth(row).locator(f"td:nth-child({COLUMN[column]})")


def test_client_pages_and_signals_in_the_list_its_filters_and_the_session(visit: Visit) -> None:
    """The described sessions (seeded into ClickHouse with their details, see tests.dashboard_stack)."""
    page, stack = visit.page, visit.stack
    replays, old = described("replays"), described("old")
    page.goto(stack.url + f"/sessions?id={replays.session_id[:8]}")
    expect(rows(page)).to_have_count(1)
    expect(cell(page, "client")).to_have_text("Firefox 121 · Windows · desktop")
    expect(cell(page, "country")).to_have_text(replays.country)
    expect(cell(page, "country")).to_have_attribute("title", "Germany")
    expect(cell(page, "entry")).to_have_text(replays.entry_path)
    expect(cell(page, "pages")).to_have_text(str(replays.pages))
    expect(cell(page, "clicks")).to_have_text(str(replays.clicks))
    expect(cell(page, "signals").locator(".signal.rage_click")).to_have_text("1 rage click")
    expect(cell(page, "signals").locator(".signal.dead_click")).to_have_text("1 dead click")
    expect(cell(page, "signals").locator(".signal.error_click")).to_have_count(0)
    page.goto(stack.url + f"/sessions?id={old.session_id[:8]}")  # recorded before Bard kept the details
    for column in ("client", "country", "entry", "pages", "clicks", "signals"):
        expect(cell(page, column)).to_have_text("–")

    # A country from /v1/options, named in words, sent as its code.
    page.goto(stack.url + "/sessions")
    countries = page.get_by_role("group", name="Countries")
    for name in ("United States (US)", "Germany (DE)", "Japan (JP)", "Brazil (BR)", f"Netherlands ({REPLAY_COUNTRY})"):
        expect(countries.get_by_role("checkbox", name=name, exact=True)).to_have_count(1)
    countries.get_by_role("checkbox", name="United States (US)", exact=True).check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"\?country=US$"))
    american = [described("mac"), described("tablet")]
    expect(rows(page)).to_have_count(len(american))
    assert sorted(first_column(page, COLUMN["session"])) == sorted(d.session_id[:8] for d in american)
    assert set(first_column(page, COLUMN["country"])) == {"US"}
    expect(page.get_by_role("group", name="Countries").get_by_role("checkbox", name="United States (US)")
           ).to_be_checked()
    screenshot(page, "02-sessions-country-filter")

    # A browser from /v1/options: "Chrome" is not "Chrome Mobile".
    page.goto(stack.url + "/sessions")
    page.get_by_role("group", name="Browsers").get_by_role("checkbox", name="Chrome", exact=True).check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"\?browser=Chrome$"))
    chrome = [described("mac"), described("tablet")]
    expect(rows(page)).to_have_count(len(chrome))
    assert sorted(first_column(page, COLUMN["session"])) == sorted(d.session_id[:8] for d in chrome)
    assert {text.split(" · ")[0] for text in first_column(page, COLUMN["client"])} == {"Chrome 120"}
    screenshot(page, "02-sessions-browser-filter")

    # With rage clicks: the two described sessions that had one, nothing recorded (no three clicks at one spot).
    page.goto(stack.url + "/sessions")
    page.get_by_role("combobox", name=re.compile("^Rage clicks")).select_option("yes")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"\?rage=yes$"))
    raging = [described("replays"), described("iphone")]
    expect(rows(page)).to_have_count(len(raging))
    assert sorted(first_column(page, COLUMN["session"])) == sorted(d.session_id[:8] for d in raging)

    # An entry page prefix, with autocomplete, and a device type: the state in the URL.
    page.goto(stack.url + "/sessions")
    page.get_by_label("Entry page starts with").fill("/check")
    expect(page.locator("#filter-entry-paths option[value='/checkout/cart']")).to_have_count(1)
    page.get_by_role("group", name="Devices").get_by_role("checkbox", name="mobile").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"device=mobile&entry=%2Fcheck$"))
    expect(rows(page)).to_have_count(1)
    expect(cell(page, "session")).to_have_text(described("iphone").session_id[:8])
    expect(page.get_by_label("Entry page starts with")).to_have_value("/check")

    # A bad value: the API's message at its field.
    visit.watch.allow(400, "/v1/sessions")
    with stack.api() as api:
        refusal = api.get("/v1/sessions", params={"min_pages": "many"})
    assert refusal.status_code == 400 and refusal.json()["field"] == "min_pages", refusal.text
    page.goto(stack.url + "/sessions")
    page.get_by_label("Min pages").fill("many")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#filter-min-pages-error")).to_have_text(refusal.json()["message"])
    expect(page.get_by_label("Min pages")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "02-sessions-bad-pages")

    # The session: its details beside the replay, its signals on the timeline.
    page.goto(stack.url + f"/sessions/{replays.session_id}")
    expect(page.frame_locator(".replay-frame iframe").locator("body")).to_contain_text("Ceramic mug no. 0",
                                                                                        timeout=30_000)
    details = page.get_by_role("region", name="Client and pages")
    shown_details = {"Browser": "Firefox 121", "OS": "Windows", "Device": "desktop", "Country": "Germany (DE)",
                     "Viewport": "1440 × 900",
                     "Entry page": replays.entry_url, "Exit page": replays.exit_path, "Pages": "4", "Clicks": "5",
                     "Rage clicks": "1", "Dead clicks": "1", "Error clicks": "0"}
    for term, value in shown_details.items():
        expect(details.locator("div", has=page.locator("dt", has_text=re.compile(f"^{term}$"))).locator("dd")
               ).to_have_text(value)
    events = page.get_by_role("complementary", name="Events in this session")
    expect(events).to_contain_text(RAGE_LABEL)
    for kind in ("Rage click", "Dead click", "Error click"):
        expect(page.get_by_role("list", name="Legend")).to_contain_text(kind)
    # Its 4 clicks on the timeline, and under it the rage click (at the first of them) and the dead click.
    expect(page.locator(".ticks.events .tick.click")).to_have_count(4)
    expect(page.locator(".ticks.signals .tick")).to_have_count(2)
    assert sorted(page.locator(".ticks.signals .tick").evaluate_all("ts => ts.map(t => t.className)")) == [
        "tick dead_click", "tick rage_click"]
    expect(events.locator("button.marker.rage_click")).to_contain_text(f"Rage click{RAGE_LABEL}")
    expect(events.locator("button.marker.dead_click")).to_contain_text(f"Dead click{DEAD_LABEL}")
    screenshot(page, "03-session-details")

    page.goto(stack.url + f"/sessions/{old.session_id}")
    details = page.get_by_role("region", name="Client and pages")
    expect(details).to_contain_text("recorded before Bard kept client and page details")
    expect(details.locator("div", has=page.locator("dt", has_text="Browser")).locator("dd")).to_have_text("–")
    expect(details.locator("div", has=page.locator("dt", has_text="Country")).locator("dd")).to_have_text("–")


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date().isoformat()


def test_a_recorded_session_replays_with_its_markers_and_a_marker_seeks(visit: Visit) -> None:
    page, recorded = visit.page, visit.stack.recorded
    page.goto(visit.stack.url + f"/sessions/{recorded.replay}")
    frame = page.frame_locator(".replay-frame iframe")
    # The page the agent recorded, rebuilt by rrweb's Replayer inside the player's iframe.
    expect(frame.locator("body")).to_contain_text("Ceramic mug no. 0", timeout=30_000)
    expect(frame.locator("button")).to_contain_text("Add to cart")
    meta = page.locator("dl.meta")
    expect(meta).to_contain_text("shop")
    expect(meta.locator("div", has=page.locator("dt", has_text="Events")).locator("dd")).to_have_text(
        str(len(recorded.replay_events)))
    # Recorded behind a trusted proxy (see tests.dashboard_stack): the country of its client address, first seen.
    country = page.get_by_role("region", name="Client and pages").locator(
        "div", has=page.locator("dt", has_text="Country")).locator("dd")
    expect(country).to_have_text(f"Netherlands ({REPLAY_COUNTRY})")
    events = page.get_by_role("complementary", name="Events in this session")
    for text in ("Add to cart", "Cart", bardrr.CUSTOM_TAG, bardrr.ERROR_MESSAGE):
        expect(events).to_contain_text(text)
    ticks = page.locator(".ticks.events .tick")
    expect(ticks).to_have_count(4)
    assert sorted(ticks.evaluate_all("ts => ts.map(t => t.className)")) == [
        "tick click", "tick click", "tick custom", "tick error"]
    screenshot(page, "03-session")

    start = recorded.replay_events[0]["timestamp"]
    custom_at = next(e["timestamp"] for e in recorded.replay_events if e["type"] == 5)
    page.get_by_role("button", name=re.compile(bardrr.CUSTOM_TAG)).click()
    seek = page.get_by_role("slider", name="Seek")
    expect(seek).to_have_value(str(custom_at - start))
    expect(page.locator(".clock")).to_have_text(re.compile(r"^0:01 / 0:0\d$"))
    # The agent's first batch scrolls to 480 px between the button click and the custom event.
    replay_scrolled_to(page, bardrr.scroll(0)["data"]["y"])
    page.get_by_role("button", name=re.compile("Add to cart")).click()
    replay_scrolled_to(page, 0)

    page.get_by_role("button", name="Play").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.get_by_role("combobox", name=re.compile("^Speed")).select_option("8")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play")).to_be_visible()

    # An active session plays too.
    page.goto(visit.stack.url + f"/sessions/{recorded.active}")
    expect(page.locator("dl.meta")).to_contain_text("Active now")
    expect(page.frame_locator(".replay-frame iframe").locator("body")).to_contain_text("Ceramic mug no. 0",
                                                                                        timeout=30_000)


def test_a_long_session_plays_while_it_streams_in_and_all_of_it_arrives(visit: Visit) -> None:
    """3,000 events come in several chunks: the player starts on the first, and the events of the last chunk
    reach the Replayer (a seek to the end shows the scroll recorded there)."""
    page, recorded = visit.page, visit.stack.recorded
    page.goto(visit.stack.url + f"/sessions/{recorded.long}")
    expect(page.frame_locator(".replay-frame iframe").locator("body")).to_contain_text("Ceramic mug no. 0",
                                                                                        timeout=30_000)
    events = recorded.long_events
    length = formatted_offset(events[-1]["timestamp"] - events[0]["timestamp"])
    expect(page.locator(".clock")).to_have_text(re.compile(rf"/ {length}$"), timeout=30_000)
    expect(page.get_by_text("Still receiving events")).to_have_count(0)
    page.get_by_role("button", name=re.compile(LONG_END_TAG)).click()
    replay_scrolled_to(page, LONG_END_SCROLL)
    screenshot(page, "03-session-long")


def formatted_duration(ms: int) -> str:
    hours, rest = divmod(ms // 1000, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def formatted_offset(ms: int) -> str:
    minutes, seconds = divmod(ms // 1000, 60)
    return f"{minutes}:{seconds:02d}"


def test_funnel_lifecycle_and_bad_input_at_its_field(visit: Visit) -> None:
    page, recorded = visit.page, visit.stack.recorded
    page.get_by_role("link", name="Funnels").click()
    expect(page.get_by_text("No funnels yet")).to_be_visible()
    page.get_by_role("link", name="New funnel").click()

    # The API's validation message, at the field it names.
    visit.watch.allow(400, "/v1/funnels")
    page.get_by_role("button", name="Create funnel").click()
    with visit.stack.api() as api:
        refusal = api.post("/v1/funnels", json={"name": "", "filters": [], "steps": [{"kind": "click", "label": ""}]})
    assert refusal.status_code == 400
    expect(page.locator(f"#{_field_id(refusal.json()['field'])}-error")).to_have_text(refusal.json()['message'])
    page.get_by_role("textbox", name=re.compile("^Name")).fill("Checkout")
    page.get_by_label("Step 1 label").fill("Add to cart")
    page.get_by_label("Conversion window").fill("0")
    page.get_by_role("button", name="Create funnel").click()
    expect(page.locator("#funnel-window-error")).to_contain_text("window_seconds")
    expect(page.get_by_label("Conversion window")).to_be_focused()
    screenshot(page, "04-funnel-builder-error")
    page.get_by_label("Conversion window").fill("")
    expect(page.locator("#funnel-window-error")).to_have_count(0)  # an edit clears the message

    page.get_by_role("button", name="+ Add a step").click()
    page.get_by_label("Step 2 kind").select_option("custom")
    page.get_by_label("Step 2 label").fill(bardrr.CUSTOM_TAG)
    page.get_by_role("button", name="+ Add a step").click()
    page.get_by_label("Step 3 label").fill("Cart")
    page.get_by_role("button", name="Move step 3 up").click()
    expect(page.get_by_label("Step 2 label")).to_have_value("Cart")
    page.get_by_role("button", name="Remove step 2").click()
    expect(page.get_by_label("Step 2 label")).to_have_value(bardrr.CUSTOM_TAG)
    expect(page.locator("#labels-click option[value='Add to cart']")).to_have_count(1)  # autocomplete
    screenshot(page, "04-funnel-builder")
    page.get_by_role("button", name="Create funnel").click()

    expect(page).to_have_url(re.compile(r"/funnels/\d+$"))
    steps = page.locator("li.funnel-step")
    completers = 1 + len(recorded.completed)
    expect(page.locator(".summary")).to_contain_text(f"{recorded.ended_count} sessions entered")
    expect(steps.nth(0)).to_contain_text(f"Completed{completers + len(recorded.dropped)}")
    expect(steps.nth(1)).to_contain_text(f"Completed{completers}")
    expect(steps.nth(1)).to_contain_text(f"Dropped here{len(recorded.dropped)}")
    expect(steps.nth(1)).to_contain_text("Median time from previous1.2 s")
    screenshot(page, "05-funnel-results")

    # Edit: only the app "shop" (every funnel session is shop; a third of the list sessions are blog).
    page.get_by_role("link", name="Edit funnel").click()
    expect(page.get_by_label("Step 1 label")).to_have_value("Add to cart")
    page.get_by_role("textbox", name=re.compile("^Name")).fill("Checkout (shop)")
    page.get_by_role("checkbox", name="shop").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Checkout (shop)")).to_be_visible()
    blog = sum(1 for s in recorded.list_sessions if s["app"] == "blog")
    expect(page.locator(".summary")).to_contain_text(f"{recorded.ended_count - blog} sessions entered")
    expect(steps.nth(1)).to_contain_text(f"Completed{completers}")

    # A date range with no sessions.
    page.get_by_label("Sessions started from").fill("2020-01-01")
    page.get_by_label("until (inclusive)").fill("2020-01-02")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"start=2020-01-01&end=2020-01-02"))
    expect(page.get_by_text("No ended session matches")).to_be_visible()

    page.get_by_role("link", name="← Funnels").click()
    row = page.get_by_role("row", name=re.compile("Checkout \\(shop\\)"))
    expect(row).to_be_visible()
    page.get_by_role("button", name="Delete Checkout (shop)").click()
    screenshot(page, "04-funnels-delete-confirmation")
    page.get_by_role("button", name="Cancel").click()
    expect(row).to_be_visible()
    page.get_by_role("button", name="Delete Checkout (shop)").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_text("No funnels yet")).to_be_visible()


def _field_id(parameter: str) -> str:
    match = re.fullmatch(r"steps\[(\d+)\]\.(kind|label)", parameter)
    if match:
        return f"step-{match[1]}-{match[2]}"
    return {"name": "funnel-name", "window_seconds": "funnel-window"}[parameter]


def test_completed_and_dropped_sessions_open_at_their_moment(visit: Visit) -> None:
    page, recorded = visit.page, visit.stack.recorded
    with visit.stack.api() as api:
        created = api.post("/v1/funnels", json={"name": "Cart to checkout", "filters": [], "steps": [
            {"kind": "click", "label": "Add to cart"}, {"kind": "custom", "label": bardrr.CUSTOM_TAG}]})
        assert created.status_code == 201, created.text
        funnel_id = created.json()["id"]
    try:
        page.goto(visit.stack.url + f"/funnels/{funnel_id}")
        step2 = page.locator("li.funnel-step").nth(1)
        step2.get_by_role("button", name=re.compile("^Completed sessions")).click()
        links = step2.locator(".step-sessions a")
        expect(links).to_have_count(1 + len(recorded.completed))
        screenshot(page, "05-funnel-results-sessions")
        href = links.first.get_attribute("href") or ""
        session_id = href.split("/")[2].split("?")[0]
        events = recorded.completed.get(session_id) or recorded.replay_events
        at = int(parse_qs(urlsplit(href).query)["at"][0])
        custom_at = next(e["timestamp"] for e in events if e["type"] == 5)
        assert at == custom_at  # completed step 2: when step 2 was reached
        links.first.click()
        expect(page).to_have_url(re.compile(rf"/sessions/{session_id}\?at={at}$"))
        expect(page.get_by_role("slider", name="Seek")).to_have_value(str(at - events[0]["timestamp"]),
                                                                       timeout=30_000)
        replay_scrolled_to(page, bardrr.scroll(0)["data"]["y"])  # step 2 comes after the scroll
        screenshot(page, "03-session-at-funnel-step")

        page.go_back()
        step2 = page.locator("li.funnel-step").nth(1)
        step2.get_by_role("button", name=re.compile("^Dropped sessions")).click()
        links = step2.locator(".step-sessions a")
        expect(links).to_have_count(len(recorded.dropped))
        href = links.first.get_attribute("href") or ""
        session_id = href.split("/")[2].split("?")[0]
        events = recorded.dropped[session_id]
        click_at = next(e["timestamp"] for e in events if e.get("conversionData", {}).get("eventType") == "click")
        assert int(parse_qs(urlsplit(href).query)["at"][0]) == click_at  # dropped: its last step's moment
        expect(links.first).to_contain_text("last reached step 1")
        links.first.click()
        expect(page.get_by_role("slider", name="Seek")).to_have_value(str(click_at - events[0]["timestamp"]),
                                                                       timeout=30_000)
        replay_scrolled_to(page, 0)  # the click on the button comes before the scroll
        # Back to the results: the same list is open (its state is in the URL).
        page.go_back()
        expect(page.locator("li.funnel-step").nth(1).locator(".step-sessions a")).to_have_count(len(recorded.dropped))
    finally:
        with visit.stack.api() as api:
            api.delete(f"/v1/funnels/{funnel_id}")


def test_a_funnel_with_an_order_an_exclusion_and_a_breakdown(visit: Visit) -> None:
    """Built through the builder (a bad exclusion range first: the API's message at its field), then its results:
    the breakdown rows, each step's times and time-to-convert histogram, the trend; a breakdown row's dropped
    sessions open at their drop-off moment."""
    page, stack, recorded = visit.page, visit.stack, visit.stack.recorded
    page.goto(stack.url + "/funnels/new")
    page.get_by_role("textbox", name=re.compile("^Name")).fill("Cart to checkout, any order, by browser")
    page.get_by_label("Step 1 label").fill(bardrr.BUTTON_LABEL)
    page.get_by_role("button", name="+ Add a step").click()
    page.get_by_label("Step 2 kind").select_option("custom")
    page.get_by_label("Step 2 label").fill(bardrr.CUSTOM_TAG)
    order = page.get_by_label("Step order")
    expect(order).to_have_value("ordered")
    order.select_option("any")
    expect(page.locator("#funnel-order-hint")).to_contain_text("in any order")

    page.get_by_role("button", name="+ Add an exclusion").click()
    page.get_by_label("Exclusion 1 kind").select_option("custom")
    expect(page.locator(f"#labels-custom option[value='{LONG_END_TAG}']")).to_have_count(1)  # the steps' autocomplete
    page.get_by_label("Exclusion 1 label").fill(LONG_END_TAG)
    expect(page.get_by_label("Exclusion 1: before")).to_have_value("2")  # a new exclusion spans the funnel
    assert page.get_by_label("Exclusion 1: after").locator("option").all_inner_texts() == ["step 1", "step 2"]
    page.get_by_label("Exclusion 1: after").select_option("2")
    page.get_by_label("Exclusion 1: before").select_option("1")
    page.get_by_label("Break down by").select_option("browser")
    page.get_by_label("Top values").fill("2")

    # A range that runs backwards: the API's message, at the field it names.
    visit.watch.allow(400, "/v1/funnels")
    page.get_by_role("button", name="Create funnel").click()
    steps = [{"kind": "click", "label": bardrr.BUTTON_LABEL}, {"kind": "custom", "label": bardrr.CUSTOM_TAG}]
    exclusion = {"kind": "custom", "label": LONG_END_TAG, "from_step": 2, "to_step": 1}
    with stack.api() as api:
        refusal = api.post("/v1/funnels", json={"name": "x", "filters": [], "steps": steps, "order": "any",
                                                "exclusions": [exclusion],
                                                "breakdown": {"property": "browser", "limit": 2}})
    assert refusal.status_code == 400 and refusal.json()["field"] == "exclusions[0].to_step", refusal.text
    expect(page.locator("#exclusion-0-to-error")).to_have_text(refusal.json()["message"])
    expect(page.get_by_label("Exclusion 1: before")).to_be_focused()
    expect(page.get_by_label("Exclusion 1: before")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "04-funnel-builder-exclusion-error")
    page.get_by_label("Exclusion 1: after").select_option("1")
    expect(page.locator("#exclusion-0-to-error")).to_have_count(0)
    page.get_by_label("Exclusion 1: before").select_option("2")
    page.get_by_label("Top values").fill("0")  # out of range: the API names breakdown.limit
    page.get_by_role("button", name="Create funnel").click()
    expect(page.locator("#funnel-breakdown-limit-error")).to_contain_text("breakdown.limit")
    expect(page.get_by_label("Top values")).to_be_focused()
    page.get_by_label("Top values").fill("2")
    screenshot(page, "04-funnel-builder-order-exclusion-breakdown")
    page.get_by_role("button", name="Create funnel").click()

    expect(page).to_have_url(re.compile(r"/funnels/\d+$"))
    funnel_id = page.url.rsplit("/", 1)[1]
    try:
        with stack.api() as api:
            stored = api.get(f"/v1/funnels/{funnel_id}").json()
            results = api.get(f"/v1/funnels/{funnel_id}/results", params={"ids_limit": 0}).json()
        assert stored["order"] == "any"
        assert stored["exclusions"] == [{**exclusion, "from_step": 1, "to_step": 2}]
        assert stored["breakdown"] == {"property": "browser", "limit": 2}
        completers = 1 + len(recorded.completed)
        expect(page.locator(".summary")).to_contain_text(f"{recorded.ended_count} sessions entered")
        expect(page.locator(".summary")).to_contain_text("Steps: any order")
        expect(page.locator(".excluded")).to_contain_text("0 sessions were taken out by the exclusion")
        step2 = page.locator("li.funnel-step").nth(1)
        expect(step2).to_contain_text(f"Completed{completers}")
        expect(step2).to_contain_text("Median time from previous1.2 s · p90 1.2 s")
        expect(step2).to_contain_text("Median time from step 11.2 s · p90 1.2 s")

        # Step 2's time to convert: ten labelled bars that count every session that completed it.
        bars = step2.get_by_role("figure", name="Time to convert from step 1").locator("li")
        expect(bars).to_have_count(10)
        counted = sum(int(re.findall(r": (\d+) sessions?$", text)[0]) for text in bars.all_text_contents())
        assert counted == completers
        expect(page.locator("li.funnel-step").nth(0).locator("figure.histogram")).to_have_count(0)

        # The trend: a bar per day, and the same figures as a table.
        trend = page.get_by_role("region", name=re.compile("^Conversion by (day|week)"))
        points = results["trend"]["points"]
        assert points and sum(p["entered"] for p in points) == recorded.ended_count
        expect(trend.locator("svg g")).to_have_count(len(points))
        trend.get_by_text("As a table").click()
        expect(trend.locator("tbody tr")).to_have_count(len(points))
        expect(trend.locator("tbody tr").first).to_contain_text(points[0]["start"])

        # The breakdown: the top two browsers by entered sessions, then the others; "" reads "(none)".
        table = page.locator("table.breakdown-table")
        by_browser = results["breakdown"]
        assert [(r["value"], r["other"]) for r in by_browser] == [("", False), ("Chrome", False), (None, True)]
        expect(table.locator("tbody tr th")).to_have_text(["(none)", "Chrome", "Other"])
        none_row = table.locator("tbody tr").nth(0)
        unknown = by_browser[0]
        expect(none_row.locator("td").nth(0)).to_have_text(str(unknown["entered"]))
        expect(none_row.get_by_role("button", name=f"(none): {completers} completed step 2")).to_be_enabled()
        expect(table.locator("tbody tr").nth(2).locator("td").nth(0)).to_have_text(str(by_browser[2]["entered"]))
        screenshot(page, "05-funnel-results-breakdown")
        assert page.evaluate(UNNAMED_CONTROLS) == []

        # The "(none)" row's dropped sessions of step 2, listed with breakdown_value=, open at their drop-off.
        with page.expect_request(lambda r: "/steps/2/dropped" in r.url) as listing:
            page.get_by_role("button", name=f"(none): {len(recorded.dropped)} dropped at step 2").click()
        assert parse_qs(urlsplit(listing.value.url).query, keep_blank_values=True)["breakdown_value"] == [""]
        expect(page).to_have_url(re.compile(r"list=2-dropped&row=v%3A"))
        links = page.locator(".breakdown-sessions .step-sessions a")
        expect(links).to_have_count(len(recorded.dropped))
        expect(page.locator(".breakdown-sessions h3")).to_contain_text("Browser (none): dropped at step 2")
        screenshot(page, "05-funnel-results-breakdown-sessions")
        href = links.first.get_attribute("href") or ""
        session_id = href.split("/")[2].split("?")[0]
        events = recorded.dropped[session_id]
        click_at = next(e["timestamp"] for e in events if e.get("conversionData", {}).get("eventType") == "click")
        assert int(parse_qs(urlsplit(href).query)["at"][0]) == click_at  # its last step's moment
        expect(links.first).to_contain_text("last reached step 1")
        links.first.click()
        expect(page.get_by_role("slider", name="Seek")).to_have_value(str(click_at - events[0]["timestamp"]),
                                                                       timeout=30_000)
        replay_scrolled_to(page, 0)  # the click on the button comes before the scroll
        screenshot(page, "03-session-at-breakdown-drop-off")
        page.go_back()
        expect(page.locator(".breakdown-sessions .step-sessions a")).to_have_count(len(recorded.dropped))

        # The other row's step 1 drop-outs (sessions that never clicked): breakdown_other=true, from the start.
        with page.expect_request(lambda r: "/steps/1/dropped" in r.url) as listing:
            page.get_by_role("button", name=f"Other: {by_browser[2]['entered']} dropped at step 1").click()
        assert parse_qs(urlsplit(listing.value.url).query)["breakdown_other"] == ["true"]
        others = page.locator(".breakdown-sessions .step-sessions a")
        expect(others).to_have_count(by_browser[2]["entered"])
        expect(others.first).to_contain_text("never reached step 1")
        expected = {d.session_id[:8] for d in DESCRIBED if d.browser not in ("", "Chrome")}
        assert {text.split()[0] for text in others.all_inner_texts()} == expected

        # The builder reads it all back.
        page.get_by_role("link", name="Edit funnel").click()
        expect(page.get_by_label("Step order")).to_have_value("any")
        expect(page.get_by_label("Exclusion 1 label")).to_have_value(LONG_END_TAG)
        expect(page.get_by_label("Exclusion 1: after")).to_have_value("1")
        expect(page.get_by_label("Exclusion 1: before")).to_have_value("2")
        expect(page.get_by_label("Break down by")).to_have_value("browser")
        expect(page.get_by_label("Top values")).to_have_value("2")
        assert page.evaluate(UNNAMED_CONTROLS) == []
    finally:
        with stack.api() as api:
            api.delete(f"/v1/funnels/{funnel_id}")


def test_an_exclusion_takes_sessions_out_and_the_results_say_how_many(visit: Visit) -> None:
    """The agent's first batch clicks the "Cart" link between "Add to cart" and the custom event: as an exclusion
    between the two steps it takes every session that clicked "Add to cart" out of the funnel."""
    page, stack, recorded = visit.page, visit.stack, visit.stack.recorded
    with stack.api() as api:
        created = api.post("/v1/funnels", json={"name": "No cart link", "filters": [], "steps": [
            {"kind": "click", "label": bardrr.BUTTON_LABEL}, {"kind": "custom", "label": bardrr.CUSTOM_TAG}],
            "exclusions": [{"kind": "click", "label": bardrr.LINK_LABEL, "from_step": 1, "to_step": 2}]})
        assert created.status_code == 201, created.text
        funnel_id = created.json()["id"]
    try:
        page.goto(stack.url + f"/funnels/{funnel_id}")
        clickers = 1 + len(recorded.completed) + len(recorded.dropped)
        expect(page.locator(".excluded")).to_contain_text(f"{clickers} sessions were taken out by the exclusion")
        expect(page.locator(".excluded")).to_contain_text(f"Click on “{bardrr.LINK_LABEL}” between steps 1 and 2")
        expect(page.locator(".summary")).to_contain_text(f"{recorded.ended_count - clickers} sessions entered")
        screenshot(page, "05-funnel-results-excluded")
    finally:
        with stack.api() as api:
            api.delete(f"/v1/funnels/{funnel_id}")


def test_every_control_is_labelled_and_reachable_by_keyboard(visit: Visit) -> None:
    page, stack = visit.page, visit.stack
    with stack.api() as api:
        funnel_id = api.post("/v1/funnels", json={"name": "Keys", "filters": [], "steps": [
            {"kind": "click", "label": "Add to cart"}]}).json()["id"]
    try:
        for path in ("/sessions", "/sessions?view=active", f"/sessions/{stack.recorded.replay}", "/funnels",
                     "/funnels/new", f"/funnels/{funnel_id}", f"/funnels/{funnel_id}/edit"):
            page.goto(stack.url + path)
            settled(page)
            assert page.evaluate(UNNAMED_CONTROLS) == [], path
        # Tab order on the sessions page reaches the filters, the sort buttons, a session and the pager.
        page.goto(stack.url + "/sessions")
        shown(page)
        reached = []
        for _ in range(120):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("document.activeElement.getAttribute('aria-label') || "
                                         "document.activeElement.textContent.trim()"))
        for wanted in ("Sessions", "Funnels", "Sign out", "Active now", "Apply", "Sort by duration", "Next page →"):
            assert any(text.startswith(wanted) for text in reached), (wanted, reached)
        page.goto(stack.url + "/sessions")
        shown(page)
        page.locator("table.sessions tbody a").first.focus()
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/sessions/[0-9a-f-]{36}$"))
    finally:
        with stack.api() as api:
            api.delete(f"/v1/funnels/{funnel_id}")



def test_a_funnel_on_a_device_type_with_a_rage_click_step(visit: Visit) -> None:
    page, stack = visit.page, visit.stack
    page.goto(stack.url + "/funnels/new")
    page.get_by_role("textbox", name=re.compile("^Name")).fill("Rage on desktop")
    page.get_by_role("group", name="Devices").get_by_role("checkbox", name="desktop").check()
    page.get_by_label("Step 1 kind").select_option("rage_click")
    expect(page.locator(f"#labels-rage_click option[value='{RAGE_LABEL}']")).to_have_count(1)  # autocomplete
    page.get_by_label("Step 1 label").fill(RAGE_LABEL)

    # A bad value: the API's message at its field.
    visit.watch.allow(400, "/v1/funnels")
    page.get_by_label("Min pages").fill("-1")
    page.get_by_role("button", name="Create funnel").click()
    with stack.api() as api:
        refusal = api.post("/v1/funnels", json={"name": "x", "steps": [{"kind": "rage_click", "label": RAGE_LABEL}],
                                                "filters": [{"type": "device_type", "types": ["desktop"]},
                                                            {"type": "pages", "min_pages": -1, "max_pages": None}]})
    assert refusal.status_code == 400 and refusal.json()["field"].startswith("filters[1]"), refusal.text
    expect(page.locator("#funnel-min-pages-error")).to_have_text(refusal.json()["message"])
    expect(page.get_by_label("Min pages")).to_be_focused()
    screenshot(page, "04-funnel-builder-signals")
    page.get_by_label("Min pages").fill("")
    page.get_by_role("button", name="Create funnel").click()

    expect(page).to_have_url(re.compile(r"/funnels/\d+$"))
    funnel_id = page.url.rsplit("/", 1)[1]
    try:
        desktop = [described("replays"), described("mac")]  # the recorded sessions' User-Agent names no device
        expect(page.locator(".summary")).to_contain_text(f"{len(desktop)} sessions entered")
        step = page.locator("li.funnel-step").nth(0)
        expect(step.get_by_role("heading")).to_have_text(f"1 Rage click on “{RAGE_LABEL}”")
        expect(step).to_contain_text("Completed1")
        screenshot(page, "05-funnel-results-rage-click")
        with stack.api() as api:
            stored = api.get(f"/v1/funnels/{funnel_id}").json()
        assert stored["filters"] == [{"type": "device_type", "types": ["desktop"]}]
        assert stored["steps"] == [{"kind": "rage_click", "label": RAGE_LABEL}]
        page.get_by_role("link", name="Edit funnel").click()  # the builder reads it back
        expect(page.get_by_label("Step 1 kind")).to_have_value("rage_click")
        expect(page.get_by_role("group", name="Devices").get_by_role("checkbox", name="desktop")).to_be_checked()
    finally:
        with stack.api() as api:
            api.delete(f"/v1/funnels/{funnel_id}")
