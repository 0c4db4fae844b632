"""Which address a request came from: the one rule of every part that asks (the agent API's country and its
``/authenticate`` limit, the replayer API's ``POST /login`` limit).

By default the client is the connection's peer, and ``X-Forwarded-For`` is ignored: any client can send that
header, so believing it by default would let a client choose its own address (a fresh rate-limit bucket per
request, the country of its choice). An operator whose load balancer or proxy sits in front of Bard names it in
``BARD_TRUSTED_PROXIES``: addresses or networks, comma-separated (``10.0.0.0/8, 127.0.0.1``). A request whose
peer is one of them is read through ``X-Forwarded-For`` from the right, as each hop appends the address it saw:
the right-most entry that is not a trusted proxy is the client, and whatever lies left of it was written by the
client itself and is never read. When every entry is a trusted proxy, the left-most is the client. An entry that
is not an address (a proxy writing ``unknown``), or a chain of trusted hops longer than :data:`MAX_HOPS` entries
or :data:`MAX_FORWARDED_CHARS` characters, leaves the client unknown (``""``). The RFC 7239 ``Forwarded`` header
is not read. (Bard's servers run uvicorn with ``proxy_headers=False``: otherwise uvicorn would already have
replaced a loopback peer by the header's client, whatever ``BARD_TRUSTED_PROXIES`` says.) Behind trusted
proxies, answers are cached per (peer, header) (:data:`CACHE_SIZE`): parsing them costs ~15-40 us, a hit ~1 us;
without trusted proxies nothing is parsed (~0.4 us).

Addresses are written as :mod:`ipaddress` writes them, an IPv4-mapped IPv6 address (``::ffff:203.0.113.9``, what a
dual-stack socket reports for an IPv4 peer) as its IPv4 address. An address is used, never stored: see
:mod:`agent_api.countries`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # settings import this module; it needs no web framework to parse them
    from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOPS = 20
"""Entries of ``X-Forwarded-For`` read at most, from the right (real chains have a few)."""
MAX_FORWARDED_CHARS = 1024
"""Characters of ``X-Forwarded-For`` read at most, from the right (20 IPv6 hops with ports fit)."""
CACHE_SIZE = 16_384
"""Distinct (peer, ``X-Forwarded-For``) pairs remembered per process behind trusted proxies (a session's batches
repeat the same pair); keys are bounded by :data:`MAX_FORWARDED_CHARS`, so the cache stays under ~20 MB."""


class InvalidTrustedProxies(ValueError):
    """An entry of ``BARD_TRUSTED_PROXIES`` is no address or network; the message names it."""


def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` as networks (an address is a network of one)."""
    networks: list[Network] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise InvalidTrustedProxies(f"{entry!r} is not an IP address or network (such as 10.0.0.0/8)") from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """An address as a peer or an ``X-Forwarded-For`` entry writes it (``203.0.113.9``, ``203.0.113.9:5512``,
    ``2001:db8::1``, ``[2001:db8::1]:443``); ``None`` for anything else."""
    text = text.strip()
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddresses:
    """The client address of a request under one ``BARD_TRUSTED_PROXIES``."""

    def __init__(self, trusted: Sequence[Network] = ()) -> None:
        self._trusted = tuple(trusted)
        self._resolve_cached = functools.lru_cache(maxsize=CACHE_SIZE)(self._resolve)

    @classmethod
    def from_setting(cls, value: str) -> ClientAddresses:
        return cls(parse_trusted_proxies(value))

    def of(self, connection: HTTPConnection) -> str:
        """The client's address (``""`` unknown)."""
        peer = connection.client.host if connection.client else ""
        if not self._trusted:
            return peer  # the common case: no header is read, nothing is parsed
        return self.resolve(peer, connection.headers.getlist("x-forwarded-for"))

    def resolve(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client behind ``peer``, given the request's ``X-Forwarded-For`` headers (in order: several headers
        read as one list)."""
        chain = ",".join(forwarded_for)
        # Bounded, so that the cache's keys are: what lies beyond is read as "more hops than MAX_HOPS".
        return self._resolve_cached(peer, chain[-MAX_FORWARDED_CHARS:], len(chain) > MAX_FORWARDED_CHARS)

    def _resolve(self, peer: str, chain: str, cut: bool) -> str:
        address = parse_address(peer)
        if address is None:
            return peer
        if not self._is_trusted(address):
            return str(address)
        entries = chain.split(",") if chain else []
        if cut:
            entries = entries[1:]  # the first may be the end of an entry
        for entry in reversed(entries[-MAX_HOPS:]):
            hop = parse_address(entry)
            if hop is None:
                return ""
            if not self._is_trusted(hop):
                return str(hop)
            address = hop
        if cut or len(entries) > MAX_HOPS:
            return ""
        return str(address)  # every hop is trusted: the left-most (or the peer, without the header)

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)
