"""RabbitMQ topology: Bard declares its exchange, a durable queue and the binding at start, so that no
message is dropped for want of a bound queue, whoever consumes it (Bard's embedded consumer or ClickHouse's
RabbitMQ engine, which consumes this queue rather than declaring its own)."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from bard.settings import Settings


async def declare_topology(channel: AbstractChannel, settings: Settings) -> tuple[AbstractExchange, AbstractQueue]:
    exchange = await channel.declare_exchange(settings.amqp_exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    queue = await channel.declare_queue(
        settings.amqp_queue, durable=True, arguments={"x-queue-type": settings.amqp_queue_type}
    )
    await queue.bind(exchange, routing_key=settings.amqp_queue)
    return exchange, queue
