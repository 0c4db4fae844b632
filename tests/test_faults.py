"""The fault suite, small: each fault of ``bench/faults.py`` under a light open-loop load, on Bard's real
processes and on a PostgreSQL server and RabbitMQ node of the test's own, really stopped and started (see
``tests/faults.py``). Whatever the fault, an event accepted is visible to readers exactly once, a dependency
away is a 503 that names it, and Bard is back once the dependency is.

Not asserted: that a 503's batch never lands. Two windows let it: PostgreSQL going away between the publish
confirm and the commit, and a publish whose confirm was lost with the connection. Its events then land once
(bardrr never retries, so never twice); ``bench/faults.py`` reports how often ("landed though refused").
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import faults

pytestmark = [
    pytest.mark.slow,
    # Servers of the test's own, not the machine's; the markers say what it needs all the same.
    pytest.mark.postgres,
    pytest.mark.rabbitmq,
    pytest.mark.clickhouse,
    pytest.mark.skipif(shutil.which("rabbitmq-server") is None or not list(Path("/usr/lib/postgresql").glob("*/bin")),
                       reason="needs the PostgreSQL and RabbitMQ server binaries (bardctl installs them)"),
]

# 20 sessions, a batch from each every 0.25 s: 800 events/s, enough for every fault to meet requests in flight.
AGENTS, INTERVAL, BEFORE = 20, 0.25, 2.0
# A client that lost its connection (bard up killed) sees one of these, never an HTTP status.
NO_ANSWER = {"ConnectError", "ReadError", "RemoteProtocolError", "WriteError"}


@pytest.fixture
def servers() -> Iterator[tuple[Path, faults.PrivatePostgres, faults.PrivateRabbitMQ]]:
    with faults.services() as found:
        yield found


def assert_exactly_once(result: faults.Result) -> None:
    accounting = result.accounting
    assert accounting.accepted_events > 0, accounting
    assert (accounting.lost, accounting.twice) == (0, 0), accounting


@pytest.mark.parametrize("which, dependency", [("postgres", "PostgreSQL"), ("rabbitmq", "RabbitMQ")])
async def test_a_dependency_restarted_under_load_costs_503s_naming_it_and_nothing_else(
    servers: tuple[Path, faults.PrivatePostgres, faults.PrivateRabbitMQ], which: str, dependency: str
) -> None:
    result = await faults.dependency_restart(*servers, which, agents=AGENTS, interval=INTERVAL, before=BEFORE,
                                             down=2.0, after=4.0)

    assert_exactly_once(result)
    outcomes = result.accounting.outcomes
    assert set(outcomes) == {"200", f"503 {dependency}"}, outcomes  # the fault was met, and only as a 503
    assert result.outage is not None and result.outage.recovery_s < 5.0, result.outage


async def test_bard_up_killed_under_load_starts_again_on_its_data_and_loses_nothing(
    servers: tuple[Path, faults.PrivatePostgres, faults.PrivateRabbitMQ],
) -> None:
    result = await faults.bard_killed(*servers, agents=AGENTS, interval=INTERVAL, before=BEFORE, after=4.0)

    assert_exactly_once(result)
    outcomes = result.accounting.outcomes
    assert outcomes.get("200", 0) > 0 and set(outcomes) - {"200"} <= NO_ANSWER, outcomes
    assert set(outcomes) & NO_ANSWER, "the load met the dead Bard"
    assert result.outage is not None and result.outage.recovery_s < 5.0, result.outage


@pytest.mark.parametrize("step", ["read", "written"], ids=["before-clickhouse-write", "after-clickhouse-write"])
async def test_the_session_ender_killed_inside_a_move_then_rerun_ends_every_session_once(
    servers: tuple[Path, faults.PrivatePostgres, faults.PrivateRabbitMQ], step: str
) -> None:
    result = await faults.ender_killed(*servers, step, agents=AGENTS, interval=INTERVAL, before=BEFORE)

    assert_exactly_once(result)
    notes = result.notes
    assert notes["killed"].startswith(f"killed at {step} with "), notes
    assert notes["sessions_ended"] == notes["sessions"] == AGENTS, notes
    assert (notes["sessions_with_wrong_counts"], notes["left_active"]) == (0, 0), notes


async def test_inserts_failing_under_load_delay_rows_but_lose_none(
    servers: tuple[Path, faults.PrivatePostgres, faults.PrivateRabbitMQ],
) -> None:
    result = await faults.inserts_failing(*servers, agents=AGENTS, interval=INTERVAL, before=BEFORE, down=2.0,
                                          after=3.0)

    assert_exactly_once(result)
    assert result.notes["failed_inserts"] > 0, "the fault was met"
    assert set(result.accounting.outcomes) == {"200"}, "/record does not wait for ClickHouse"
