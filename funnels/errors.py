"""The funnel engine's errors. None knows HTTP: the API maps :class:`InvalidFunnel` to 400, the rest to 5xx."""

from __future__ import annotations


class FunnelError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidFunnel(FunnelError, ValueError):
    """A definition (or an evaluation option) is not acceptable.

    ``path`` names the offending field in the form the caller sent, e.g. ``steps[2].label`` for the clean form or
    ``eventSequence[2].textContent`` for the dashboard's; ``""`` means the document as a whole.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)

    def to_dict(self) -> dict[str, str]:
        return {"field": self.path, "message": self.message}


class FunnelQueryFailed(FunnelError):
    """ClickHouse refused or failed a compiled funnel query. ``code`` is ClickHouse's error code when known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(f"funnel query failed (ClickHouse code {code}): {message}" if code else message)
