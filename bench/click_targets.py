"""Benchmark: what finding links and buttons in a full snapshot costs the agent API (CPU on its event loop, once
per page view), by snapshot size.

    .venv/bin/python bench/click_targets.py --products 30 2000 --repeat 7

Each size is the test fixture's product-list page (``tests/bardrr_events.full_snapshot``) with N products. For
each: the median over ``--repeat`` rounds of ``parse_batch`` on a first batch (Meta, the snapshot, eight small
events) with the targets found, and the same with the look for targets switched off, so the difference is
what naming link clicks costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent_api import batches  # noqa: E402
from agent_api.click_targets import snapshot_targets  # noqa: E402
from tests import bardrr_events as bardrr  # noqa: E402


def per_call_ms(body: bytes, rounds: int) -> float:
    calls = max(1, int(2_000_000 / len(body)))  # ~2 MB of bodies per round
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            batches.parse_batch(body, "bench", max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)
        timings.append((time.perf_counter() - started) / calls * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, nargs="+", default=[30, 300, 2000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    looks = batches.may_hold_targets
    for products in args.products:
        events = bardrr.first_batch()
        events[1] = bardrr.full_snapshot(events[1]["timestamp"], products=products)
        body = msgspec.json.encode(bardrr.record_body(events, str(uuid.uuid4())))
        found = len(snapshot_targets(msgspec.json.encode(events[1])))
        batches.may_hold_targets = looks
        with_targets = per_call_ms(body, args.repeat)
        batches.may_hold_targets = lambda raw: False
        without = per_call_ms(body, args.repeat)
        batches.may_hold_targets = looks
        print(f"{products:>5} products, {len(body) / 1024:,.0f} KB, {found} targets: parse_batch {with_targets:.3f} ms "
              f"with the targets found, {without:.3f} ms without: {with_targets - without:.3f} ms for the targets")


if __name__ == "__main__":
    main()
