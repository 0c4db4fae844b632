"""How every Bard HTTP server runs uvicorn: one set of options for ``bard up``'s servers, its agent API workers,
``bard agent-api`` and ``bard replayer-api``."""

from __future__ import annotations

from typing import Any

from bard.settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` and ``uvicorn.run``."""
    return {
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "log_config": None,  # uvicorn's loggers reach Bard's handler (bard.logs)
        # The client address is bard.client_address's to decide (BARD_TRUSTED_PROXIES): uvicorn would otherwise
        # believe X-Forwarded-For from loopback peers whatever the setting.
        "proxy_headers": False,
        "timeout_keep_alive": settings.keep_alive_seconds,
    }
