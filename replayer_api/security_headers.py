"""Headers every replayer API response carries, and the Content-Security-Policy of its HTML pages.

The policy lets a page run only Bard's own scripts and talk only to Bard, and no other site may frame it.
Decided, not defaulted: the replay rebuilds the recorded page inside an iframe that inherits this policy, and
that page's images, fonts and media live on the recorded site's hosts, so those passive types may come from
anywhere (``https:``/``http:``, ``data:``, ``blob:``); nothing active (scripts, frames, plugins, connections) may.
Styles may be inline: rrweb rebuilds the recorded page's stylesheets as ``<style>`` elements.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PASSIVE = "'self' data: blob: https: http:"
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    f"img-src {PASSIVE}",
    f"font-src {PASSIVE}",
    f"media-src {PASSIVE}",
    "connect-src 'self'",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


class SecurityHeaders:
    """ASGI middleware (streamed responses pass through untouched): :data:`ALWAYS` on every response, and the
    policy on every HTML one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            await send(message)

        await self.app(scope, receive, with_headers)
