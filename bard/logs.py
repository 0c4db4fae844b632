"""How every Bard process logs: one line per record on stderr, as text or, with ``BARD_LOG_FORMAT=json``, as one
JSON object (``time``, ``level``, ``logger``, ``message``, and ``exc_info`` for a traceback) for log shippers.

uvicorn is started with ``log_config=None``, so its loggers have no handlers of their own and reach these.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from bard.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


def _without_terminal_colours(record: logging.LogRecord) -> bool:
    # uvicorn adds its message again with ANSI colours as an extra field: noise in a JSON line.
    record.__dict__.pop("color_message", None)
    return True


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields=JSON_NAMES))
        handler.addFilter(_without_terminal_colours)
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # The session ender logs one line per run itself; APScheduler's own two lines per run are noise.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
