"""Processes the fault suite kills or breaks from outside, running Bard's own code on Bard's settings (the
``BARD_*`` environment). chDB opens a data directory in one process only, so these run as processes of their
own, not in the suite's.

    python -m tests.fault_children ender --kill-at written
        One session-ender run that SIGKILLs its own process at that step of its first move
        (session_ender.ender.MoveStep: claimed, read, written, deleted); without --kill-at, a whole run that
        prints how many sessions it ended.
    python -m tests.fault_children consumer
        Bard's consumer, reading commands from stdin: "break" renames the events table away (every insert
        fails from then on), "mend" renames it back, "stop" stops the consumer as SIGTERM would. It prints
        "ready", then one line per command done, and how many inserts failed when it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import aio_pika

from bard import postgres
from bard.settings import Settings, with_secrets
from clickhouse.client import client_for
from clickhouse.consumer import Consumer
from session_ender.ender import ActiveSegment, MoveStep, SessionEnder


async def ender(settings: Settings, kill_at: MoveStep | None) -> None:
    async def kill(step: MoveStep, segments: Sequence[ActiveSegment]) -> None:
        if step is kill_at:
            print(f"killed at {step.value} with {len(segments)} sessions", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    pool = await postgres.create_pool(settings.postgres_url, min_size=1, max_size=2)
    client = await asyncio.to_thread(client_for, settings)
    try:
        moved = SessionEnder(pool, client, grace_seconds=settings.ender_grace_seconds,
                             batch_size=settings.ender_batch_size, on_step=kill if kill_at else None)
        result = await moved.expire_sessions()
        print(f"ended {result.ended}", flush=True)
    finally:
        await pool.close()
        client.close()


async def consumer(settings: Settings) -> None:
    client = await asyncio.to_thread(client_for, settings)
    db = settings.resolved_clickhouse_database
    connection = await aio_pika.connect_robust(settings.amqp_url)
    loop = asyncio.get_running_loop()
    try:
        async with Consumer(settings, client, connection) as running:
            print("ready", flush=True)
            while (line := (await loop.run_in_executor(None, sys.stdin.readline)).strip()) not in ("stop", ""):
                if line == "break":
                    await asyncio.to_thread(client.command, f"RENAME TABLE {db}.events TO {db}.events_away")
                elif line == "mend":
                    await asyncio.to_thread(client.command, f"RENAME TABLE {db}.events_away TO {db}.events")
                print(line, flush=True)
    finally:
        await connection.close()
        client.close()
    print(f"stopped after {running.stats.insert_failures} failed inserts", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    ender_command = commands.add_parser("ender")
    ender_command.add_argument("--kill-at", choices=[s.value for s in MoveStep], default=None)
    commands.add_parser("consumer")
    args = parser.parse_args()
    settings = with_secrets(Settings.from_environ())
    if args.command == "ender":
        asyncio.run(ender(settings, MoveStep(args.kill_at) if args.kill_at else None))
    else:
        asyncio.run(consumer(settings))


if __name__ == "__main__":
    main()
