"""The errors handlers raise; :func:`error_response` turns each into the JSON answer the client needs.

Bad input is a 400 naming the parameter, an unknown id a 404, a dependency that is down a 503 naming it. Every
body has Bard's one error shape (:mod:`bard.errors`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bard.errors import error_body


class ApiError(Exception):
    status = 500
    code = "internal_error"
    field: str | None = None
    dependency: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, object]:
        return error_body(self.code, self.message, field=self.field, dependency=self.dependency)


class BadParameter(ApiError):
    """A query parameter, path segment or body field is missing or malformed."""

    status = 400
    code = "invalid_request"

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.field = parameter


class BodyTooLarge(ApiError):
    status = 413
    code = "body_too_large"
    field = "body"

    def __init__(self, limit: int) -> None:
        super().__init__(f"body: must be at most {limit} bytes")


class UnsupportedMediaType(ApiError):
    """A write whose body is not declared JSON. Browsers send text/plain and form bodies across sites without a
    preflight, so refusing them keeps a cookie-authenticated write from being forged by another page."""

    status = 415
    code = "unsupported_content_type"
    field = "Content-Type"

    def __init__(self, got: str) -> None:
        super().__init__(f"Content-Type: must be application/json, got {got or 'none'!r}")


class NotFound(ApiError):
    status = 404
    code = "not_found"

    def __init__(self, what: str, identifier: object) -> None:
        super().__init__(f"no {what} {identifier}")


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class DependencyDown(ApiError):
    """PostgreSQL or ClickHouse did not answer; the message says which."""

    status = 503
    code = "dependency_unavailable"

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} is unavailable: {detail}")
        self.dependency = dependency


class DependencyFailed(ApiError):
    """A dependency answered with an error (a query ClickHouse refused): a fault on our side, logged in full."""

    status = 502
    code = "dependency_failed"

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} failed the request: {detail}")
        self.dependency = dependency


async def error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)
