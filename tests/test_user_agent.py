"""The client Bard reads from a ``User-Agent``: real strings of the common browsers, phones, tablets and bots, and
what is not a browser at all. No services: the parser is ua-parser with uap-core's rules, run in process."""

from __future__ import annotations

import pytest

from agent_api import user_agents
from agent_api.user_agents import UNKNOWN_CLIENT, ClientDevice, UserAgentReader, user_agent_reader

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")

CASES = [
    # Desktop
    pytest.param(CHROME_WINDOWS, ("Chrome", 131, "Windows", "desktop"), id="chrome-windows"),
    pytest.param("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/130.0.0.0 Safari/537.36", ("Chrome", 130, "Mac OS X", "desktop"), id="chrome-macos"),
    pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
                 ("Firefox", 133, "Windows", "desktop"), id="firefox-windows"),
    pytest.param("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                 ("Firefox", 128, "Linux", "desktop"), id="firefox-linux"),
    pytest.param("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                 ("Firefox", 133, "Ubuntu", "desktop"), id="firefox-ubuntu"),
    pytest.param("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/18.1 Safari/605.1.15", ("Safari", 18, "Mac OS X", "desktop"), id="safari-macos"),
    pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86", ("Edge", 131, "Windows", "desktop"),
                 id="edge-windows"),
    pytest.param("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/131.0.0.0 Safari/537.36", ("Chrome", 131, "Chrome OS", "desktop"), id="chrome-chromeos"),
    # Phones
    pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/18.1 Mobile/15E148 Safari/604.1", ("Mobile Safari", 18, "iOS", "mobile"),
                 id="iphone-safari"),
    pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", ("Chrome Mobile iOS", 131, "iOS", "mobile"),
                 id="iphone-chrome"),
    pytest.param("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
                 "Mobile Safari/537.36", ("Chrome Mobile", 131, "Android", "mobile"), id="android-chrome-reduced"),
    pytest.param("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/131.0.6778.81 Mobile Safari/537.36", ("Chrome Mobile", 131, "Android", "mobile"),
                 id="android-chrome-pixel"),
    pytest.param("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
                 ("Samsung Internet", 26, "Android", "mobile"), id="android-samsung-internet"),
    pytest.param("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
                 ("Firefox Mobile", 133, "Android", "mobile"), id="android-firefox"),
    # Tablets
    pytest.param("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.6 Mobile/15E148 Safari/604.1", ("Mobile Safari", 17, "iOS", "tablet"), id="ipad-safari"),
    pytest.param("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/131.0.0.0 Safari/537.36", ("Chrome", 131, "Android", "tablet"), id="android-galaxy-tab"),
    pytest.param("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
                 "Safari/537.36", ("Chrome", 131, "Android", "tablet"), id="android-tablet-reduced"),
    # Bots: kept, marked
    pytest.param("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                 ("Googlebot", 2, "", "bot"), id="googlebot"),
    pytest.param("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
                 "+http://www.google.com/bot.html)", ("Googlebot", 2, "Android", "bot"), id="googlebot-smartphone"),
    pytest.param("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
                 ("bingbot", 2, "", "bot"), id="bingbot"),
    pytest.param("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
                 "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
                 ("bingbot", 2, "", "bot"), id="bingbot-chrome"),
    pytest.param("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "HeadlessChrome/131.0.0.0 Safari/537.36", ("HeadlessChrome", 131, "Linux", "bot"),
                 id="headless-chrome-crawler"),
    pytest.param("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
                 ("AhrefsBot", 7, "", "bot"), id="ahrefsbot"),
    # Not a browser: what the parser names, and no device type
    pytest.param("curl/8.5.0", ("curl", 8, "", ""), id="curl"),
    pytest.param("python-requests/2.32.3", ("Python Requests", 2, "", ""), id="python-requests"),
    # Empty and garbage: empty strings, never an error
    pytest.param("", ("", 0, "", ""), id="empty"),
    pytest.param("   ", ("", 0, "", ""), id="blank"),
    pytest.param("\x00\x01 \u2603 not a browser ((((", ("", 0, "", ""), id="garbage"),
    pytest.param("Mozilla/5.0 " + "x" * 20_000, ("", 0, "", ""), id="twenty-thousand-characters"),
    pytest.param("}{" * 600, ("", 0, "", ""), id="brackets"),
]


@pytest.mark.parametrize(("header", "expected"), CASES)
def test_the_client_read_from_a_user_agent(header: str, expected: tuple[str, int, str, str]) -> None:
    assert user_agent_reader().describe(header) == ClientDevice(*expected)


def test_no_header_is_unknown() -> None:
    assert user_agent_reader().describe(None) == UNKNOWN_CLIENT
    assert not UNKNOWN_CLIENT.is_known


def test_results_are_cached_per_distinct_string() -> None:
    reader = UserAgentReader(cache_size=2)
    other = CHROME_WINDOWS.replace("131", "130")
    assert reader.describe(CHROME_WINDOWS) is reader.describe(CHROME_WINDOWS)
    reader.describe(other)
    info = reader._describe_cached.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, 2)
    reader.describe("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert reader._describe_cached.cache_info().currsize == 2, "the cache is bounded"


def test_only_the_first_characters_of_a_long_header_are_read() -> None:
    reader = UserAgentReader()
    reader.describe(CHROME_WINDOWS + " " + "y" * 50_000)
    reader.describe(CHROME_WINDOWS + " " + "y" * 60_000)
    info = reader._describe_cached.cache_info()
    assert (info.hits, info.misses) == (1, 1), "both headers are the same first 1,024 characters"
    assert reader.describe(CHROME_WINDOWS + " " + "y" * 50_000).browser == "Chrome"


@pytest.mark.parametrize(
    ("major", "expected"),
    [("131", 131), ("0", 0), (None, 0), ("", 0), ("12a", 0), ("\u0663", 0), ("999999", 999_999), ("1000000", 0)],
    ids=["plain", "zero", "none", "empty", "not-a-number", "arabic-digit", "largest", "too-large"],
)
def test_a_major_version_is_a_small_number_or_zero(major: str | None, expected: int) -> None:
    assert user_agents._major(major) == expected


def test_names_are_capped_and_hold_no_nul() -> None:
    assert user_agents._name("Other") == ""
    assert user_agents._name("Bad\x00Bot") == "BadBot"
    assert user_agents._name("b" * 500) == "b" * user_agents.MAX_NAME_CHARS


def test_a_parser_failure_is_an_unknown_client(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    reader = UserAgentReader()

    def broken(user_agent: str) -> None:
        raise RuntimeError("a bug in the parser")

    monkeypatch.setattr(reader._parser, "parse", broken)
    assert reader.describe(CHROME_WINDOWS) == UNKNOWN_CLIENT
    assert "ua-parser failed" in caplog.text
