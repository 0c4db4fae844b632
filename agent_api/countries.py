"""The country of a ``/record`` request's client address, read with iptocc; the address itself is never kept.

iptocc ships the Regional Internet Registries' delegation files (AFRINIC, APNIC, ARIN, LACNIC, RIPE NCC) inside
its wheel, compiled into its Rust lookup, and makes no network call: the country is the one a registry
*assigned* the address block to, which is where the block is used for most addresses (its authors cite ~95 %
agreement with MaxMind for IPv4), not where a VPN's or a mobile carrier's user stands. The data is as fresh as
the installed release (``pip install --upgrade iptocc`` brings a newer snapshot; Bard pins one version).

What is stored (``country`` of ``sessions`` in ClickHouse and ``active_sessions`` in PostgreSQL): an ISO 3166-1
alpha-2 code (``US``, ``DE``), or ``''`` for an address that is unknown to the registries, not global (private,
loopback, link-local, shared, documentation ranges), or no address at all. The session keeps the first one known,
as it does the client of its User-Agent.

Measured on a shared 2-core machine over 50,000 random addresses: importing iptocc ~1 ms (its data is compiled
in: nothing to load), iptocc's own lookup ~0.2 us (IPv4) to ~0.4 us (IPv6); :func:`country_of` uncached ~15-30 us
(IPv4) to ~25-55 us (IPv6) by the machine's load, nearly all of it :mod:`ipaddress` parsing the address and
checking that it is global. So results are cached per distinct address (:data:`CACHE_SIZE`): a session's batches
come from one address, so a session pays the lookup once per process, and a hit costs ~0.1 us, against a
``/record`` of several hundred. The cache lives in the process's memory only, like the rate limiter's buckets.
"""

from __future__ import annotations

import functools
import re

from iptocc import country_code

from bard.client_address import parse_address

CACHE_SIZE = 16_384
"""Distinct addresses remembered per process (~2 MB at most)."""

UNKNOWN_COUNTRY = ""
COUNTRY_CODE = re.compile(r"[A-Z]{2}")
"""What is stored, and what a ``country`` filter accepts (``clickhouse.session_filters``, which the agent API does
not import: it needs no ClickHouse code)."""


@functools.lru_cache(maxsize=CACHE_SIZE)
def country_of(address: str) -> str:
    """The ISO 3166-1 alpha-2 code of ``address``'s registry country; ``''`` for unknown, not global or invalid."""
    parsed = parse_address(address) if address else None
    if parsed is None or not parsed.is_global:
        return UNKNOWN_COUNTRY
    code = country_code(str(parsed))
    return code if code is not None and COUNTRY_CODE.fullmatch(code) else UNKNOWN_COUNTRY
