"""Serving a dashboard's static build from ``BARD_DASHBOARD_DIR``, as the original replayer did.

A path that names a file in the build is that file; any other path without a file extension is a client-side
route of the single-page app (``/sessions/...``, ``/funnels/...``) and gets ``index.html``. A missing asset
(``/static/missing.js``) is a 404, so a broken build shows as one. Paths never leave the build directory.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response


class Dashboard:
    def __init__(self, directory: str) -> None:
        self.root = Path(directory).resolve() if directory else None

    async def serve(self, request: Request) -> Response:
        if request.url.path.startswith(("/api/", "/v1/")):
            return JSONResponse({"error": f"no endpoint {request.url.path}"}, status_code=404)
        if self.root is None:
            return JSONResponse({"error": "no dashboard is configured (set BARD_DASHBOARD_DIR to a static build); "
                                          "the APIs are at /api and /v1 (see /v1/openapi.json)"}, status_code=404)
        relative = PurePosixPath(request.path_params.get("path", "") or "")
        if ".." not in relative.parts:
            candidate = (self.root / relative).resolve()
            if candidate.is_relative_to(self.root) and candidate.is_file():
                return FileResponse(candidate)
        if relative.suffix:
            return JSONResponse({"error": f"no file {relative} in the dashboard build"}, status_code=404)
        index = self.root / "index.html"
        if not index.is_file():
            return JSONResponse({"error": "the dashboard build has no index.html"}, status_code=404)
        # The SPA shell must be re-fetched after a deploy; its hashed assets may be cached.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
