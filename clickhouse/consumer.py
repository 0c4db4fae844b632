"""The embedded consumer: Bard's queue into ClickHouse where ClickHouse has no RabbitMQ engine (chDB).

It plays the engine's part with the same bytes: every message is JSONEachRow in the shape of
:data:`clickhouse.schema.INGEST_COLUMNS`, and the consumer inserts the concatenated bodies of a batch into
``ingest``, from where the same materialized views as in server mode fill ``events`` and ``conversion_events``.

Policy, in the order a batch lives:

- **Gathering.** Messages are delivered with a prefetch and gathered until the batch holds
  ``consumer_batch_rows`` rows or :data:`BATCH_BYTES` bytes (closed by size) or its oldest message has waited
  ``consumer_batch_seconds`` (closed by time). A message is never split, so a batch may pass the size by less
  than one message.
- **Inserting.** One ``raw_insert`` per batch, run in a thread: chDB blocks, and the event loop keeps taking
  deliveries (the next batch gathers while this one is inserted).
- **Acknowledging only after the insert.** One ``basic_ack(multiple=True)`` on the batch's last message
  acknowledges exactly the batch: batches are taken in delivery order and every earlier one is settled first.
  (A ``message.process()`` scope per message would cost one frame per message for the same guarantee.)
- **Deliveries are taken by aiormq** (aio-pika's lower layer, same maintainers) with a callback that only
  appends the body: aio-pika's ``queue.consume`` also wraps every delivery in an ``IncomingMessage`` and a second
  task, ~20 us of the ~135-160 us of CPU a 10-event message costs, chDB included (BENCHMARKS.md). The channel is
  still aio-pika's: on a robust connection it comes back after a reconnect with its QoS and queue, and the
  consumer subscribes again on the new channel. Deliveries held from the old channel are redelivered by the broker;
  acknowledging them on the dead channel fails harmlessly (below).
- **A broken message** (ClickHouse says the data is bad: a parse, type or enum error) makes the batch fail as a
  whole; the batch is split in halves until each broken message fails alone. The good pieces land; each broken
  message is kept in ``ingest_errors`` with ClickHouse's error and then acknowledged: never lost, never blocking
  the queue.
- **ClickHouse failing** (any other error, or no answer): the batch is rejected with requeue, and the consumer
  backs off (doubling, up to a limit) before the next insert. Pieces that landed before the failure are
  redelivered with the rest; readers never see the copies (see :mod:`clickhouse.schema` on redelivery).
  After :data:`ISOLATE_AFTER_FAILURES` failures in a row the batch is split whatever the error: if some of it
  lands, ClickHouse works and a message that still fails alone is broken (kept aside as above); if nothing
  lands, ClickHouse is failing and everything is requeued.
- **Stopping.** The subscription is cancelled, the batch being inserted finishes, and the messages still
  gathering are inserted too (at most the prefetch); whatever cannot be inserted is requeued.

Metrics (Prometheus, see :mod:`bard.metrics`) beside :class:`ConsumerStats`: rows inserted, batches by what
closed them, insert failures, messages by outcome, the queue's ready messages (a passive declare on a channel of
its own every :data:`QUEUE_PROBE_SECONDS`, never on the consuming channel, which a failed declare would close),
and the lag of every message acknowledged: from ``received_at`` (when the agent API took its first batch, read
from the first row) to the insert that made it queryable. ``bard consumer`` serves them on
``BARD_CONSUMER_METRICS_PORT``; under ``bard up`` they are on the APIs' ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import time
from dataclasses import dataclass, field

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractRobustChannel
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, AMQPError, ChannelInvalidStateError
from aiormq import spec
from aiormq.abc import DeliveredMessage
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from prometheus_client import Counter, Gauge, Histogram

from bard.broker import declare_topology
from bard.metrics import metrics_server
from bard.settings import Settings
from clickhouse.client import client_for

log = logging.getLogger(__name__)

INSERT_SETTINGS = {
    # ``event`` arrives as the rrweb event object itself; keep its JSON text.
    "input_format_json_read_objects_as_strings": 1,
    # ``events`` is partitioned by the server's month of arrival, so a batch touches one or two partitions;
    # should that ever change, refusing a batch that was answered 2xx would block the queue.
    "throw_on_max_partitions_per_insert_block": 0,
}

BROKEN_DATA_CODES = frozenset({
    6,    # CANNOT_PARSE_TEXT
    26,   # CANNOT_PARSE_QUOTED_STRING
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,   # ATTEMPT_TO_READ_AFTER_EOF
    33,   # CANNOT_READ_ALL_DATA
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    376,  # CANNOT_PARSE_UUID
    691,  # UNKNOWN_ELEMENT_OF_ENUM
})
"""ClickHouse error codes that blame the data rather than the server. Any other error leaves the messages on
the queue: an unknown failure must never send good messages to ``ingest_errors``."""

BATCH_BYTES = 64 * 1024 * 1024
"""A batch also closes at this many bytes: a few agents sending 10 MiB batches must not make one huge insert."""

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
ISOLATE_AFTER_FAILURES = 3
"""After this many failed tries in a row, a failing batch is split whatever the error, and a message that
fails alone while others of its batch land is kept aside: the safety net for a broken message whose error
code is not in :data:`BROKEN_DATA_CODES`."""

QUEUE_PROBE_SECONDS = 5.0
QUEUE_PROBE_TIMEOUT_SECONDS = 2.0

ROWS_INSERTED = Counter("bard_consumer_rows_inserted_total", "Rows inserted into ClickHouse's ingest table")
BATCHES = Counter("bard_consumer_batches_total",
                  "Batches closed for an insert, by what closed them: size (rows or bytes), time, or stop",
                  ["closed_by"])
INSERT_FAILURES = Counter("bard_consumer_insert_failures_total",
                          "Batches ClickHouse failed to take: requeued, retried after a back-off")
MESSAGES = Counter("bard_consumer_messages_total",
                   "Queue messages settled, by outcome: acked (inserted), broken (kept in ingest_errors), requeued",
                   ["outcome"])
QUEUE_READY = Gauge("bard_consumer_queue_messages_ready",
                    f"Messages ready in Bard's queue, not yet delivered (read every {QUEUE_PROBE_SECONDS:g} s)",
                    multiprocess_mode="mostrecent")
LAG_SECONDS = Histogram("bard_consumer_lag_seconds",
                        "From the agent API's acceptance of a message (received_at of its first row) to the insert "
                        "that made it queryable, per message acknowledged",
                        buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0))
_BY_SIZE, _BY_TIME, _AT_STOP = (BATCHES.labels(closed_by) for closed_by in ("size", "time", "stop"))
_ACKED, _BROKEN, _REQUEUED = (MESSAGES.labels(outcome) for outcome in ("acked", "broken", "requeued"))
_RECEIVED_AT = b'"received_at":'
_NUMBER = re.compile(rb"\s*(\d+)")


def prefetch_for(settings: Settings) -> int:
    """Messages in flight: two batches' worth at the agent's 10 events per message, so the next batch gathers
    while one is inserted; at least 100 so that small test batches still fill by size."""
    return max(100, settings.consumer_batch_rows // 5)


class ClickHouseFailing(Exception):
    """ClickHouse refused a batch for a reason that is not the data's fault."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        self.code = getattr(cause, "code", None)
        super().__init__(f"ClickHouse failed to take a batch (code {self.code}): {cause}")


def blames_data(exc: BaseException) -> bool:
    return isinstance(exc, DatabaseError) and getattr(exc, "code", None) in BROKEN_DATA_CODES


@dataclass(slots=True)
class Delivery:
    body: bytes
    channel: aiormq.abc.AbstractChannel  # the channel it came on, the only one that can acknowledge it
    delivery_tag: int
    rows: int
    arrived_at: float
    received_at_ms: int | None = None  # of the first row, for the lag; None when the row does not say

    @property
    def size(self) -> int:
        return len(self.body)


@dataclass
class ConsumerStats:
    """Counters for logs, tests and benchmarks."""

    batches_by_size: int = 0
    batches_by_time: int = 0
    batches_at_stop: int = 0
    rows_inserted: int = 0
    messages_acked: int = 0
    messages_broken: int = 0
    messages_requeued: int = 0
    insert_failures: int = 0
    last_error: str = ""
    batch_rows: list[int] = field(default_factory=list, repr=False)

    def record_batch(self, rows: int) -> None:
        # Bounded: the last few hundred batch sizes, enough to see how batches close.
        self.batch_rows.append(rows)
        del self.batch_rows[:-256]


class Consumer:
    """Consumes Bard's queue into ``<database>.ingest`` in batches; see the module docstring for the policy.

    Takes its ClickHouse client and AMQP connection from the caller, who owns and closes them. Use as
    ``async with Consumer(...)``, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, settings: Settings, client: Client, connection: AbstractConnection) -> None:
        self._settings = settings
        self._client = client
        self._connection = connection
        self._table = f"{settings.resolved_clickhouse_database}.ingest"
        self._errors_table = f"{settings.resolved_clickhouse_database}.ingest_errors"
        self._pending: list[Delivery] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._changed = asyncio.Event()
        self._stopping = False
        self._channel: AbstractChannel | None = None
        self._subscription: tuple[aiormq.abc.AbstractChannel, str] | None = None  # (channel, consumer tag)
        self._task: asyncio.Task[None] | None = None
        self._queue_probe: asyncio.Task[None] | None = None
        self._failures_in_a_row = 0
        self.stats = ConsumerStats()

    @property
    def pending_messages(self) -> int:
        """Messages delivered and gathering for the next batch."""
        return len(self._pending)

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=prefetch_for(self._settings))
        await declare_topology(self._channel, self._settings)
        self._task = asyncio.create_task(self._gather_and_insert(), name="bard-consumer")
        self._task.add_done_callback(_log_crash)
        await self._subscribe()
        if isinstance(self._channel, AbstractRobustChannel):
            self._channel.reopen_callbacks.add(self._subscribe_again)
        self._queue_probe = asyncio.create_task(self._probe_queue(), name="bard-consumer-queue-probe")
        self._queue_probe.add_done_callback(_log_probe_crash)
        log.info("consuming %s into %s", self._settings.amqp_queue, self._table)

    async def wait(self) -> None:
        """Until the consumer has stopped; raises what made it stop if it was not asked to."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop taking deliveries, insert what was delivered, requeue what cannot be inserted."""
        self._stopping = True
        if self._queue_probe is not None:
            self._queue_probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._queue_probe
            self._queue_probe = None
        if isinstance(self._channel, AbstractRobustChannel):
            self._channel.reopen_callbacks.discard(self._subscribe_again)
        if self._subscription is not None:
            channel, consumer_tag = self._subscription
            self._subscription = None
            try:
                await channel.basic_cancel(consumer_tag)
            except (AMQPError, ChannelInvalidStateError) as exc:
                # The channel is gone: the broker requeues what it delivered on it.
                log.warning("cancelling the consumer failed: %s", exc)
        self._changed.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._requeue(self._take(len(self._pending)))
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None

    async def _subscribe(self) -> None:
        assert self._channel is not None
        channel = await self._channel.get_underlay_channel()
        answer = await channel.basic_consume(self._settings.amqp_queue, self._on_delivery)
        assert answer.consumer_tag is not None
        self._subscription = (channel, answer.consumer_tag)

    async def _subscribe_again(self, *_: object) -> None:
        """After a robust channel came back: the broker forgot the subscription with the old channel."""
        if not self._stopping:
            await self._subscribe()

    async def _probe_queue(self) -> None:
        """Every :data:`QUEUE_PROBE_SECONDS`, the queue's ready messages into :data:`QUEUE_READY`, until cancelled."""
        channel: AbstractChannel | None = None
        try:
            while True:
                try:
                    async with asyncio.timeout(QUEUE_PROBE_TIMEOUT_SECONDS):
                        if channel is None or channel.is_closed:
                            channel = await self._connection.channel()
                        underlay = await channel.get_underlay_channel()
                        declared = await underlay.queue_declare(self._settings.amqp_queue, passive=True)
                    if declared.message_count is not None:
                        QUEUE_READY.set(declared.message_count)
                except CONNECTION_EXCEPTIONS as exc:  # TimeoutError among them (an OSError)
                    # RabbitMQ is away or the queue is gone; the consumer itself says so. Try again next time.
                    log.debug("reading the queue's depth failed: %r", exc)
                await asyncio.sleep(QUEUE_PROBE_SECONDS)
        finally:
            if channel is not None and not channel.is_closed:
                with contextlib.suppress(*CONNECTION_EXCEPTIONS):
                    await channel.close()

    async def _on_delivery(self, message: DeliveredMessage) -> None:
        body = message.body
        rows = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
        assert isinstance(message.delivery, spec.Basic.Deliver) and message.delivery.delivery_tag is not None
        delivery_tag = message.delivery.delivery_tag
        self._pending.append(Delivery(body, message.channel, delivery_tag, rows, time.monotonic(),
                                      _received_at_ms(body)))
        self._pending_rows += rows
        self._pending_bytes += len(body)
        self._changed.set()

    async def _gather_and_insert(self) -> None:
        batch_seconds = self._settings.consumer_batch_seconds
        while not self._stopping:
            if not self._pending:
                await self._wait_for_change(None)
                continue
            deadline = self._pending[0].arrived_at + batch_seconds
            while not self._full() and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not await self._wait_for_change(remaining):
                    break
            if self._stopping:
                break
            by_size = self._full()
            batch = self._take_batch()
            if by_size:
                self.stats.batches_by_size += 1
                _BY_SIZE.inc()
            else:
                self.stats.batches_by_time += 1
                _BY_TIME.inc()
            await self._deliver(batch)
        # Stopping: what was delivered is inserted now rather than redelivered later, unless ClickHouse fails.
        while self._pending:
            self.stats.batches_at_stop += 1
            _AT_STOP.inc()
            if not await self._deliver(self._take_batch()):
                break

    async def _wait_for_change(self, timeout: float | None) -> bool:
        """Wait for a delivery or a stop; False when ``timeout`` passed first."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _full(self) -> bool:
        return self._pending_rows >= self._settings.consumer_batch_rows or self._pending_bytes >= BATCH_BYTES

    def _take_batch(self) -> list[Delivery]:
        """The oldest pending messages, up to the batch's size (at least one)."""
        count, rows, size = 0, 0, 0
        for delivery in self._pending:
            if rows >= self._settings.consumer_batch_rows or size >= BATCH_BYTES:
                break
            rows += delivery.rows
            size += delivery.size
            count += 1
        return self._take(count)

    def _take(self, count: int) -> list[Delivery]:
        batch, self._pending = self._pending[:count], self._pending[count:]
        self._pending_rows -= sum(d.rows for d in batch)
        self._pending_bytes -= sum(d.size for d in batch)
        return batch

    async def _deliver(self, batch: list[Delivery]) -> bool:
        """Land and acknowledge ``batch``, or requeue it and back off; True when it landed."""
        try:
            rows = await self._land(batch, isolating=self._failures_in_a_row >= ISOLATE_AFTER_FAILURES)
        except ClickHouseFailing as exc:
            self.stats.insert_failures += 1
            INSERT_FAILURES.inc()
            self.stats.last_error = str(exc)
            self._failures_in_a_row += 1
            pause = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (self._failures_in_a_row - 1))
            log.error("%s; requeued %d message(s), next try in %.1f s", exc, len(batch), pause)
            await self._requeue(batch)
            await self._pause(pause)
            return False
        self._failures_in_a_row = 0
        self.stats.rows_inserted += rows
        ROWS_INSERTED.inc(rows)
        self.stats.record_batch(rows)
        await self._settle(batch[-1], ack=True)
        self.stats.messages_acked += len(batch)
        _ACKED.inc(len(batch))
        now_ms = time.time() * 1000
        for delivery in batch:
            if delivery.received_at_ms is not None:
                LAG_SECONDS.observe(max(0.0, now_ms - delivery.received_at_ms) / 1000)
        return True

    async def _land(self, batch: list[Delivery], *, isolating: bool) -> int:
        """Insert ``batch``, splitting it around broken messages, which are kept aside; returns the rows
        inserted. Raises :class:`ClickHouseFailing` when the failure is not the messages' fault."""
        suspects: list[tuple[Delivery, Exception]] = []
        rows = await self._land_pieces(batch, suspects, isolating=isolating)
        if rows == 0 and any(not blames_data(exc) for _, exc in suspects):
            # Nothing landed and ClickHouse did not blame the data: nothing proves the messages are at fault.
            cause = next(exc for _, exc in suspects if not blames_data(exc))
            raise ClickHouseFailing(cause) from cause
        for delivery, exc in suspects:
            await self._keep_broken(delivery, exc)
        return rows

    async def _land_pieces(self, batch: list[Delivery], suspects: list[tuple[Delivery, Exception]], *,
                           isolating: bool) -> int:
        try:
            await self._insert(b"".join(_line_terminated(d.body) for d in batch))
        except Exception as exc:
            if not (blames_data(exc) or isolating):
                raise ClickHouseFailing(exc) from exc
            if len(batch) == 1:
                suspects.append((batch[0], exc))
                return 0
            half = len(batch) // 2
            return (await self._land_pieces(batch[:half], suspects, isolating=isolating)
                    + await self._land_pieces(batch[half:], suspects, isolating=isolating))
        return sum(d.rows for d in batch)

    async def _insert(self, block: bytes) -> None:
        await asyncio.to_thread(
            self._client.raw_insert, self._table, insert_block=block, fmt="JSONEachRow", settings=INSERT_SETTINGS
        )

    async def _keep_broken(self, delivery: Delivery, error: Exception) -> None:
        body = delivery.body
        log.warning("kept a broken message of %d bytes in %s: %s", len(body), self._errors_table, error)
        try:
            await asyncio.to_thread(
                self._client.insert,
                self._errors_table,
                [[str(error), body.decode("utf-8", errors="replace")]],
                column_names=["error", "raw_message"],
            )
        except Exception as exc:
            raise ClickHouseFailing(exc) from exc
        self.stats.messages_broken += 1
        _BROKEN.inc()

    async def _requeue(self, batch: list[Delivery]) -> None:
        if batch:
            await self._settle(batch[-1], ack=False)
            self.stats.messages_requeued += len(batch)
            _REQUEUED.inc(len(batch))

    async def _settle(self, last: Delivery, *, ack: bool) -> None:
        try:
            if ack:
                await last.channel.basic_ack(last.delivery_tag, multiple=True)
            else:
                await last.channel.basic_nack(last.delivery_tag, multiple=True, requeue=True)
        except (AMQPError, ChannelInvalidStateError) as exc:
            # The channel these messages came on is closed, so the broker has requeued them already and will
            # deliver them again: rows already inserted come back as copies readers do not see.
            log.warning("could not %s a batch (its channel is gone; it will be redelivered): %s",
                        "ack" if ack else "requeue", exc)

    async def _pause(self, seconds: float) -> None:
        """Back off, but wake up at once on stop."""
        deadline = time.monotonic() + seconds
        while not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await self._wait_for_change(remaining)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the consumer stopped on an unexpected error", exc_info=task.exception())


def _log_probe_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("reading the queue's depth stopped on an unexpected error", exc_info=task.exception())


def _received_at_ms(body: bytes) -> int | None:
    """``received_at`` of the message's first row: the agent API writes it among the first keys of every row, so
    the search stops after a few hundred bytes."""
    at = body.find(_RECEIVED_AT)
    if at < 0:
        return None
    number = _NUMBER.match(body, at + len(_RECEIVED_AT))
    return int(number.group(1)) if number else None


def _line_terminated(body: bytes) -> bytes:
    # Bodies are concatenated; a body without its final newline would glue its last row to the next body.
    return body if body.endswith(b"\n") else body + b"\n"


async def run(settings: Settings) -> None:
    """``bard consumer``: consume until SIGINT or SIGTERM, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with metrics_server(settings.host, settings.consumer_metrics_port, "consumer_metrics_port") as port:
        if port is not None:
            log.info("metrics on http://%s:%d/metrics", settings.host, port)
        client = await asyncio.to_thread(client_for, settings)
        connection = await aio_pika.connect_robust(settings.amqp_url)
        try:
            async with Consumer(settings, client, connection):
                await stop.wait()
                log.info("stopping the consumer")
        finally:
            await connection.close()
            await asyncio.to_thread(client.close)
