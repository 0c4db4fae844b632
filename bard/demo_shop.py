"""The demo shop: a small site recorded by the real ``bardrr`` 2.3.1 agent, served by ``bard up`` on ``BARD_DEMO_PORT``.

A newcomer opens it, clicks around, and watches their own session in the dashboard. It is the *recorded site*,
not part of the dashboard, so it lives on an origin of its own (its own port): it records cross-origin to the agent
API exactly as a customer's app does (CORS preflight and all, ``BARD_AGENT_CORS_ORIGINS``), and stays out of the
dashboard's CSP, cookie and ``Origin`` rules. Only ``bard up`` serves it; production layouts (one process per part)
do not.

The pages are built from ``demo/`` (plain JavaScript, the agent bundled from npm with a lockfile by Vite) into
``demo/dist``, generated and never committed: ``bardctl`` builds it when missing or older than its sources. Bard
renders ``/bard-demo.json`` for the page: the agent API's address as this browser reaches it (the host the page
was asked for, the agent API's port), the app name, the agent's ``MAX_IDLE_TIME`` (``BARD_MAX_IDLE_DEFAULT_MS``,
so a session shows in the list about a minute after the person stops) and the catalogue, which
:mod:`bard.demo_data` shares to draw the same pages into its recorded snapshots.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bard.settings import Settings

APP_NAME = "Demo shop"
SOURCES = Path(__file__).resolve().parent.parent / "demo"
BUILD = SOURCES / "dist"
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    price: int  # cents
    color: str
    description: str


CATALOGUE = (
    Product("house-blend", "House blend", 1400, "#7a4b28", "Chocolate and hazelnut, roasted medium. 250 g."),
    Product("ethiopia-guji", "Ethiopia Guji", 1800, "#c2703d", "Bergamot, peach and black tea, light roast. 250 g."),
    Product("colombia-huila", "Colombia Huila", 1600, "#8f5a3c", "Red apple and caramel, medium roast. 250 g."),
    Product("espresso-forte", "Espresso forte", 1500, "#3b2a20", "Dark cocoa, low acidity, for milk drinks. 250 g."),
    Product("decaf-swiss", "Decaf (Swiss water)", 1500, "#a0826d", "Toffee and plum, caffeine-free. 250 g."),
    Product("pour-over-kit", "Pour-over kit", 3900, "#5d7d6e", "A ceramic dripper, 100 filters and a scoop."),
)


def is_built(build: Path = BUILD) -> bool:
    return (build / "index.html").is_file()


def agent_endpoint(request: Request, settings: Settings) -> str:
    """The agent API as the browser that asked for the shop reaches it: the same host, the agent API's port (so
    ``BARD_HOST=0.0.0.0`` opened from another machine still records)."""
    host = request.url.hostname or settings.host
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{request.url.scheme}://{host}:{settings.agent_api_port}"


def create_app(settings: Settings, build: Path = BUILD) -> Starlette:
    root = build.resolve()

    async def config(request: Request) -> Response:
        return JSONResponse({
            "endpoint": agent_endpoint(request, settings),
            "appName": APP_NAME,
            "maxIdleTime": settings.max_idle_default_ms,
            "products": [asdict(p) for p in CATALOGUE],
        }, headers={"Cache-Control": "no-store"})

    async def serve(request: Request) -> Response:
        relative = PurePosixPath(request.path_params.get("path", "") or "")
        if ".." not in relative.parts:
            candidate = (root / relative).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                cached = relative.parts[:1] == ("assets",)
                return FileResponse(candidate, headers=IMMUTABLE if cached else None)
        if relative.suffix:
            return PlainTextResponse(f"no file {relative} in the demo shop", status_code=404)
        index = root / "index.html"
        if not index.is_file():
            return PlainTextResponse("the demo shop is not built: ./bardctl up builds it", status_code=404)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})  # a client-side route of the shop

    return Starlette(routes=[
        Route("/bard-demo.json", config, methods=["GET"]),
        Route("/{path:path}", serve, methods=["GET", "HEAD"]),
    ])
