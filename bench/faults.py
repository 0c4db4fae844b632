"""The fault suite: what each fault costs under load, on Bard's real processes and real servers.

    .venv/bin/python bench/faults.py                          # every scenario
    .venv/bin/python bench/faults.py --scenario postgres --agents 100 --interval 0.2 --json

Each scenario gets a PostgreSQL server and a RabbitMQ node of its own (on free ports, in a temporary
directory; the machine's own servers are never touched), a fresh data directory, and an open-loop bardrr load
(``--agents`` sessions, a 10-event batch from each every ``--interval`` s; 50 agents at 0.2 s is 2,500
events/s). The load is httpx in this process, on the same 2 cores as Bard: past ~250 requests/s it falls
behind, and its own limits show up as outcomes (``PoolTimeout``: all 6 connections of an agent busy). The
scenarios (``tests/faults.py`` has the machinery; ``tests/test_faults.py`` runs them smaller):

- ``postgres``: PostgreSQL stopped (``pg_ctl -m fast``: every session ended by the server, as a restart does)
  for ``--down`` s and started again, behind ``bard up``;
- ``rabbitmq``: the RabbitMQ node stopped for ``--down`` s and started again, behind ``bard up``;
- ``kill``: ``bard up`` killed with SIGKILL and started again on the same data;
- ``ender-read``, ``ender-written``: the session ender killed with SIGKILL inside a move, before its
  ClickHouse write (``read``: sessions read and merged) and after it (``written``: inserted, PostgreSQL rows
  not yet deleted), then run again;
- ``inserts``: the consumer's inserts failing for ``--down`` s (its table renamed away), with the agent API and
  the consumer in processes of their own, as production runs them.

Each reports: batches sent and their outcomes (``200``, ``503 PostgreSQL``, ``ConnectError``, ...); events
accepted but not visible to readers (lost); events visible twice; events that landed although their batch got
an error (a client that retries would make those visible twice); and, for the faults with an outage, how long
after the dependency was back requests still failed (recovery). The ender scenarios also report sessions whose
ended row does not count exactly the events accepted for them, and sessions left active.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # the child processes run `python -m tests.fault_children`

from tests import faults  # noqa: E402

SCENARIOS = ("postgres", "rabbitmq", "kill", "ender-read", "ender-written", "inserts")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("all", *SCENARIOS), default="all")
    parser.add_argument("--agents", type=int, default=50, help="sessions sending at once")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between one agent's batches")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of load before the fault")
    parser.add_argument("--down", type=float, default=3.0, help="seconds the dependency stays away")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of load after it is back")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args()


async def run(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    load = {"agents": args.agents, "interval": args.interval, "before": args.before}
    with faults.services() as (root, postgres, rabbitmq):
        if scenario in ("postgres", "rabbitmq"):
            result = await faults.dependency_restart(root, postgres, rabbitmq, scenario, **load, down=args.down,
                                                     after=args.after)
        elif scenario == "kill":
            result = await faults.bard_killed(root, postgres, rabbitmq, **load, after=args.after)
        elif scenario.startswith("ender-"):
            result = await faults.ender_killed(root, postgres, rabbitmq, scenario.removeprefix("ender-"), **load)
        else:
            result = await faults.inserts_failing(root, postgres, rabbitmq, **load, down=args.down,
                                                  after=args.after)
    return result.as_dict()


def main() -> None:
    args = arguments()
    results = []
    for scenario in SCENARIOS if args.scenario == "all" else (args.scenario,):
        found = asyncio.run(run(scenario, args))
        results.append(found)
        if not args.json:
            print(f"{found['scenario']}: {found['batches']} batches {found['outcomes']}; accepted "
                  f"{found['accepted_events']} events, lost {found['lost']}, visible twice {found['twice']}, "
                  f"landed though refused {found['landed_though_refused']}"
                  + (f"; recovered {found['recovery_s']} s after the fault ended" if "recovery_s" in found else "")
                  + "".join(f"; {k} {found[k]}" for k in ("sessions", "sessions_ended", "sessions_with_wrong_counts",
                                                           "left_active", "killed", "failed_inserts")
                            if k in found), flush=True)
    if args.json:
        print(json.dumps({"machine": {"cores": os.cpu_count(), "load_average_1m": os.getloadavg()[0]},
                          "settings": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
