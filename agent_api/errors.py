"""The agent API's errors: each knows its HTTP status and renders as a JSON body naming what is wrong.

Invariant 3: bad input is a 4xx naming the field; a 5xx only ever means a dependency is down, and says which.
Bodies have Bard's one error shape (:mod:`bard.errors`), as the replayer API's do.
"""

from __future__ import annotations

import re
from typing import Any

from bard.errors import error_body

_MISSING_FIELD = re.compile(r"missing required field `([^`]*)`")


class AgentApiError(Exception):
    status = 500
    code = "internal_error"
    dependency: str | None = None

    def __init__(self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, field=self.field, dependency=self.dependency)


class InvalidRequest(AgentApiError):
    """A header or the body of a request is malformed; ``field`` names it (``events[3].timestamp``)."""

    status = 400
    code = "invalid_request"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", field=field)

    @classmethod
    def from_validation(cls, error: Exception, within: str = "") -> InvalidRequest:
        """Name the field a msgspec error points at, below ``within`` (``events[3]``), e.g. turning
        "Expected `int` - at `$.data.source`" into field ``events[3].data.source``."""
        problem, sep, path = str(error).rpartition(" - at `$")
        if not sep:
            problem, path = str(error), ""
        path = path.rstrip("`")
        missing = _MISSING_FIELD.search(problem)
        if missing:
            path = f"{path}.{missing.group(1)}"
        field = (within + path).lstrip(".") or "body"
        return cls(field, problem)


class Unauthorized(AgentApiError):
    status = 401
    code = "unauthorized"

    def __init__(self, problem: str) -> None:
        super().__init__(problem, field="authorization", headers={"WWW-Authenticate": "Bearer"})


class BodyTooLarge(AgentApiError):
    status = 413
    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes", field="body")


class UnsupportedContentType(AgentApiError):
    status = 415
    code = "unsupported_content_type"

    def __init__(self, content_type: str) -> None:
        super().__init__(f"Content-Type must be application/json, got {content_type!r}", field="Content-Type")


class RateLimited(AgentApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"too many tokens requested from this address; retry in {retry_after_seconds} s",
            headers={"Retry-After": str(retry_after_seconds)},
        )


class DependencyUnavailable(AgentApiError):
    """PostgreSQL or RabbitMQ could not be reached; nothing of the request was kept."""

    status = 503
    code = "dependency_unavailable"

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} is unavailable: {detail}")
        self.dependency = dependency
