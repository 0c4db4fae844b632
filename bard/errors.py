"""The one shape of an error answer, for every Bard service (the agent API, the replayer API, the dashboard's
``/login``)::

    {"error": "invalid_request", "message": "cursor: was made for sort=start order=desc", "field": "cursor"}

- ``error``: a stable code a program can switch on (``invalid_request``, ``unauthorized``, ``forbidden_origin``,
  ``not_found``, ``body_too_large``, ``unsupported_content_type``, ``rate_limited``, ``http_error``,
  ``dependency_unavailable``, ``dependency_failed``, ``internal_error``);
- ``message``: for a person, naming the problem (for bad input it starts with the field: ``cursor: ...``);
- ``field``: present when one input is at fault: the query parameter, body field (``steps[2].label``), header
  (``Content-Type``, ``Origin``) or path segment; a form shows ``message`` beside it;
- ``dependency``: present on a 502/503: the service that failed (``PostgreSQL``, ``RabbitMQ``, ``ClickHouse``).
"""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str, *, field: str | None = None, dependency: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    if dependency is not None:
        body["dependency"] = dependency
    return body
