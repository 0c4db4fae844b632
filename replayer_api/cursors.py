"""Opaque keyset cursors: where the previous page ended, and under which sort it was made.

A cursor is URL-safe base64 of ``{"sort", "order", "key", "id"}``: the last row's sort key and its session id
(the tie-break). Pages are resumed with ``(key, id) > (cursor.key, cursor.id)`` (``<`` when descending), so a
page costs the same at any depth. A cursor only makes sense under the sort that made it: any other is a 400.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

import msgspec

from replayer_api.errors import BadParameter
from replayer_api.parameters import MAX_INT


@dataclass(frozen=True)
class Cursor:
    sort: str
    order: str
    key: int | str
    session_id: uuid.UUID

    def encode(self) -> str:
        payload = msgspec.json.encode({"sort": self.sort, "order": self.order, "key": self.key,
                                       "id": str(self.session_id)})
        return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    sort: str
    order: str
    key: int | str
    id: str


def decode_cursor(raw: str, *, sort: str, order: str, key_type: type, name: str = "cursor",
                  minimum: int = 0) -> Cursor:
    """Read a cursor made under ``sort`` and ``order``; anything else is a :class:`BadParameter`."""
    try:
        padded = raw + "=" * (-len(raw) % 4)
        payload = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode("ascii")), type=_Payload)
        session_id = uuid.UUID(payload.id)
    except (UnicodeEncodeError, binascii.Error, msgspec.DecodeError, ValueError):
        raise BadParameter(name, "is not a cursor this API made") from None
    if (payload.sort, payload.order) != (sort, order):
        raise BadParameter(name, f"was made for sort={payload.sort} order={payload.order}, "
                                 f"not sort={sort} order={order}; start again without a cursor")
    key = payload.key
    out_of_range = isinstance(key, int) and not minimum <= key <= MAX_INT
    if not isinstance(key, key_type) or isinstance(key, bool) or out_of_range:
        raise BadParameter(name, "is not a cursor this API made")
    return Cursor(sort, order, key, session_id)
