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

Compare them only with themselves on the same kind of machine. A benchmark takes them with
:func:`measured_apart`, in a process of its own, so that the work's buffers (32 MiB) and CPU never count in the
benchmark's own peak RSS or CPU figures.

    .venv/bin/python -m bench.machine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_BLOCK_BYTES = 16 * 1024 * 1024
_COPIES = 4  # per round


def _python_work() -> Callable[[], object]:
    rows = [{"session_id": f"s{i % 97}", "kind": "click", "label": f"label_{i % 20}", "ts": 1_700_000_000_000 + i}
            for i in range(2_000)]

    def work() -> int:
        counts: dict[tuple[str, str], int] = {}
        for _ in range(5):
            for row in json.loads(json.dumps(rows)):
                key = (row["session_id"], row["label"].upper())
                counts[key] = counts.get(key, 0) + (row["ts"] & 1)
        return len(counts)

    return work


def _copy_work() -> Callable[[], object]:
    block = bytes(range(256)) * (_BLOCK_BYTES // 256)
    target = bytearray(_BLOCK_BYTES)  # written over in place: bandwidth, not page faults

    def work() -> None:
        for _ in range(_COPIES):
            target[:] = block

    return work


def _median_seconds(work: Callable[[], object], rounds: int) -> float:
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
    python = _python_work()
    python_ms = {}
    try:
        for cpu in sorted(allowed):
            os.sched_setaffinity(0, {cpu})
            python_ms[cpu] = round(_median_seconds(python, rounds) * 1000, 1)
    finally:
        os.sched_setaffinity(0, allowed)
    copy_s = _median_seconds(_copy_work(), rounds)
    return {"python_ms": python_ms, "memory_gbps": round(_COPIES * _BLOCK_BYTES / copy_s / 1e9, 2)}


def measured_apart(rounds: int = 7) -> dict[str, Any]:
    """:func:`speed`, taken in a child process (its CPU numbers come back as strings, as JSON keys)."""
    out = subprocess.run([sys.executable, "-m", "bench.machine", "--json", "--rounds", str(rounds)], cwd=ROOT,
                         check=True, capture_output=True, text=True)
    measured: dict[str, Any] = json.loads(out.stdout)
    return measured


def describe(measured: dict[str, Any]) -> str:
    per_cpu = ", ".join(f"CPU {cpu} {ms} ms" for cpu, ms in measured["python_ms"].items())
    return f"Python work {per_cpu} (lower is faster); memory copy {measured['memory_gbps']} GB/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the measures as JSON")
    args = parser.parse_args()
    measured = speed(args.rounds)
    print(json.dumps(measured) if args.json else f"machine speed: {describe(measured)}")


if __name__ == "__main__":
    main()
