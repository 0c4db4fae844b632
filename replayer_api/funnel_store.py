"""Funnels in PostgreSQL: create, list, read, update, soft delete.

A funnel is stored in the funnel engine's clean form (``funnels.definition.to_clean``) and rendered in either
API's form on the way out. A deleted funnel keeps its row with ``deleted_at`` set and is, to every reader,
gone: reads, updates and deletes of it answer "not found".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from funnels.definition import FunnelDefinition, from_clean, to_clean
from replayer_api.errors import NotFound

# bigserial ids: anything past this cannot name a funnel.
MAX_FUNNEL_ID = 2**63 - 1


@dataclass(frozen=True)
class StoredFunnel:
    id: int
    definition: FunnelDefinition
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> StoredFunnel:
        return cls(record["id"], from_clean(record["definition"]), record["created_at"], record["updated_at"])


def _encode(definition: FunnelDefinition) -> str:
    return msgspec.json.encode(to_clean(definition)).decode()


_PAGE = ("SELECT id, definition::text AS definition, created_at, updated_at, count(*) OVER () AS total "
         "FROM funnels WHERE deleted_at IS NULL ORDER BY ")
_LIMIT = " LIMIT $1 OFFSET $2"
# The legacy list's sorts, each a whole constant query (the sort is the one part a request chooses): by
# (sortBy, sortOrder), ties on id in the same direction.
PAGE_QUERIES = {
    ("name", "ascending"): _PAGE + "name ASC, id ASC" + _LIMIT,
    ("name", "descending"): _PAGE + "name DESC, id DESC" + _LIMIT,
    ("created", "ascending"): _PAGE + "created_at ASC, id ASC" + _LIMIT,
    ("created", "descending"): _PAGE + "created_at DESC, id DESC" + _LIMIT,
    ("lastModified", "ascending"): _PAGE + "updated_at ASC, id ASC" + _LIMIT,
    ("lastModified", "descending"): _PAGE + "updated_at DESC, id DESC" + _LIMIT,
}
ORDER_COLUMNS = ("name", "created", "lastModified")


class FunnelStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, definition: FunnelDefinition) -> StoredFunnel:
        record = await self._pool.fetchrow(
            "INSERT INTO funnels (name, definition) VALUES ($1, $2::jsonb) "
            "RETURNING id, definition::text AS definition, created_at, updated_at",
            definition.name, _encode(definition),
        )
        assert record is not None
        return StoredFunnel.from_record(record)

    async def list(self) -> list[StoredFunnel]:
        records = await self._pool.fetch(
            "SELECT id, definition::text AS definition, created_at, updated_at FROM funnels "
            "WHERE deleted_at IS NULL ORDER BY id"
        )
        return [StoredFunnel.from_record(r) for r in records]

    async def page(self, order_by: str, direction: str, limit: int, offset: int) -> tuple[Sequence[StoredFunnel], int]:
        """One page of live funnels, and how many there are: ``order_by`` one of :data:`ORDER_COLUMNS`,
        ``direction`` ``ascending`` or ``descending`` (:data:`PAGE_QUERIES`); ties break on ``id``."""
        records = await self._pool.fetch(PAGE_QUERIES[order_by, direction], limit, offset)
        if records:
            return [StoredFunnel.from_record(r) for r in records], records[0]["total"]
        total = await self._pool.fetchval("SELECT count(*) FROM funnels WHERE deleted_at IS NULL")
        return [], total

    async def get(self, funnel_id: int) -> StoredFunnel:
        record = await self._pool.fetchrow(
            "SELECT id, definition::text AS definition, created_at, updated_at FROM funnels "
            "WHERE id = $1 AND deleted_at IS NULL",
            funnel_id,
        )
        if record is None:
            raise NotFound("funnel", funnel_id)
        return StoredFunnel.from_record(record)

    async def update(self, funnel_id: int, definition: FunnelDefinition) -> StoredFunnel:
        record = await self._pool.fetchrow(
            "UPDATE funnels SET name = $2, definition = $3::jsonb, updated_at = now() "
            "WHERE id = $1 AND deleted_at IS NULL "
            "RETURNING id, definition::text AS definition, created_at, updated_at",
            funnel_id, definition.name, _encode(definition),
        )
        if record is None:
            raise NotFound("funnel", funnel_id)
        return StoredFunnel.from_record(record)

    async def delete(self, funnel_id: int) -> None:
        status = await self._pool.execute(
            "UPDATE funnels SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL", funnel_id
        )
        if status != "UPDATE 1":
            raise NotFound("funnel", funnel_id)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def clean_json(funnel: StoredFunnel) -> dict[str, Any]:
    """The ``/v1`` form: the clean definition with its id and times."""
    return {"id": funnel.id, **to_clean(funnel.definition), "created_at": iso(funnel.created_at),
            "updated_at": iso(funnel.updated_at)}
