"""Benchmark: what the Prometheus metrics add to one request, in microseconds, with values in memory (one process)
and in memory-mapped files (multiprocess mode, as under ``bard up`` and ``bard agent-api --workers N``).

    .venv/bin/python bench/metrics_overhead.py --calls 20000 --repeat 5

Per mode, in a fresh interpreter (prometheus_client picks its mode once, at import), three things are timed
``--calls`` times each, and the median of ``--repeat`` rounds is reported:

- ``middleware``: :class:`bard.metrics.RequestMetrics` around an ASGI app that does nothing but what the
  router does (name the route in the scope) and answer, minus the same app called bare;
- ``record``: ``middleware`` plus what the worst ``/record`` adds besides (a group of one batch: the batch and
  event counters, the group counter, the publish's ack counter and confirm histogram);
- ``unrouted``: the middleware for a request answered before the router (a 401 of the replayer API's
  credentials), which matches the path against the replayer API's 30-odd routes itself;
- ``consumer message``: what the consumer adds per queue message (reading ``received_at`` from the first row of
  a message in the agent API's format, the lag histogram, the acked counter).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(calls: int, repeat: int) -> dict[str, float]:
    """In this interpreter, in whatever mode the environment chose: microseconds per call, by what is timed."""
    import msgspec
    from starlette.types import Message, Receive, Scope, Send

    from agent_api import publisher, storage
    from agent_api.app import create_app as create_agent_app
    from agent_api.batches import parse_batch
    from bard.metrics import RequestMetrics
    from bard.settings import Settings
    from clickhouse import consumer
    from replayer_api.app import create_app as create_replayer_app
    from tests import bardrr_events as bardrr

    settings = Settings(jwt_secret="bench-" * 8, dashboard_token="bench")
    record_route = next(r for r in create_agent_app(settings).routes if getattr(r, "path", "") == "/record")
    replayer_routes = create_replayer_app(settings).routes
    start = {"type": "http.response.start", "status": 200, "headers": []}
    body = {"type": "http.response.body", "body": b"{}"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = record_route  # what the router leaves in the scope
        await send(start)
        await send(body)

    async def refused(scope: Scope, receive: Receive, send: Send) -> None:
        await send({**start, "status": 401})
        await send(body)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    def per_batch() -> None:
        storage.GROUPS_STORED.inc()
        publisher.CONFIRM_SECONDS.observe(0.004)
        publisher._ACK.inc()
        storage.BATCHES_ACCEPTED.inc(1)
        storage.EVENTS_ACCEPTED.inc(10)

    batch = parse_batch(msgspec.json.encode(bardrr.record_body(bardrr.first_batch())), "shop",
                        max_idle_default_ms=60_000, max_idle_max_ms=3_600_000)
    message = batch.ingest_rows(uuid.uuid4(), bardrr.now_ms())

    def per_message() -> None:
        received_at_ms = consumer._received_at_ms(message)
        assert received_at_ms is not None
        consumer.LAG_SECONDS.observe(max(0.0, time.time() * 1000 - received_at_ms) / 1000)
        consumer._ACKED.inc(1)

    timed = RequestMetrics(app, api="agent", routes=[record_route])
    unrouted = RequestMetrics(refused, api="replayer", routes=replayer_routes)

    async def run(target: Any, scope: Scope, extra: Any = None) -> float:
        began = time.perf_counter()
        for _ in range(calls):
            await target(dict(scope), receive, send)
            if extra is not None:
                extra()
        return (time.perf_counter() - began) / calls * 1e6

    async def rounds() -> dict[str, float]:
        scope = {"type": "http", "method": "POST", "path": "/record"}
        session = {"type": "http", "method": "GET", "path": "/v1/sessions/0d9ab0a6-1c6e-4b8e-9f0e-2c1b8f3f6a51"}
        found: dict[str, list[float]] = {"middleware": [], "record": [], "unrouted": [], "consumer message": []}
        await run(timed, scope)  # warm up: the labelled children exist from here on
        await run(unrouted, session)
        for _ in range(repeat):
            bare = await run(app, scope)
            found["middleware"].append(await run(timed, scope) - bare)
            found["record"].append(await run(timed, scope, per_batch) - bare)
            found["unrouted"].append(await run(unrouted, session) - await run(refused, session))
            began = time.perf_counter()
            for _ in range(calls):
                per_message()
            found["consumer message"].append((time.perf_counter() - began) / calls * 1e6)
        return {name: statistics.median(values) for name, values in found.items()}

    return asyncio.run(rounds())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.calls, args.repeat)))
        return
    print(f"{args.calls} calls, median of {args.repeat} rounds, microseconds per request")
    for mode in ("in memory", "multiprocess"):
        with tempfile.TemporaryDirectory(prefix="bard-metrics-bench-") as directory:
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
            if mode == "multiprocess":
                env["PROMETHEUS_MULTIPROC_DIR"] = directory
            out = subprocess.run([sys.executable, __file__, "--child", f"--calls={args.calls}",
                                  f"--repeat={args.repeat}"], env=env, check=True, capture_output=True, text=True)
        result = json.loads(out.stdout)
        print(f"  {mode:<13}" + "".join(f"  {name} {us:5.2f} us" for name, us in result.items()))


if __name__ == "__main__":
    main()
