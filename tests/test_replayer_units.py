"""Pieces of the replayer API that need no service: cursors, parameter parsing, and the shape of the session
queries (their text depends on which filters and which sort, never on values)."""

from __future__ import annotations

import uuid

import pytest

from clickhouse.session_filters import AppNameFilter, DurationFilter, ErrorsFilter, IdPrefixFilter
from replayer_api.cursors import Cursor, decode_cursor
from replayer_api.errors import BadParameter
from replayer_api.parameters import iso_ms, parse_instant, parse_int
from replayer_api.sessions import (
    READ,
    SORT_KEYS,
    START,
    candidates_query,
    legacy_ordering,
    verified_query,
)

HOSTILE = "x'); DROP TABLE sessions; --"


def test_cursor_round_trip_and_refusals() -> None:
    cursor = Cursor("app", "asc", "shop", uuid.uuid4())
    assert decode_cursor(cursor.encode(), sort="app", order="asc", key_type=str) == cursor
    with pytest.raises(BadParameter, match="sort=app order=asc"):
        decode_cursor(cursor.encode(), sort="app", order="desc", key_type=str)
    with pytest.raises(BadParameter, match="not a cursor"):
        decode_cursor(cursor.encode(), sort="app", order="asc", key_type=int)
    for raw in ("", "%%%", "bm90IGpzb24", Cursor("app", "asc", -1, uuid.uuid4()).encode()[:-3], "é"):
        with pytest.raises(BadParameter):
            decode_cursor(raw, sort="app", order="asc", key_type=str)
    negative = Cursor("start", "asc", -5, uuid.uuid4()).encode()
    with pytest.raises(BadParameter, match="not a cursor"):
        decode_cursor(negative, sort="start", order="asc", key_type=int)


@pytest.mark.parametrize(("raw", "expected"), [
    ("0", 0), ("1767225600000", 1_767_225_600_000), ("2026-01-01T00:00:00Z", 1_767_225_600_000),
    ("2026-01-01T01:00:00+01:00", 1_767_225_600_000), ("2026-01-01T00:00:00.250", 1_767_225_600_250),
    ("2026-01-01", 1_767_225_600_000),
])
def test_instants(raw: str, expected: int) -> None:
    assert parse_instant(raw, "t") == expected


@pytest.mark.parametrize("raw", ["", "soon", "1e9", "1969-12-31T00:00:00Z", "-5", "2026-02-30",
                                 "9223372036854775807", "2300-01-01T00:00:00Z"])
def test_bad_instants(raw: str) -> None:
    with pytest.raises(BadParameter, match="^t: "):
        parse_instant(raw, "t")


@pytest.mark.parametrize("raw", ["", "1.5", "0x10", "١٢", "9" * 30, " ", "+-1"])
def test_bad_integers(raw: str) -> None:
    with pytest.raises(BadParameter, match="^n: "):
        parse_int(raw, "n")


def test_iso_ms() -> None:
    assert iso_ms(1_767_225_600_999) == "2026-01-01T00:00:00.999Z"
    assert iso_ms(10**20) == str(10**20)  # an untrusted client clock past any calendar




def test_query_text_depends_on_shape_only_and_values_are_bound() -> None:
    one = (AppNameFilter(names=("shop",)), DurationFilter(min_ms=5), ErrorsFilter(has_errors=True),
           IdPrefixFilter(prefix="ab"))
    other = (AppNameFilter(names=(HOSTILE, "blog")), DurationFilter(min_ms=10**12), ErrorsFilter(has_errors=False),
             IdPrefixFilter(prefix="ff"))
    ordering = SORT_KEYS["app"].ordering("desc")
    sql_one, params_one = candidates_query(one, ordering, (HOSTILE, uuid.uuid4()), 10)
    sql_other, params_other = candidates_query(other, ordering, ("b", uuid.uuid4()), 99)
    assert sql_one == sql_other
    assert HOSTILE not in sql_one and HOSTILE in params_one.values()
    assert params_other["p0"] == [HOSTILE, "blog"]
    assert sql_one == (
        "SELECT session_id, app_name, session_id FROM sessions "
        "WHERE app_name IN {p0: Array(String)} AND duration_ms >= {p1: UInt64} AND (error_count > 0) = {p2: Bool} "
        "AND startsWith(toString(session_id), {p3: String}) "
        "AND ((app_name < {p4: String}) OR (app_name = {p5: String} AND session_id < {p6: UUID})) "
        "ORDER BY app_name DESC, session_id DESC LIMIT {p7: UInt64}"
    )
    assert params_other["p7"] == 99 and params_other["p2"] is False


def test_verification_query_reads_newest_versions_within_bounds() -> None:
    ordering = legacy_ordering(START, "DESC")
    sql, params = verified_query((ErrorsFilter(has_errors=False),), ordering, None, (5, "abc"), ["id-1", "id-2"], 6)
    assert sql == (
        'SELECT session_id, app_name, toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(ended_at), '
        'duration_ms, event_count, error_count, browser, browser_major, os, device_type, viewport_width, '
        'viewport_height, entry_url, entry_path, exit_path, page_count, click_count, rage_click_count, '
        'dead_click_count, error_click_count, country FROM (SELECT session_id, tupleElement(latest, 1) AS app_name, '
        'tupleElement(latest, 2) AS started_at, tupleElement(latest, 3) AS ended_at, tupleElement(latest, 4) '
        'AS duration_ms, tupleElement(latest, 5) AS event_count, tupleElement(latest, 6) AS error_count, '
        'tupleElement(latest, 7) AS browser, tupleElement(latest, 8) AS browser_major, tupleElement(latest, '
        '9) AS os, tupleElement(latest, 10) AS device_type, tupleElement(latest, 11) AS viewport_width, '
        'tupleElement(latest, 12) AS viewport_height, tupleElement(latest, 13) AS entry_url, '
        'tupleElement(latest, 14) AS entry_path, tupleElement(latest, 15) AS exit_path, tupleElement(latest, '
        '16) AS page_count, tupleElement(latest, 17) AS click_count, tupleElement(latest, 18) AS '
        'rage_click_count, tupleElement(latest, 19) AS dead_click_count, tupleElement(latest, 20) AS '
        'error_click_count, tupleElement(latest, 21) AS country FROM (SELECT session_id, argMax((app_name, '
        'started_at, ended_at, duration_ms, '
        'event_count, error_count, browser, browser_major, os, device_type, viewport_width, viewport_height, '
        'entry_url, entry_path, exit_path, page_count, click_count, rage_click_count, dead_click_count, '
        'error_click_count, country), version) AS latest FROM sessions WHERE session_id IN {p0: Array(UUID)} GROUP BY '
        'session_id)) WHERE (error_count > 0) = {p1: Bool} AND NOT ((started_at < '
        "fromUnixTimestamp64Milli({p2: Int64}, 'UTC')) OR (started_at = fromUnixTimestamp64Milli({p3: Int64}, "
        "'UTC') AND toString(session_id) > {p4: String})) ORDER BY started_at DESC, toString(session_id) ASC "
        'LIMIT {p5: UInt64}'
    )
    assert READ[:7] == ("session_id", "app_name", "toUnixTimestamp64Milli(started_at)",
                        "toUnixTimestamp64Milli(ended_at)", "duration_ms", "event_count", "error_count")
    assert params == {"p0": ["id-1", "id-2"], "p1": False, "p2": 5, "p3": 5, "p4": "abc", "p5": 6}
