"""A per-address token bucket, in process: the agent API's ``/authenticate`` and the replayer API's ``POST /login``.

Each client address (as :mod:`bard.client_address` picks it: the peer, or behind a trusted proxy the client it
forwarded) may take ``burst`` tokens at once and earns ``rate_per_minute`` back over a minute. Each
process keeps its own buckets, so behind N processes an address gets up to N times the rate; that is enough
to stop one client from minting tokens in a loop, and a shared limiter belongs in the load balancer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucketLimiter:
    def __init__(
        self,
        rate_per_minute: int,
        *,
        burst: int | None = None,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate_per_second = rate_per_minute / 60.0
        self._burst = float(burst if burst is not None else max(1, rate_per_minute // 6))
        self._max_addresses = max_addresses
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, updated at)

    def try_acquire(self, address: str) -> float:
        """Take a token for ``address``: 0.0 when granted, else the seconds until one is available."""
        now = self._clock()
        tokens, updated_at = self._buckets.get(address, (self._burst, now))
        tokens = min(self._burst, tokens + (now - updated_at) * self._rate_per_second)
        if tokens >= 1.0:
            if address not in self._buckets and len(self._buckets) >= self._max_addresses:
                self._forget_full_buckets(now)
            self._buckets[address] = (tokens - 1.0, now)
            return 0.0
        self._buckets[address] = (tokens, now)
        return (1.0 - tokens) / self._rate_per_second

    def _forget_full_buckets(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: dropping it bounds memory and changes nothing.
        refill_seconds = self._burst / self._rate_per_second
        self._buckets = {a: b for a, b in self._buckets.items() if now - b[1] < refill_seconds}


def retry_after_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))
