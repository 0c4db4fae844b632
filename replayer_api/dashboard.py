"""Serving the dashboard: Bard's own build by default, or another static build from ``BARD_DASHBOARD_DIR``.

Bard's own dashboard (``dashboard/``, TypeScript) is built into ``replayer_api/dashboard_build`` by ``bardctl`` and
the container image, and a built wheel carries it as package data; it is generated, never committed.
``BARD_DASHBOARD_DIR`` replaces it with any other single-page build (e.g. the original Bard dashboard's).

A path that names a file in the build is that file; any other path without a file extension is a client-side
route of the single-page app (``/sessions/...``, ``/funnels/...``) and gets ``index.html``. A missing asset
(``/static/missing.js``) is a 404, so a broken build shows as one. Paths never leave the build directory.
Vite names assets by their content hash under ``assets/``, so those are cached for good; ``index.html`` is
re-fetched after every deploy.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from bard.errors import error_body

BUILT_IN = Path(__file__).resolve().parent / "dashboard_build"
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


class Dashboard:
    def __init__(self, directory: str) -> None:
        self.built_in = not directory
        self.root = Path(directory).resolve() if directory else BUILT_IN

    async def serve(self, request: Request) -> Response:
        if request.url.path.startswith(("/api/", "/v1/")):
            return JSONResponse(error_body("not_found", f"no endpoint {request.url.path}"), status_code=404)
        relative = PurePosixPath(request.path_params.get("path", "") or "")
        if ".." not in relative.parts:
            candidate = (self.root / relative).resolve()
            if candidate.is_relative_to(self.root) and candidate.is_file():
                cached = self.built_in and relative.parts[:1] == ("assets",)
                return FileResponse(candidate, headers=IMMUTABLE if cached else None)
        if relative.suffix:
            return JSONResponse(error_body("not_found", f"no file {relative} in the dashboard build"),
                                status_code=404)
        index = self.root / "index.html"
        if not index.is_file():
            return JSONResponse(error_body("not_found", self._missing()), status_code=404)
        # The SPA shell must be re-fetched after a deploy; its hashed assets may be cached.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    def _missing(self) -> str:
        if self.built_in:
            return ("the dashboard is not built: ./bardctl up builds it (or run `npm ci && npm run build` in "
                    "dashboard/); the APIs are at /api and /v1 (see /v1/openapi.json)")
        return f"the dashboard build in BARD_DASHBOARD_DIR ({self.root}) has no index.html"
