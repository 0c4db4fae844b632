"""Keeping accepted batches: the session upsert and the publish as one unit (invariants 1 and 2).

A batch is answered 2xx only once its message is confirmed by RabbitMQ *and* its session upsert is committed
in PostgreSQL; a batch answered 503 has no session row, and none of its events were published unless the
commit itself failed (below).

Batches arriving together are stored together, as PostgreSQL does group commit: while one group is in flight
the next ones queue, and a free worker takes everything queued as its group. Alone, a batch is a group of one
and waits for nobody. For a group, inside one transaction:

1. upsert the sessions of every batch, keep the links, buttons and text fields their pages show, and name the
   clicks the agent left unmarked that landed on a link or button and the inputs in a text field (one
   statement, see :mod:`agent_api.sessions`);
2. publish the group's rows as few messages as ``message_bytes`` allows (``BARD_AGENT_MESSAGE_BYTES``, 1 MiB by
   default; the rows of a batch are never split across messages; 1 gives every batch its own) and await the
   confirms;
3. all confirmed: commit. Some refused: roll back, then upsert and commit again for the batches of the
   confirmed messages only (their events are on their way to ClickHouse, so their sessions must be recorded);
   the batches of a refused message get 503 naming RabbitMQ and leave nothing anywhere.

A message per group rather than per batch: RabbitMQ's work, the publisher's and the consumer's are per message,
and at 10,000 events/s one message per 10-event batch made them most of the machine's CPU and the wait for
confirms most of a ``/record``'s time (BENCHMARKS.md); measured again against one message per batch, grouping
takes ~12 % less CPU per batch and is what keeps the p99 under the floor. The rows are the same JSONEachRow
rows, each with its batch's id, so a reader cannot tell how they travelled.

Metrics (Prometheus, see :mod:`bard.metrics`): batches and events accepted, batches refused by dependency, and
groups stored, counted once a group's outcome is known.

Groups are as large as the load makes them: ``workers`` (``BARD_AGENT_STORE_WORKERS``, 1 by default) groups are
in flight at once per process, and fewer workers make larger groups, so fewer transactions and messages.

If PostgreSQL fails before the publishes, nothing is published. One gap remains, on the safe side of
invariant 1: if a commit fails after the broker confirmed, those events still reach ClickHouse though the
answer is 503 and the session row is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import asyncpg
from prometheus_client import Counter

from agent_api.batches import Batch
from agent_api.errors import DependencyUnavailable
from agent_api.publisher import RABBITMQ, BatchPublisher
from agent_api.sessions import keep_sessions
from agent_api.tagging import Tag

log = logging.getLogger(__name__)

MESSAGE_BYTES = 1024 * 1024
"""A message holds the rows of as many batches of a group as fit in this many bytes (a larger batch goes
alone): big enough that a busy group is one message, small enough to stay far below RabbitMQ's message limit."""

POSTGRESQL = "PostgreSQL"
# PostgreSQL is down, restarting, out of connections or unreachable. Any other PostgresError is a bug of ours
# and stays a 500: calling it "unavailable" would send an operator after the wrong thing.
POSTGRES_EXCEPTIONS = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InterfaceError,
    # The server's "terminating connection" (a restart with a transaction open) arrived between two statements:
    # asyncpg's protocol is left consuming that error, and the next statement raises this.
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)

BATCHES_ACCEPTED = Counter("bard_agent_api_batches_accepted_total",
                           "Batches kept: published, confirmed by RabbitMQ, their sessions committed (answered 2xx)")
EVENTS_ACCEPTED = Counter("bard_agent_api_events_accepted_total", "Events in the batches accepted")
BATCHES_REFUSED = Counter("bard_agent_api_batches_refused_total",
                          "Batches answered 503, by the dependency that failed", ["dependency"])
GROUPS_STORED = Counter("bard_agent_api_groups_stored_total",
                        "Groups of batches stored together (one transaction each); batches / groups is the grouping")
for _dependency in (POSTGRESQL, RABBITMQ):
    BATCHES_REFUSED.labels(_dependency)  # present at 0 from the start, so that rate() sees the first refusal


@dataclass(slots=True)
class _Pending:
    batch: Batch
    batch_id: uuid.UUID
    received_at_ms: int
    rows: bytes = b""
    outcome: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def __post_init__(self) -> None:
        self.rows = self.batch.ingest_rows(self.batch_id, self.received_at_ms)

    def name_events(self, named: dict[int, Tag]) -> None:
        self.batch = self.batch.with_tags(named)
        self.rows = self.batch.ingest_rows(self.batch_id, self.received_at_ms)

    def settle(self, error: BaseException | None) -> None:
        if self.outcome.done():  # the request went away; nobody waits for the answer
            return
        if error is None:
            self.outcome.set_result(None)
        else:
            self.outcome.set_exception(error)


class BatchStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: BatchPublisher,
        *,
        workers: int = 1,
        max_group: int = 256,
        message_bytes: int = MESSAGE_BYTES,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._workers = workers
        self._max_group = max_group
        self._message_bytes = message_bytes
        self._timeout_seconds = timeout_seconds
        self._queued: list[_Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()  # references, so running workers are not collected
        self._active = 0
        self.groups_stored = 0  # with the batches, tells how much grouping the load gives
        self.batches_stored = 0

    async def store(self, batch: Batch, batch_id: uuid.UUID, received_at_ms: int) -> None:
        """Return once the batch is kept; raise :class:`DependencyUnavailable` when it was not."""
        pending = _Pending(batch, batch_id, received_at_ms)
        self._queued.append(pending)
        if self._active < self._workers:
            self._active += 1
            task = asyncio.create_task(self._work())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await pending.outcome

    async def _work(self) -> None:
        try:
            while self._queued:
                group = self._queued[: self._max_group]
                del self._queued[: self._max_group]
                try:
                    await self._store_group(group)
                except Exception as exc:
                    # Dependency failures are settled inside; this is a bug. Fail the group, keep working.
                    log.exception("storing a group of %d batches failed unexpectedly", len(group))
                    for pending in group:
                        pending.settle(RuntimeError(f"storing the batch failed: {exc!r}"))
                except BaseException:
                    for pending in group:
                        pending.settle(RuntimeError("the service is stopping"))
                    raise
        finally:
            # In the same step as the last look at the queue: a batch queued from now on starts a worker.
            self._active -= 1

    async def _store_group(self, group: list[_Pending]) -> None:
        self.groups_stored += 1
        self.batches_stored += len(group)
        GROUPS_STORED.inc()
        confirmed: list[_Pending] = []
        refused: list[tuple[_Pending, DependencyUnavailable]] = []
        try:
            async with self._pool.acquire(timeout=self._timeout_seconds) as conn:
                transaction = conn.transaction()
                await transaction.start()
                finished = False  # committed or rolled back (asyncpg's Transaction does not say)
                try:
                    for position, named in (await keep_sessions(conn, [p.batch for p in group])).items():
                        group[position].name_events(named)
                    messages = [[group[i] for i in run]
                                for run in pack_messages([len(p.rows) for p in group], self._message_bytes)]
                    results = await asyncio.gather(
                        *(self._publisher.publish_message(b"".join(p.rows for p in message)) for message in messages),
                        return_exceptions=True,
                    )
                    for message, result in zip(messages, results, strict=True):
                        if isinstance(result, DependencyUnavailable):
                            refused.extend((pending, result) for pending in message)
                        elif isinstance(result, BaseException):
                            raise result
                        else:
                            confirmed.extend(message)
                    finished = True  # from here on, rolling back again would only raise
                    if refused:
                        await transaction.rollback()
                    else:
                        await transaction.commit()
                except BaseException as exc:
                    if isinstance(exc, asyncpg.exceptions.InternalClientError):
                        conn.terminate()  # its protocol is wedged: the pool must not hand it out again
                    elif not finished and not conn.is_closed():
                        # The error in hand is the one to report; a rollback that fails too adds nothing to it.
                        with contextlib.suppress(*POSTGRES_EXCEPTIONS):
                            await transaction.rollback()
                    raise
                if refused and confirmed:
                    async with conn.transaction():  # their clicks and inputs went out named: nothing to look up
                        await keep_sessions(conn, [replace(p.batch, open_clicks=[], open_inputs=[])
                                                   for p in confirmed])
        except POSTGRES_EXCEPTIONS as exc:
            log.warning("storing %d batch(es) failed in PostgreSQL: %r", len(group), exc)
            BATCHES_REFUSED.labels(POSTGRESQL).inc(len(group))
            for pending in group:
                pending.settle(DependencyUnavailable(POSTGRESQL, type(exc).__name__))
            return
        if confirmed:
            BATCHES_ACCEPTED.inc(len(confirmed))
            EVENTS_ACCEPTED.inc(sum(len(p.batch.timestamps) for p in confirmed))
        if refused:
            BATCHES_REFUSED.labels(RABBITMQ).inc(len(refused))
        for pending in confirmed:
            pending.settle(None)
        for pending, error in refused:
            pending.settle(error)


def pack_messages(sizes: Sequence[int], max_bytes: int) -> list[range]:
    """Cut batches of these sizes, in order, into runs of at most ``max_bytes`` (a larger batch alone); each run
    is the indexes of one message's batches."""
    messages: list[range] = []
    first, size = 0, 0
    for index, batch_size in enumerate(sizes):
        if index > first and size + batch_size > max_bytes:
            messages.append(range(first, index))
            first, size = index, 0
        size += batch_size
    if sizes:
        messages.append(range(first, len(sizes)))
    return messages
