"""Where the CPU goes while a benchmark runs: every process's CPU time, read twice from ``/proc``, grouped by
part of Bard, as a share of one core.

    .venv/bin/python bench/cpu_split.py 10 20 &   # wait 10 s, then measure for 20 s
    .venv/bin/python bench/ingest.py --agents 200 --rate 50 --duration 35
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

PARTS = (
    ("postgres", "postgres (all backends)"),
    ("beam.smp", "rabbitmq (beam.smp)"),
    ("bard consumer", "bard consumer (chDB in process)"),
    ("bard up", "bard up"),
    ("agent-api", "agent API (uvicorn workers + supervisor)"),
    ("multiprocessing", "agent API (uvicorn workers + supervisor)"),
    ("bench/ingest.py", "load generator (bench)"),
)


def snapshot() -> dict[str, tuple[int, str]]:
    """pid -> (user + system clock ticks, command line)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                fields = stat.read().rsplit(")", 1)[1].split()
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        found[pid] = (int(fields[11]) + int(fields[12]), command)
    return found


def part_of(command: str) -> str:
    return next((name for needle, name in PARTS if needle in command), "other: " + command[:40])


def shares_since(before: dict[str, tuple[int, str]], seconds: float) -> dict[str, float]:
    """Each part's CPU since the ``before`` snapshot, as a share of one core, largest first."""
    ticks = os.sysconf("SC_CLK_TCK")
    shares: Counter[str] = Counter()
    for pid, (spent, command) in snapshot().items():
        shares[part_of(command)] += spent - before.get(pid, (0, ""))[0]
    return {name: spent / ticks / seconds for name, spent in shares.most_common() if spent > 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wait", type=float, help="seconds before the first reading")
    parser.add_argument("seconds", type=float, help="seconds between the two readings")
    args = parser.parse_args()
    time.sleep(args.wait)
    before, started = snapshot(), time.monotonic()
    time.sleep(args.seconds)
    for name, share in list(shares_since(before, time.monotonic() - started).items())[:10]:
        print(f"{100 * share:6.1f}% of one core  {name}")


if __name__ == "__main__":
    main()
