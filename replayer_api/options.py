"""Distinct values for autocomplete: app names and conversion labels (button texts and custom event tags)."""

from __future__ import annotations

from replayer_api.warehouse import Warehouse

CONVERSION_KINDS = ("click", "custom", "page", "input", "rage_click", "dead_click", "error_click")


async def conversion_labels(warehouse: Warehouse, kind: str, prefix: str = "", limit: int | None = None) -> list[str]:
    """Distinct non-empty labels of one kind, sorted; ``conversion_events`` is sorted by (kind, label), so this is
    a range. A behaviour signal on an element Bard does not name has the label ``''``, which no funnel step can
    name (a step's label is never empty), so it is not offered."""
    assert kind in CONVERSION_KINDS
    parameters: dict[str, object] = {"kind": kind, "prefix": prefix, "limit": limit if limit is not None else 0}
    # LIMIT 0 would return nothing; ClickHouse has no "no limit" value, so the largest UInt64 stands for it.
    if limit is None:
        parameters["limit"] = 2**64 - 1
    rows = await warehouse.rows(
        "SELECT DISTINCT label FROM conversion_events "
        "WHERE kind = {kind:String} AND label != '' AND startsWith(label, {prefix:String}) "
        "ORDER BY label LIMIT {limit:UInt64}",
        parameters,
    )
    return [row[0] for row in rows]
