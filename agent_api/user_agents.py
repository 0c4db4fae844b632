"""The browser, OS and device type of a ``/record`` request's ``User-Agent``, read with ua-parser.

ua-parser is the uap project's parser: its rules (``ua-parser-builtins``, uap-core's regexes, released
monthly) run in its Rust matcher (``ua-parser-rs``), ~55 us a string on a 2-core machine (1-3 ms with the pure
Python matcher, which is why the Rust one is pinned and asked for by name: a missing accelerator fails at start
instead of slowing every batch). The matcher costs ~0.4 s to build and ~26 MB per process. A session's batches
all carry the same string, so results are cached per distinct string (:data:`CACHE_SIZE`); a hit costs ~0.5 us.

What is stored (``sessions`` in ClickHouse, ``active_sessions`` in PostgreSQL):

- ``browser`` and ``os``: uap-core's family names as the parser gives them (``Chrome``, ``Mobile Safari``,
  ``Edge``, ``Mac OS X``, ``Windows``, ``Android``, ``iOS``...); ``''`` where it knows none (its ``Other``);
- ``browser_major``: the browser's major version, 0 when unknown;
- ``device_type``, read from what the parser found (no rules of Bard's own on the raw string):
  ``bot`` when uap-core names the device ``Spider`` (its mark for crawlers: Googlebot, bingbot, AhrefsBot...) or
  the browser is a headless automation one (``HeadlessChrome``, ``PhantomJS``), then ``tablet`` (iPad, Kindle,
  Android without ``Mobile``, which uap-core brands ``Generic_Android_Tablet``), ``mobile`` (iPhone, Android,
  the other phone systems), ``desktop`` (Windows, macOS, Chrome OS, Linux and the BSDs), else ``''``
  (a TV, a console, a script, an empty or garbage string).

Known limits: iPadOS Safari sends the desktop macOS string by default, so such iPads are ``desktop``; a bot that
sends a browser's exact string is that browser.
"""

from __future__ import annotations

import functools
import logging
from typing import NamedTuple

import ua_parser
from ua_parser.regex import Resolver

log = logging.getLogger(__name__)

CACHE_SIZE = 4096
"""Distinct User-Agent strings remembered per process (a few MB at most)."""
MAX_USER_AGENT_CHARS = 1024
"""Only this much of a header is read: real browsers send under 500 characters."""
MAX_NAME_CHARS = 100
"""A browser or OS name is cut here (uap-core copies some bot names from the string itself)."""
MAX_BROWSER_MAJOR = 999_999
"""A larger major version is no version (0): it fits PostgreSQL's integer and ClickHouse's UInt32."""

UNKNOWN = "Other"  # uap-core's name for what it does not know

BOT_DEVICE = "Spider"
AUTOMATED_BROWSERS = frozenset({"HeadlessChrome", "PhantomJS"})
TABLET_DEVICES = frozenset({"iPad", "Kindle", "BlackBerry Playbook", "Generic Tablet", "HP TouchPad",
                            "Microsoft Surface RT"})
TABLET_DEVICE_PREFIXES = ("Kindle Fire",)
TABLET_BRANDS = frozenset({"Generic_Android_Tablet"})
TABLET_OSES = frozenset({"BlackBerry Tablet OS"})
MOBILE_DEVICES = frozenset({"iPhone", "iPod", "iOS-Device", "Generic Smartphone", "Generic Feature Phone"})
MOBILE_OSES = frozenset({
    "Android", "iOS", "Windows Phone", "Windows Mobile", "Firefox OS", "KaiOS", "BlackBerry OS", "Symbian OS",
    "Symbian^3", "Symbian^3 Anna", "Symbian^3 Belle", "Nokia Series 40", "Nokia Series 30 Plus", "Bada", "Sailfish",
})
DESKTOP_OSES = frozenset({
    "Windows", "Mac OS X", "Mac OS", "Chrome OS", "Linux", "Ubuntu", "Kubuntu", "Lubuntu", "Linux Mint", "Debian",
    "Fedora", "Red Hat", "CentOS", "openSUSE", "SUSE", "Mandriva", "Mageia", "Gentoo", "Slackware", "Arch Linux",
    "PCLinuxOS", "Puppy", "FreeBSD", "OpenBSD", "NetBSD", "Solaris",
})


class ClientDevice(NamedTuple):
    browser: str
    browser_major: int
    os: str
    device_type: str  # "desktop", "mobile", "tablet", "bot" or ""

    @property
    def is_known(self) -> bool:
        return bool(self.browser or self.os or self.device_type)


UNKNOWN_CLIENT = ClientDevice("", 0, "", "")


class UserAgentReader:
    """Reads User-Agent strings; one per process (:func:`user_agent_reader`), as building the matcher from
    uap-core's rules takes ~0.4 s."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._parser = ua_parser.Parser(Resolver(ua_parser.load_lazy_builtins()))
        self._describe_cached = functools.lru_cache(maxsize=cache_size)(self._describe)

    def describe(self, user_agent: str | None) -> ClientDevice:
        """The client this header names; :data:`UNKNOWN_CLIENT` for none, an empty or a garbage one."""
        if not user_agent:
            return UNKNOWN_CLIENT
        return self._describe_cached(user_agent[:MAX_USER_AGENT_CHARS])

    def _describe(self, user_agent: str) -> ClientDevice:
        try:
            result = self._parser.parse(user_agent).with_defaults()
        except Exception:
            # A bug of the parser's on one odd string must not refuse the batch: that string is unknown.
            log.warning("ua-parser failed on a User-Agent of %d characters; kept as unknown", len(user_agent),
                        exc_info=True)
            return UNKNOWN_CLIENT
        browser, os, device = result.user_agent, result.os, result.device
        return ClientDevice(
            browser=_name(browser.family),
            browser_major=_major(browser.major),
            os=_name(os.family),
            device_type=_device_type(browser.family, os.family, device.family, device.brand),
        )


@functools.cache
def user_agent_reader() -> UserAgentReader:
    """The process's reader, built on first use (the agent API builds it in its lifespan, before serving)."""
    return UserAgentReader()


def _name(family: str) -> str:
    if family == UNKNOWN:
        return ""
    return family.replace("\x00", "")[:MAX_NAME_CHARS]  # PostgreSQL text holds no NUL


def _major(major: str | None) -> int:
    if major is None or not major.isascii() or not major.isdigit():
        return 0
    value = int(major)
    return value if value <= MAX_BROWSER_MAJOR else 0


def _device_type(browser: str, os: str, device: str, brand: str | None) -> str:
    if device == BOT_DEVICE or browser in AUTOMATED_BROWSERS:
        return "bot"
    if device in TABLET_DEVICES or device.startswith(TABLET_DEVICE_PREFIXES) or brand in TABLET_BRANDS \
            or os in TABLET_OSES:
        return "tablet"
    if device in MOBILE_DEVICES or os in MOBILE_OSES:
        return "mobile"
    if os in DESKTOP_OSES:
        return "desktop"
    return ""
