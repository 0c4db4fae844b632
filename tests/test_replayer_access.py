"""Access (bearer token, login cookie, nothing open but health, metrics and login), CORS, dashboard serving, the
document, and the table of bad inputs: each a 4xx naming the problem, never a 500, nothing written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from clickhouse_connect.driver.client import Client
from starlette.routing import Route

from bard.settings import Settings
from replayer_api.app import create_app
from replayer_api.auth import COOKIE_NAME, LOGIN_BURST, Credentials
from replayer_api.cursors import Cursor
from replayer_api.openapi import OPENAPI
from tests.replayer_support import (
    BASE_MS,
    EndedSession,
    clickhouse_snapshot,
    insert_sessions,
    open_api,
    postgres_snapshot,
)

pytestmark = [pytest.mark.postgres, pytest.mark.clickhouse]

GOOD_FUNNEL = {"name": "F", "steps": [{"kind": "click", "label": "Buy"}]}
GOOD_DASHBOARD_FUNNEL = {"funnelName": "F", "sessionFilters": [{}],
                         "eventSequence": [{"eventType": "click", "textContent": "Buy"}]}
SID = str(uuid.uuid4())


@pytest.fixture
async def services(settings: Settings, pg_pool: asyncpg.Pool, ch: Client) -> tuple[asyncpg.Pool, Client]:
    return pg_pool, ch


@pytest.fixture
async def api(settings: Settings, services: object) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings) as client:
        yield client


@pytest.fixture
async def stranger(settings: Settings, services: object) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings, authorized=False) as client:
        yield client


def every_route(settings: Settings) -> list[tuple[str, str]]:
    app = create_app(settings)
    found = []
    for route in app.routes:
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            path = route.path.replace("{path:path}", "sessions/abc")
            found.append((method, path.format(session_id=SID, funnel_id="1", step="1", outcome="completed",
                                             property="browser")))
    return found


async def test_nothing_but_health_metrics_and_login_is_open(settings: Settings, stranger: httpx.AsyncClient) -> None:
    routes = every_route(settings)
    assert len(routes) > 20
    for method, path in routes:
        response = await stranger.request(method, path)
        if path in ("/healthz", "/readyz", "/metrics", "/login", "/logout"):
            assert response.status_code in (200, 303, 400), (method, path)
        elif path.startswith(("/api/", "/v1/")):
            assert response.status_code == 401, (method, path)
            assert "authentication required" in response.json()["message"]
            assert response.headers["www-authenticate"] == "Bearer"
        else:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"] == "/login?next=%2Fsessions%2Fabc"
    assert (await stranger.get("/healthz")).json() == {"status": "ok"}
    assert (await stranger.get("/readyz")).json() == {"status": "ready"}


@pytest.mark.parametrize("authorization", [
    "Bearer wrong", "Bearer ", "Basic dGVzdDp0ZXN0", "bearer", "Token {token}", "{token}",
])
async def test_wrong_credentials_are_refused(settings: Settings, stranger: httpx.AsyncClient,
                                             authorization: str) -> None:
    header = authorization.format(token=settings.dashboard_token)
    response = await stranger.get("/v1/sessions", headers={"Authorization": header})
    assert response.status_code == 401


async def test_bearer_scheme_is_case_insensitive(settings: Settings, stranger: httpx.AsyncClient) -> None:
    response = await stranger.get("/v1/apps", headers={"Authorization": f"bearer {settings.dashboard_token}"})
    assert response.status_code == 200


async def test_login_form_sets_a_cookie_that_is_enough(settings: Settings, stranger: httpx.AsyncClient) -> None:
    page = await stranger.get("/login", params={"next": "/funnels/3"})
    assert page.status_code == 200 and "<form" in page.text and 'value="/funnels/3"' in page.text
    wrong = await stranger.post("/login", data={"token": "nope", "next": "/funnels/3"})
    assert wrong.status_code == 401 and COOKIE_NAME not in wrong.cookies
    response = await stranger.post("/login", data={"token": settings.dashboard_token, "next": "/funnels/3"})
    assert response.status_code == 303
    assert response.headers["location"] == "/funnels/3"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie
    # The original dashboard calls /api from pages served here: the cookie alone lets it in.
    assert (await stranger.get("/api/options/filter", params={"filterType": "appName"})).status_code == 200
    assert (await stranger.get("/v1/apps")).status_code == 200
    await stranger.get("/logout")
    assert (await stranger.get("/v1/apps")).status_code == 401


async def test_sign_in_attempts_are_rate_limited_per_address(settings: Settings, services: object) -> None:
    async with open_api(settings, authorized=False, address="198.51.100.7") as guesser:
        answers = [await guesser.post("/login", json={"token": f"guess-{n}"}) for n in range(LOGIN_BURST)]
        assert [a.status_code for a in answers] == [401] * LOGIN_BURST
        refused = await guesser.post("/login", json={"token": settings.dashboard_token})  # even the right one
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["field"] == "token" and COOKIE_NAME not in refused.cookies
        form = await guesser.post("/login", data={"token": settings.dashboard_token})
        assert form.status_code == 429 and "Too many sign-in attempts" in form.text
    # Each address has its own allowance.
    async with open_api(settings, authorized=False, address="198.51.100.8") as someone_else:
        assert (await someone_else.post("/login", json={"token": settings.dashboard_token})).status_code == 200


COOKIE_WRITES = [
    # (id, headers, status): a write authorized by the session cookie, from where the headers say
    ("own-origin", {"Origin": "http://testserver"}, 201),
    ("own-page-referer", {"Referer": "http://testserver/funnels/new"}, 201),
    ("no-browser", {}, 201),
    ("evil-origin", {"Origin": "http://evil.example"}, 403),
    ("evil-referer", {"Referer": "http://evil.example/page"}, 403),
    ("other-port", {"Origin": "http://testserver:8080"}, 403),
    ("sandboxed-null", {"Origin": "null"}, 403),
    ("trusted-origin", {"Origin": "https://dash.example"}, 201),
]


@pytest.mark.parametrize(("headers", "status"), [row[1:] for row in COOKIE_WRITES],
                         ids=[row[0] for row in COOKIE_WRITES])
async def test_cookie_writes_must_come_from_bards_own_pages(settings: Settings, services: tuple[asyncpg.Pool, Client],
                                                          headers: dict[str, str], status: int) -> None:
    pool, _ = services
    configured = settings.replace(replayer_cors_origins="https://dash.example")
    async with open_api(configured, authorized=False) as browser:
        assert (await browser.post("/login", json={"token": settings.dashboard_token})).status_code == 200
        before = await postgres_snapshot(pool)
        created = await browser.post("/v1/funnels", json=GOOD_FUNNEL, headers=headers)
        assert created.status_code == status, created.text
        dashboard_form = {"funnelName": "F", "sessionFilters": [{}],
                          "eventSequence": [{"eventType": "click", "textContent": "B"}]}
        legacy = await browser.post("/api/funnels", json=dashboard_form, headers=headers)
        assert legacy.status_code in ((200, 201) if status == 201 else (403,)), legacy.text
        if status == 403:
            assert created.json()["field"] == "Origin"
            assert await postgres_snapshot(pool) == before
            # Reads are not writes: the same page may still read.
            assert (await browser.get("/v1/funnels", headers=headers)).status_code == 200
        else:
            deleted = await browser.delete(f"/v1/funnels/{created.json()['id']}", headers=headers)
            assert deleted.status_code == 204


async def test_a_bearer_token_is_not_ambient_so_its_writes_are_not_origin_checked(api: httpx.AsyncClient,
                                                                                   services: object) -> None:
    created = await api.post("/v1/funnels", json=GOOD_FUNNEL, headers={"Origin": "http://evil.example"})
    assert created.status_code == 201


async def test_pages_carry_a_policy_and_every_answer_nosniff(settings: Settings, services: object,
                                                             tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "index.html").write_text("<html>dashboard</html>")
    async with open_api(settings.replace(dashboard_dir=str(build))) as client:
        for path in ("/", "/sessions/abc", "/login"):
            page = await client.get(path)
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
            assert "connect-src 'self'" in policy and "object-src 'none'" in policy, path
            assert page.headers["x-content-type-options"] == "nosniff", path
        answer = await client.get("/v1/apps")
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in answer.headers  # a policy is for documents


@pytest.mark.parametrize(("forwarded", "secure"), [("https", True), ("http", False), (None, False)])
async def test_the_cookie_is_secure_behind_tls(settings: Settings, stranger: httpx.AsyncClient,
                                               forwarded: str | None, secure: bool) -> None:
    headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
    response = await stranger.post("/login", json={"token": settings.dashboard_token}, headers=headers)
    assert response.status_code == 200
    assert ("secure" in response.headers["set-cookie"].lower().split("; ")) is secure


async def test_login_json_and_no_open_redirect(settings: Settings, stranger: httpx.AsyncClient) -> None:
    assert (await stranger.post("/login", json={"token": "nope"})).status_code == 401
    assert (await stranger.post("/login", json={})).json()["field"] == "token"
    assert (await stranger.post("/login", content=b"{", headers={"content-type": "application/json"})
            ).status_code == 400
    huge = await stranger.post("/login", content=b"token=" + b"x" * 20_000,
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413 and COOKIE_NAME not in huge.cookies
    ok = await stranger.post("/login", json={"token": settings.dashboard_token})
    assert ok.status_code == 200 and ok.json() == {"ok": True}
    for target in ("https://evil.test/", "//evil.test/", "/\\evil.test"):
        response = await stranger.post("/login", data={"token": settings.dashboard_token, "next": target})
        assert response.headers["location"] == "/"


def test_cookies_are_signed_expire_and_die_with_the_token() -> None:
    credentials = Credentials("secret-a")
    cookie = credentials.issue_cookie(now=1_000_000)
    assert credentials.cookie_valid(cookie, now=1_000_100)
    assert not credentials.cookie_valid(cookie, now=1_000_000 + 8 * 86_400)  # a week is the limit
    assert not Credentials("secret-b").cookie_valid(cookie, now=1_000_100)
    issued, _, signature = cookie.partition(".")
    assert not credentials.cookie_valid(f"{int(issued) + 1}.{signature}", now=1_000_100)
    assert not credentials.cookie_valid("garbage", now=1_000_100)


async def test_cors_only_for_configured_origins(settings: Settings, services: object) -> None:
    configured = settings.replace(replayer_cors_origins="https://dash.example")
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    async with open_api(configured) as client:
        allowed = await client.options("/v1/sessions", headers={"Origin": "https://dash.example", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
        refused = await client.options("/v1/sessions", headers={"Origin": "https://evil.test", **preflight})
        assert "access-control-allow-origin" not in refused.headers
        simple = await client.get("/v1/apps", headers={"Origin": "https://dash.example"})
        assert simple.headers["access-control-allow-origin"] == "https://dash.example"
    async with open_api(settings) as client:  # none configured: no CORS at all
        response = await client.get("/v1/apps", headers={"Origin": "https://dash.example"})
        assert "access-control-allow-origin" not in response.headers


async def test_dashboard_is_served_with_spa_fallback_behind_login(settings: Settings, services: object,
                                                                  tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / "static").mkdir(parents=True)
    (build / "index.html").write_text("<html>dashboard</html>")
    (build / "static" / "main.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside")
    configured = settings.replace(dashboard_dir=str(build))
    async with open_api(configured) as client:
        assert (await client.get("/")).text == "<html>dashboard</html>"
        assert (await client.get("/sessions/123")).text == "<html>dashboard</html>"
        assert (await client.get("/funnels/4/edit")).text == "<html>dashboard</html>"
        assert (await client.get("/static/main.js")).text == "console.log(1)"
        assert (await client.get("/static/missing.js")).status_code == 404
        assert (await client.get("/../secret.txt")).status_code in (303, 404)
        assert (await client.get("/static/..%2F..%2Fsecret.txt")).status_code == 404
        assert (await client.get("/api/nothing-here")).status_code == 404
    async with open_api(configured, authorized=False) as client:
        assert (await client.get("/sessions/123")).status_code == 303
        assert (await client.get("/static/main.js")).status_code == 303
    async with open_api(settings.replace(dashboard_dir=str(tmp_path / "empty"))) as client:
        response = await client.get("/")
        assert response.status_code == 404 and "BARD_DASHBOARD_DIR" in response.json()["message"]


async def test_bards_own_dashboard_is_the_default(settings: Settings, services: object, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With BARD_DASHBOARD_DIR unset, the replayer API serves Bard's own build; hashed assets are cached for
    good, the shell never; an unbuilt dashboard says how to build it."""
    build = tmp_path / "dashboard_build"
    monkeypatch.setattr("replayer_api.dashboard.BUILT_IN", build)
    async with open_api(settings) as client:
        response = await client.get("/")
        assert response.status_code == 404 and "./bardctl up builds it" in response.json()["message"]
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text("<html>bard</html>")
    (build / "assets" / "index-abc123.js").write_text("console.log(2)")
    async with open_api(settings) as client:
        shell = await client.get("/funnels/3")
        assert shell.text == "<html>bard</html>" and shell.headers["cache-control"] == "no-cache"
        asset = await client.get("/assets/index-abc123.js")
        assert asset.text == "console.log(2)" and "immutable" in asset.headers["cache-control"]
    async with open_api(settings, authorized=False) as client:
        assert (await client.get("/")).status_code == 303


async def test_openapi_describes_every_v1_route_and_parameter(settings: Settings, api: httpx.AsyncClient) -> None:
    document = (await api.get("/v1/openapi.json")).json()
    assert document == OPENAPI
    assert document["openapi"].startswith("3.1")
    app = create_app(settings)
    v1_routes = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route) and r.path.startswith("/v1")
                 for m in (r.methods or set()) - {"HEAD"}}
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert v1_routes == described
    for path, item in document["paths"].items():
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(Route(path, lambda r: None).param_convertors), (path, method)
            assert "200" in operation["responses"] or "201" in operation["responses"] or \
                "204" in operation["responses"]


async def test_openapi_query_parameters_are_the_accepted_ones(api: httpx.AsyncClient, services: Any) -> None:
    """Every documented query parameter is accepted, and an undocumented one is refused by name."""
    for path, item in OPENAPI["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path:
            continue
        required = {"kind": "click"} if path == "/v1/conversion-labels" else {}
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            response = await api.get(path, params={**required, parameter["name"]: "x"})
            assert response.status_code in (200, 400), (path, parameter["name"])
            if response.status_code == 400:
                assert response.json()["field"] == parameter["name"], (path, response.json())
        response = await api.get(path, params={**required, "no_such_parameter": "1"})
        assert response.status_code == 400 and response.json()["field"] == "no_such_parameter", path


OTHER_SORT_CURSOR = Cursor("duration", "desc", 5, uuid.uuid4()).encode()
WRONG_TYPE_CURSOR = Cursor("start", "desc", "text", uuid.uuid4()).encode()
ERROR_CODES = {400: "invalid_request", 404: "not_found", 413: "body_too_large", 415: "unsupported_content_type"}
# (id, method, path, query, json body, status, the parameter the error names)
BAD_INPUTS: list[tuple[str, str, str, dict[str, Any] | None, Any, int, str]] = [
    ("v1-sort", "GET", "/v1/sessions", {"sort": "length"}, None, 400, "sort"),
    ("v1-order", "GET", "/v1/sessions", {"order": "up"}, None, 400, "order"),
    ("v1-limit-zero", "GET", "/v1/sessions", {"limit": "0"}, None, 400, "limit"),
    ("v1-limit-huge", "GET", "/v1/sessions", {"limit": "100000"}, None, 400, "limit"),
    ("v1-limit-text", "GET", "/v1/sessions", {"limit": "ten"}, None, 400, "limit"),
    ("v1-limit-overflow", "GET", "/v1/sessions", {"limit": "9" * 40}, None, 400, "limit"),
    ("v1-cursor-garbage", "GET", "/v1/sessions", {"cursor": "!!!"}, None, 400, "cursor"),
    ("v1-cursor-base64-junk", "GET", "/v1/sessions", {"cursor": "eyJhIjoxfQ"}, None, 400, "cursor"),
    ("v1-cursor-other-sort", "GET", "/v1/sessions", {"cursor": OTHER_SORT_CURSOR}, None, 400, "cursor"),
    ("v1-cursor-wrong-type", "GET", "/v1/sessions", {"cursor": WRONG_TYPE_CURSOR}, None, 400, "cursor"),
    ("v1-started-after", "GET", "/v1/sessions", {"started_after": "yesterday"}, None, 400, "started_after"),
    ("v1-started-before", "GET", "/v1/sessions", {"started_before": "2026-13-01"}, None, 400, "started_before"),
    ("v1-min-duration", "GET", "/v1/sessions", {"min_duration_ms": "-1"}, None, 400, "min_duration_ms"),
    ("v1-duration-range", "GET", "/v1/sessions", {"min_duration_ms": "5", "max_duration_ms": "1"}, None, 400,
     "min_duration_ms"),
    ("v1-has-errors", "GET", "/v1/sessions", {"has_errors": "maybe"}, None, 400, "has_errors"),
    ("v1-id-prefix", "GET", "/v1/sessions", {"id_prefix": "zz'; DROP"}, None, 400, "id_prefix"),
    ("v1-app-empty", "GET", "/v1/sessions", {"app": ""}, None, 400, "app"),
    ("v1-unknown-param", "GET", "/v1/sessions", {"filter_0": "date"}, None, 400, "filter_0"),
    ("v1-session-id", "GET", "/v1/sessions/not-a-uuid", None, None, 400, "session_id"),
    ("v1-events-id", "GET", "/v1/sessions/123/events", None, None, 400, "session_id"),
    ("v1-session-unknown", "GET", f"/v1/sessions/{SID}", None, None, 404, ""),
    ("v1-events-unknown", "GET", f"/v1/sessions/{SID}/events", None, None, 404, ""),
    ("v1-active-limit", "GET", "/v1/active-sessions", {"limit": "-3"}, None, 400, "limit"),
    ("v1-active-cursor", "GET", "/v1/active-sessions", {"cursor": OTHER_SORT_CURSOR}, None, 400, "cursor"),
    ("v1-labels-kind", "GET", "/v1/conversion-labels", {"kind": "hover"}, None, 400, "kind"),
    ("v1-labels-no-kind", "GET", "/v1/conversion-labels", None, None, 400, "kind"),
    ("v1-funnel-body-not-json", "POST", "/v1/funnels", None, b"{", 400, "body"),
    ("v1-funnel-body-too-large", "POST", "/v1/funnels", None, b"[" + b"1," * 600_000 + b"1]", 413, "body"),
    ("api-funnel-body-too-large", "PUT", "/api/funnels/{funnel}", None, b" " * (1024 * 1024 + 1), 413, "body"),
    ("v1-funnel-body-list", "POST", "/v1/funnels", None, [], 400, "body"),
    # A cross-site page can post text/plain or a form without a preflight: only declared JSON is taken.
    ("v1-funnel-text-plain", "POST", "/v1/funnels", None,
     (b'{"name": "F", "steps": [{"kind": "click", "label": "A"}]}', "text/plain"), 415, "Content-Type"),
    ("v1-funnel-form", "POST", "/v1/funnels", None, (b"name=F", "application/x-www-form-urlencoded"), 415,
     "Content-Type"),
    ("v1-update-text-plain", "PUT", "/v1/funnels/{funnel}", None,
     (b'{"name": "F", "steps": [{"kind": "click", "label": "A"}]}', "text/plain;charset=UTF-8"), 415,
     "Content-Type"),
    ("v1-funnel-no-steps", "POST", "/v1/funnels", None, {"name": "F", "steps": []}, 400, "steps"),
    ("v1-funnel-no-name", "POST", "/v1/funnels", None, {"steps": GOOD_FUNNEL["steps"]}, 400, "name"),
    ("v1-funnel-bad-kind", "POST", "/v1/funnels", None,
     {"name": "F", "steps": [{"kind": "hover", "label": "x"}]}, 400, "steps[0].kind"),
    ("v1-funnel-empty-label", "POST", "/v1/funnels", None,
     {"name": "F", "steps": [{"kind": "click", "label": ""}]}, 400, "steps[0].label"),
    ("v1-funnel-window", "POST", "/v1/funnels", None, {**GOOD_FUNNEL, "window_seconds": 0}, 400, "window_seconds"),
    ("v1-funnel-unknown-field", "POST", "/v1/funnels", None, {**GOOD_FUNNEL, "owner": "me"}, 400, "owner"),
    ("v1-funnel-id-text", "GET", "/v1/funnels/abc", None, None, 400, "funnel_id"),
    ("v1-funnel-id-zero", "GET", "/v1/funnels/0", None, None, 400, "funnel_id"),
    ("v1-funnel-id-overflow", "GET", "/v1/funnels/99999999999999999999999", None, None, 400, "funnel_id"),
    ("v1-funnel-unknown", "GET", "/v1/funnels/999", None, None, 404, ""),
    ("v1-update-unknown", "PUT", "/v1/funnels/999", None, GOOD_FUNNEL, 404, ""),
    ("v1-update-invalid", "PUT", "/v1/funnels/999", None, {"name": ""}, 400, "steps"),
    ("v1-delete-unknown", "DELETE", "/v1/funnels/999", None, None, 404, ""),
    ("v1-results-unknown", "GET", "/v1/funnels/999/results", None, None, 404, ""),
    ("v1-results-start", "GET", "/v1/funnels/{funnel}/results", {"start": "2026-02-30"}, None, 400, "start"),
    ("v1-results-range", "GET", "/v1/funnels/{funnel}/results", {"start": "2026-02-03", "end": "2026-02-01"},
     None, 400, "start"),
    ("v1-results-ids-limit", "GET", "/v1/funnels/{funnel}/results", {"ids_limit": "x"}, None, 400, "ids_limit"),
    ("v1-step-zero", "GET", "/v1/funnels/{funnel}/steps/0/completed", None, None, 400, "step"),
    ("v1-step-past", "GET", "/v1/funnels/{funnel}/steps/2/completed", None, None, 400, "step"),
    ("v1-step-outcome", "GET", "/v1/funnels/{funnel}/steps/1/lost", None, None, 400, "outcome"),
    ("v1-step-after", "GET", "/v1/funnels/{funnel}/steps/1/dropped", {"after": "x"}, None, 400, "after"),
    ("api-filter-unknown", "GET", "/api/sessions", {"filter_0": "browser"}, None, 400, "filter_0"),
    ("api-min-length", "GET", "/api/sessions", {"filter_0": "length", "minLength": "short"}, None, 400,
     "minLength"),
    ("api-length-range", "GET", "/api/sessions", {"filter_0": "length", "minLength": "9", "maxLength": "1"}, None,
     400, "minLength"),
    ("api-start-date", "GET", "/api/sessions", {"filter_0": "date", "startDate": "01/02/2026"}, None, 400,
     "startDate"),
    ("api-end-date", "GET", "/api/sessions", {"filter_0": "date", "endDate": "2026-02-30"}, None, 400, "endDate"),
    ("api-end-date-far", "GET", "/api/sessions", {"filter_0": "date", "endDate": "9999-12-31"}, None, 400,
     "endDate"),
    ("api-start-date-early", "GET", "/api/sessions", {"filter_0": "date", "startDate": "1900-01-01"}, None, 400,
     "startDate"),
    ("api-filter-repeated-bad", "GET", "/api/sessions?filter_0=date&filter_0=browser", None, None, 400, "filter_0"),
    ("v1-results-end-far", "GET", "/v1/funnels/{funnel}/results", {"end": "9999-12-31"}, None, 400, "end"),
    ("api-results-end-far", "GET", "/api/funnels/{funnel}", {"endDate": "9999-12-31"}, None, 400, "endDate"),
    ("api-date-range", "GET", "/api/sessions", {"filter_0": "date", "startDate": "2026-02-03",
                                                "endDate": "2026-02-01"}, None, 400, "startDate"),
    ("api-app-missing", "GET", "/api/sessions", {"filter_0": "appName"}, None, 400, "textContent"),
    ("api-app-too-long", "GET", "/api/sessions", {"filter_0": "appName", "textContent": "a" * 16_385}, None, 400,
     "textContent"),
    ("v1-app-too-long", "GET", "/v1/sessions", {"app": "a" * 16_385}, None, 400, "app"),
    ("v1-started-range", "GET", "/v1/sessions", {"started_after": "2026-02-02T00:00:00Z",
                                                 "started_before": "2026-02-01T00:00:00Z"}, None, 400,
     "started_after"),
    ("v1-id-prefix-empty", "GET", "/v1/sessions", {"id_prefix": ""}, None, 400, "id_prefix"),
    ("v1-id-prefix-not-hex", "GET", "/v1/sessions", {"id_prefix": "xyz"}, None, 400, "id_prefix"),
    ("api-yes-or-no", "GET", "/api/sessions", {"filter_0": "Has Errors?", "yesOrNo": "sometimes"}, None, 400,
     "yesOrNo"),
    ("api-sort-by", "GET", "/api/sessions", {"sortBy": "browser"}, None, 400, "sortBy"),
    ("api-sort-order", "GET", "/api/sessions", {"sortOrder": "sideways"}, None, 400, "sortOrder"),
    ("api-per-page", "GET", "/api/sessions", {"perPage": "0"}, None, 400, "perPage"),
    ("api-page-num", "GET", "/api/sessions", {"pageNum": "-1"}, None, 400, "pageNum"),
    ("api-events-id", "GET", "/api/sessions/abc", None, None, 400, "sessionId"),
    ("api-events-unknown", "GET", f"/api/sessions/{SID}", None, None, 404, ""),
    ("api-funnel-body", "POST", "/api/funnels", None, b"not json", 400, "body"),
    ("api-funnel-name", "POST", "/api/funnels", None, {**GOOD_DASHBOARD_FUNNEL, "funnelName": 7}, 400,
     "funnelName"),
    ("api-funnel-steps", "POST", "/api/funnels", None, {**GOOD_DASHBOARD_FUNNEL, "eventSequence": []}, 400,
     "eventSequence"),
    ("api-funnel-step-type", "POST", "/api/funnels", None,
     {**GOOD_DASHBOARD_FUNNEL, "eventSequence": [{"eventType": "scroll"}]}, 400, "eventSequence[0].eventType"),
    ("api-funnel-filter", "POST", "/api/funnels", None,
     {**GOOD_DASHBOARD_FUNNEL, "sessionFilters": [{"filterType": "browser"}]}, 400, "sessionFilters[0].filterType"),
    ("api-funnel-filter-date", "POST", "/api/funnels", None,
     {**GOOD_DASHBOARD_FUNNEL, "sessionFilters": [{"filterType": "date", "startDate": "soon"}]}, 400,
     "sessionFilters[0].startDate"),
    ("api-funnels-sort-by", "GET", "/api/funnels", {"sortBy": "steps"}, None, 400, "sortBy"),
    ("api-funnels-sort-order", "GET", "/api/funnels", {"sortOrder": "up"}, None, 400, "sortOrder"),
    ("api-funnels-per-page", "GET", "/api/funnels", {"perPage": "x"}, None, 400, "perPage"),
    ("api-funnels-page-num", "GET", "/api/funnels", {"pageNum": "-2"}, None, 400, "pageNum"),
    ("api-funnel-id", "GET", "/api/funnel/x", None, None, 400, "id"),
    ("api-funnel-unknown", "GET", "/api/funnel/999", None, None, 404, ""),
    ("api-update-unknown", "PUT", "/api/funnels/999", None, GOOD_DASHBOARD_FUNNEL, 404, ""),
    ("api-update-invalid", "PUT", "/api/funnels/{funnel}", None, {"funnelName": "F"}, 400, "eventSequence"),
    ("api-delete-unknown", "DELETE", "/api/funnels/999", None, None, 404, ""),
    ("api-results-unknown", "GET", "/api/funnels/999", None, None, 404, ""),
    ("api-results-start", "GET", "/api/funnels/{funnel}", {"startDate": "2026-1-1"}, None, 400, "startDate"),
    ("api-results-range", "GET", "/api/funnels/{funnel}", {"startDate": "2026-02-03", "endDate": "2026-02-01"},
     None, 400, "startDate"),
    ("api-options-event-type", "GET", "/api/options/funnel", {"eventType": "hover"}, None, 400, "eventType"),
    ("api-options-filter-type", "GET", "/api/options/filter", {"filterType": "date"}, None, 400, "filterType"),
]


@pytest.mark.parametrize(("method", "path", "query", "body", "status", "parameter"),
                         [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
async def test_bad_input_is_refused_by_name_and_writes_nothing(
    api: httpx.AsyncClient, services: tuple[asyncpg.Pool, Client], method: str, path: str,
    query: dict[str, Any] | None, body: Any, status: int, parameter: str,
) -> None:
    pool, ch = services
    insert_sessions(ch, [EndedSession(uuid.uuid4(), "shop", BASE_MS, 10, 0)])
    funnel = (await api.post("/v1/funnels", json=GOOD_FUNNEL)).json()
    before = (await postgres_snapshot(pool), await clickhouse_snapshot(ch))

    content_type = "application/json"
    if isinstance(body, tuple):  # (raw body, its Content-Type)
        body, content_type = body
    content = body if isinstance(body, bytes) else None
    json_body = None if isinstance(body, bytes) or body is None else body
    headers = {"content-type": content_type} if content is not None else None
    response = await api.request(method, path.format(funnel=funnel["id"]), params=query, content=content,
                                 json=json_body, headers=headers)

    assert response.status_code == status, response.text
    error = response.json()
    # Bard's one error shape (bard.errors), as the agent API answers it too.
    assert set(error) <= {"error", "message", "field", "dependency"}, error
    assert error["error"] == ERROR_CODES[status]
    assert isinstance(error["message"], str) and error["message"]
    if parameter:
        assert error["field"] == parameter
        assert parameter in error["message"]
    assert (await postgres_snapshot(pool), await clickhouse_snapshot(ch)) == before
