"""How fast this machine is right now: fixed pieces of work, timed, to print beside a benchmark's figures.

The benchmark machine is a 2-vCPU VM on a shared host. Its speed drifts by tens of percent within a day while
its load average and steal time stay near zero (BENCHMARKS.md: the same ``bard up`` run took 1.55 ms of CPU per
batch at 19:31 and 1.75 ms at 20:05 on 2026-12-02), and its two vCPUs need not be equally fast (that evening the
same work took 33-40 ms on one and 23-25 ms on the other), so a figure means little without the speed it was
taken at. Two single-threaded measures, each the median of several rounds:

- ``python_ms``: Python calls, dicts, strings and JSON over 2,000 small rows, as Bard's hot paths do, on each CPU
  this process may use in turn (lower is faster);
- ``memory_gbps``: copying 16 MiB, far beyond the caches, into a buffer already mapped (bandwidth, not page
  faults; higher is faster).

Compare them only with themselves on the same kind of machine.

    .venv/bin/python -m bench.machine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

_ROWS = [{"session_id": f"s{i % 97}", "kind": "click", "label": f"label_{i % 20}", "ts": 1_700_000_000_000 + i}
         for i in range(2_000)]
_BLOCK = bytes(range(256)) * (64 * 1024)  # 16 MiB
_TARGET = bytearray(len(_BLOCK))


def _python() -> int:
    counts: dict[tuple[str, str], int] = {}
    for _ in range(5):
        for row in json.loads(json.dumps(_ROWS)):
            key = (row["session_id"], row["label"].upper())
            counts[key] = counts.get(key, 0) + (row["ts"] & 1)
    return len(counts)


def _copy() -> int:
    for _ in range(4):
        _TARGET[:] = _BLOCK
    return 4 * len(_BLOCK)


def _median_seconds(work: Callable[[], int], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def speed(rounds: int = 7) -> dict[str, Any]:
    """``{"python_ms": {cpu: ms}, "memory_gbps": ...}``, medians of ``rounds`` rounds (~0.03 s a round and CPU
    here, ~0.03 s a round of copying)."""
    allowed = os.sched_getaffinity(0)
    python_ms = {}
    try:
        for cpu in sorted(allowed):
            os.sched_setaffinity(0, {cpu})
            python_ms[cpu] = round(_median_seconds(_python, rounds) * 1000, 1)
    finally:
        os.sched_setaffinity(0, allowed)
    copy_s = _median_seconds(_copy, rounds)
    return {"python_ms": python_ms, "memory_gbps": round(4 * len(_BLOCK) / copy_s / 1e9, 2)}


def describe(measured: dict[str, Any]) -> str:
    per_cpu = ", ".join(f"CPU {cpu} {ms} ms" for cpu, ms in measured["python_ms"].items())
    return f"Python work {per_cpu} (lower is faster); memory copy {measured['memory_gbps']} GB/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"machine speed: {describe(speed(args.rounds))}")


if __name__ == "__main__":
    main()
