"""Reading request values into typed ones, each failure a :class:`BadParameter` naming the value."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping

from starlette.requests import Request

from replayer_api.errors import BadParameter, BodyTooLarge

# ClickHouse's UInt64/Int64 and PostgreSQL's bigint: a number past these is bad input, not an overflow error.
MAX_INT = 2**63 - 1
# DateTime64's last representable day is 2299-12-31: a later instant would wrap around, not compare.
MAX_INSTANT_MS = 10_413_792_000_000 - 1


def optional_int(params: Mapping[str, str], name: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    return parse_int(raw, name, minimum=minimum, maximum=maximum)


def int_param(params: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    value = optional_int(params, name, minimum=minimum, maximum=maximum)
    return default if value is None else value


def parse_int(raw: str, name: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    text = raw.strip()
    if not text.lstrip("-").isdigit() or not text.isascii() or len(text) > 20:
        raise BadParameter(name, f"must be an integer, got {raw!r}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise BadParameter(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def parse_uuid(raw: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadParameter(name, f"must be a UUID, got {raw!r}") from None


def parse_day(raw: str, name: str) -> dt.date:
    """A calendar day written YYYY-MM-DD (the original dashboard's date inputs)."""
    try:
        if len(raw) != 10:
            raise ValueError
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(name, f"must be a date YYYY-MM-DD, got {raw!r}") from None
    if not 1970 <= day.year <= 2299:  # what ClickHouse's DateTime64 can hold
        raise BadParameter(name, f"must be from 1970 to 2299, got {raw!r}")
    return day


def parse_instant(raw: str, name: str) -> int:
    """An instant as milliseconds since the epoch: either that integer or an ISO 8601 time (UTC if no offset)."""
    text = raw.strip()
    if text.isdigit():
        return parse_int(text, name, maximum=MAX_INSTANT_MS)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise BadParameter(name, f"must be an ISO 8601 time or milliseconds since the epoch, got {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    ms = int(moment.timestamp() * 1000)
    if not 0 <= ms <= MAX_INSTANT_MS:
        raise BadParameter(name, f"must be between 1970 and 2299, got {raw!r}")
    return ms


def parse_bool(raw: str, name: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadParameter(name, f"must be true or false, got {raw!r}")


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.250Z``."""
    try:
        moment = dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        # Client clocks are untrusted: a time no calendar can show is passed on as the number it is.
        return str(ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def limited_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes, before it is all read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise BodyTooLarge(limit)
    return bytes(received)
