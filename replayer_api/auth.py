"""Access to the dashboard API: the dashboard token as a bearer credential, or a session cookie for browsers.

``POST /login`` takes the token (form or JSON) and answers with a signed cookie: ``<issued_at>.<hmac>``, the HMAC
(SHA-256) of the issue time under a key derived from the token, so changing the token ends every session, and
nothing is stored server-side. The cookie is HttpOnly and SameSite=Lax (a cross-site page cannot post with it).
Every comparison of a secret is constant-time. Only health, metrics and login are open. Sign-in attempts are rate
limited per client address (``BARD_LOGIN_RATE_PER_MINUTE``; the address as :mod:`bard.client_address` picks it,
so behind a proxy named in ``BARD_TRUSTED_PROXIES`` each client has its own bucket), so the token cannot be
guessed at speed.

A cookie travels with every request the browser makes, whoever's page asks, and SameSite=Lax still lets a page
on another port or subdomain of the same site send it. So a write (POST, PUT, PATCH, DELETE) that a cookie
authorizes must come from a page of this server's own origin, or of one in ``BARD_REPLAYER_CORS_ORIGINS``: its
``Origin`` (or, failing that, ``Referer``) must say so, or it is a 403. A request with neither header is no
browser's, so no forgery (browsers send ``Origin`` on every cross-origin write). A bearer token is never
ambient, so requests that carry one are not checked.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from urllib.parse import parse_qs, quote, urlsplit

import msgspec
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bard.client_address import ClientAddresses
from bard.errors import error_body
from bard.rate_limit import TokenBucketLimiter, retry_after_seconds
from bard.settings import Settings, split_origins
from replayer_api.parameters import limited_body

COOKIE_NAME = "bard_session"
COOKIE_MAX_AGE = 7 * 24 * 3600
# /metrics: a scraper carries no cookie, and the metrics hold no user data (bard.metrics says why).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/login", "/logout"})
API_PREFIXES = ("/api/", "/v1/")
MAX_LOGIN_BODY = 16 * 1024
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A few typos in a row are fine; a guessing loop is not.
LOGIN_BURST = 10


class Credentials:
    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the replayer API needs BARD_DASHBOARD_TOKEN (bard up generates one)")
        self._token = token.encode()
        self._cookie_key = hashlib.sha256(b"bard dashboard cookie\0" + self._token).digest()

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._token)

    def issue_cookie(self, now: float | None = None) -> str:
        issued = str(int(now if now is not None else time.time()))
        return f"{issued}.{self._sign(issued)}"

    def cookie_valid(self, value: str, now: float | None = None) -> bool:
        issued, _, signature = value.partition(".")
        if not issued.isdigit() or not hmac.compare_digest(signature.encode(), self._sign(issued).encode()):
            return False
        age = (now if now is not None else time.time()) - int(issued)
        return -60 <= age <= COOKIE_MAX_AGE

    def _sign(self, issued: str) -> str:
        return hmac.new(self._cookie_key, issued.encode(), hashlib.sha256).hexdigest()

    def allows(self, headers: Headers, cookies: dict[str, str]) -> str | None:
        """How the request is authorized: ``"bearer"``, ``"cookie"``, or ``None`` (it is not)."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token and self.token_matches(token.strip()):
            return "bearer"
        cookie = cookies.get(COOKIE_NAME)
        return "cookie" if cookie is not None and self.cookie_valid(cookie) else None


class RequireCredentials:
    """ASGI middleware: a request without a valid credential gets a 401 (API paths) or the login page (the
    served dashboard). A pure ASGI middleware, so streamed responses pass through untouched."""

    def __init__(self, app: ASGIApp, credentials: Credentials, trusted_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.credentials = credentials
        self.trusted_origins = frozenset(origin.rstrip("/").lower() for origin in trusted_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        how = self.credentials.allows(request.headers, request.cookies)
        if how == "cookie" and scope["method"] in UNSAFE_METHODS and not self._from_own_page(request.headers):
            forged = JSONResponse(
                error_body("forbidden_origin", "Origin: a write with the session cookie must come from this "
                           "server's own pages (or an origin in BARD_REPLAYER_CORS_ORIGINS)", field="Origin"),
                status_code=403)
            await forged(scope, receive, send)
            return
        if how is not None:
            await self.app(scope, receive, send)
            return
        response: Response
        if scope["path"].startswith(API_PREFIXES) or scope["path"] in ("/api", "/v1"):
            response = JSONResponse(
                error_body("unauthorized", "authentication required: send Authorization: Bearer "
                           "<BARD_DASHBOARD_TOKEN> or log in at /login for a session cookie"),
                status_code=401, headers={"WWW-Authenticate": "Bearer"},
            )
        else:
            target = scope["path"] + ("?" + request.url.query if request.url.query else "")
            response = RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)
        await response(scope, receive, send)

    def _from_own_page(self, headers: Headers) -> bool:
        source = headers.get("origin") or headers.get("referer")
        if source is None:
            return True  # no browser's request (browsers send Origin on every cross-origin write)
        parts = urlsplit(source)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if origin in self.trusted_origins:
            return True
        # The page's host and port against the Host it sent here; the scheme may differ behind a TLS proxy.
        return bool(parts.netloc) and parts.netloc.lower() == headers.get("host", "").lower()


def _safe_next(target: str | None) -> str:
    # Only a path on this server: never an open redirect to another host.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_page(next_path: str = "/", problem: str = "", status_code: int = 200) -> HTMLResponse:
    message = f'<p class="problem" id="problem" role="alert">{html.escape(problem)}</p>' if problem else ""
    described = ' aria-describedby="problem"' if problem else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bard: sign in</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;background:#f4f6fa;
color:#1d2330;margin:0}}
main{{max-width:28rem;margin:5rem auto;background:#fff;border:1px solid #d9dee7;border-radius:10px;padding:1.5rem 2rem}}
h1{{margin:.2rem 0 1rem}} label{{display:block;font-weight:600;margin-bottom:.3rem}}
input{{width:100%;box-sizing:border-box;font:inherit;padding:.5rem;border:1px solid #d9dee7;border-radius:6px}}
button{{margin-top:1rem;font:inherit;padding:.5rem 1.2rem;border-radius:6px;border:1px solid #3451b2;
background:#3451b2;color:#fff;cursor:pointer}}
:focus-visible{{outline:3px solid #f5a524;outline-offset:2px}}
.problem{{color:#b42318;font-weight:600}} .hint{{color:#5d6677;font-size:.92em}} code{{font-size:.95em}}
</style></head>
<body><main><h1>Bard</h1>{message}
<form method="post" action="/login">
<label for="token">Dashboard token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus{described}>
<input type="hidden" name="next" value="{html.escape(_safe_next(next_path))}">
<button type="submit">Sign in</button>
</form>
<p class="hint">Where to find it: <code>./bardctl up</code> prints it when it starts, and keeps it in
<code>./var/dashboard_token</code> (the file <code>dashboard_token</code> in <code>BARD_DATA_DIR</code>).
In server mode it is the <code>BARD_DASHBOARD_TOKEN</code> the operator set.</p>
</main></body></html>"""
    return HTMLResponse(body, status_code=status_code)


async def show_login(request: Request) -> Response:
    return login_page(request.query_params.get("next", "/"))


async def log_in(request: Request) -> Response:
    """Exchange the token for a session cookie: JSON ``{"token"}`` answers JSON, a form answers a redirect."""
    credentials: Credentials = request.app.state.credentials
    is_json = request.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    limiter: TokenBucketLimiter = request.app.state.login_limiter
    addresses: ClientAddresses = request.app.state.client_addresses
    wait = limiter.try_acquire(addresses.of(request) or "unknown")
    if wait > 0:
        seconds = retry_after_seconds(wait)
        problem = f"Too many sign-in attempts from this address; try again in {seconds} s."
        headers = {"Retry-After": str(seconds)}
        if is_json:
            return JSONResponse(error_body("rate_limited", f"token: {problem}", field="token"), status_code=429,
                                headers=headers)
        refused = login_page(_safe_next(request.query_params.get("next")), problem, status_code=429)
        refused.headers.update(headers)
        return refused
    body = await limited_body(request, MAX_LOGIN_BODY)
    token: object
    next_path = "/"
    if is_json:
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return JSONResponse(error_body("invalid_request", "body: not valid JSON", field="body"), status_code=400)
        token = document.get("token") if isinstance(document, dict) else None
    else:
        fields = parse_qs(body.decode("utf-8", errors="replace"))
        token = fields["token"][0] if fields.get("token") else None
        next_path = _safe_next((fields.get("next") or ["/"])[0])
    if not isinstance(token, str) or not token:
        if is_json:
            return JSONResponse(error_body("invalid_request", "token: required", field="token"), status_code=400)
        return login_page(next_path, "Enter the dashboard token.", status_code=400)
    if not credentials.token_matches(token):
        if is_json:
            return JSONResponse(error_body("unauthorized", "token: not the dashboard token", field="token"),
                                status_code=401)
        return login_page(next_path, "That is not the dashboard token.", status_code=401)
    response: Response = JSONResponse({"ok": True}) if is_json else RedirectResponse(next_path, status_code=303)
    # Secure behind TLS, also where a proxy ends it: a forged X-Forwarded-Proto can only make the cookie stricter.
    behind_tls = request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"
    response.set_cookie(COOKIE_NAME, credentials.issue_cookie(), max_age=COOKIE_MAX_AGE, httponly=True,
                        samesite="lax", secure=behind_tls, path="/")
    return response


async def log_out(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


def credentials_for(settings: Settings) -> Credentials:
    return Credentials(settings.dashboard_token)


def login_limiter_for(settings: Settings) -> TokenBucketLimiter:
    return TokenBucketLimiter(settings.login_rate_per_minute, burst=LOGIN_BURST)


def trusted_origins_for(settings: Settings) -> tuple[str, ...]:
    return tuple(split_origins(settings.replayer_cors_origins))
