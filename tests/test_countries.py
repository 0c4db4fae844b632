"""The country of a client address (agent_api.countries) and which address is the client's (bard.client_address):
tables of addresses, of proxy chains and of settings, without services. Through ``/record`` to both stores and
``/v1``: test_session_metadata.py and test_session_insight.py."""

from __future__ import annotations

import pytest

from agent_api.countries import country_of
from bard.client_address import MAX_HOPS, ClientAddresses, parse_address
from bard.settings import Settings, SettingsError

# Blocks whose registry and country have not changed in decades: a newer iptocc snapshot keeps them.
COUNTRIES = [
    ("arin-v4", "8.8.8.8", "US"),
    ("ripe-ncc-v4", "193.0.6.139", "NL"),
    ("apnic-v4", "1.0.16.1", "JP"),
    ("afrinic-v4", "41.0.0.1", "ZA"),
    ("lacnic-v4", "200.160.2.3", "BR"),
    ("arin-v6", "2001:4860:4860::8888", "US"),
    ("ripe-ncc-v6", "2001:67c:2e8:22::c100:68b", "NL"),
    ("v6-uppercase-and-zeros", "2001:4860:4860:0000:0000:0000:0000:8888".upper(), "US"),
    ("ipv4-mapped-v6-as-a-dual-stack-socket-reports-it", "::ffff:193.0.6.139", "NL"),
    ("private-10", "10.1.2.3", ""),
    ("private-172-16", "172.16.5.4", ""),
    ("private-192-168", "192.168.1.1", ""),
    ("unique-local-v6", "fd12:3456:789a::1", ""),
    ("loopback-v4", "127.0.0.1", ""),
    ("loopback-v6", "::1", ""),
    ("mapped-loopback", "::ffff:127.0.0.1", ""),
    ("link-local-v4", "169.254.10.20", ""),
    ("link-local-v6", "fe80::1", ""),
    ("shared-carrier-nat", "100.64.0.1", ""),
    ("documentation-v4", "198.51.100.4", ""),
    ("documentation-v6", "2001:db8::1", ""),
    ("unspecified", "0.0.0.0", ""),
    ("broadcast", "255.255.255.255", ""),
    ("multicast", "224.0.0.1", ""),
    ("empty", "", ""),
    ("garbage", "not an address", ""),
    ("three-octets", "1.2.3", ""),
    ("octet-out-of-range", "999.1.1.1", ""),
    ("leading-zeros", "08.8.8.8", ""),
    ("hostname", "dns.google", ""),
    ("unix-socket-peer", "unknown", ""),
]


@pytest.mark.parametrize(("address", "country"), [row[1:] for row in COUNTRIES], ids=[row[0] for row in COUNTRIES])
def test_the_country_of_an_address(address: str, country: str) -> None:
    assert country_of(address) == country


def test_lookups_are_cached_per_address() -> None:
    country_of.cache_clear()
    for _ in range(3):
        assert country_of("193.0.6.139") == "NL"
    info = country_of.cache_info()
    assert (info.misses, info.hits) == (1, 2)


TRUSTED = "10.0.0.0/8, 127.0.0.1, 2001:db8:ffff::/48"

# (id, BARD_TRUSTED_PROXIES, the peer, the X-Forwarded-For headers, the client address)
CHAINS = [
    ("no-trust-peer", "", "193.0.6.139", [], "193.0.6.139"),
    ("no-trust-header-forged-and-ignored", "", "193.0.6.139", ["41.0.0.1"], "193.0.6.139"),
    ("untrusted-peer-header-ignored", TRUSTED, "193.0.6.139", ["41.0.0.1"], "193.0.6.139"),
    ("trusted-peer-one-hop", TRUSTED, "10.0.0.5", ["41.0.0.1"], "41.0.0.1"),
    ("forged-entries-left-of-the-client-ignored", TRUSTED, "10.0.0.5", ["8.8.8.8, 1.0.16.1, 41.0.0.1"],
     "41.0.0.1"),
    ("two-trusted-hops", TRUSTED, "127.0.0.1", ["41.0.0.1, 10.9.9.9"], "41.0.0.1"),
    ("headers-in-order", TRUSTED, "10.0.0.5", ["8.8.8.8", "41.0.0.1, 10.1.1.1"], "41.0.0.1"),
    ("every-hop-trusted-the-left-most", TRUSTED, "10.0.0.5", ["10.3.3.3, 10.2.2.2"], "10.3.3.3"),
    ("trusted-peer-no-header", TRUSTED, "10.0.0.5", [], "10.0.0.5"),
    ("entry-with-port", TRUSTED, "10.0.0.5", ["41.0.0.1:5123"], "41.0.0.1"),
    ("bracketed-v6-with-port", TRUSTED, "10.0.0.5", ["[2001:4860:4860::8888]:443"], "2001:4860:4860::8888"),
    ("v6-proxy-network", TRUSTED, "2001:db8:ffff::7", ["193.0.6.139"], "193.0.6.139"),
    ("mapped-trusted-peer", TRUSTED, "::ffff:10.0.0.5", ["41.0.0.1"], "41.0.0.1"),
    ("garbage-entry-is-unknown", TRUSTED, "10.0.0.5", ["41.0.0.1, unknown"], ""),
    ("empty-entry-is-unknown", TRUSTED, "10.0.0.5", ["41.0.0.1, "], ""),
    ("garbage-left-of-the-client-is-never-read", TRUSTED, "10.0.0.5", ["<script>, 41.0.0.1"], "41.0.0.1"),
    ("too-many-trusted-hops", TRUSTED, "10.0.0.5", [", ".join(["10.0.0.1"] * (MAX_HOPS + 1))], ""),
    ("a-huge-header-read-from-the-right", TRUSTED, "10.0.0.5", ["x" * 100_000 + ", 41.0.0.1"], "41.0.0.1"),
    ("a-huge-trusted-header-is-unknown", TRUSTED, "10.0.0.5", ["10.0.0.1," * 5_000 + "10.0.0.2"], ""),
    ("empty-header-the-peer", TRUSTED, "10.0.0.5", [""], "10.0.0.5"),
]


@pytest.mark.parametrize(("trusted", "peer", "forwarded_for", "client"), [row[1:] for row in CHAINS],
                         ids=[row[0] for row in CHAINS])
def test_the_client_address_behind_proxies(trusted: str, peer: str, forwarded_for: list[str], client: str) -> None:
    assert ClientAddresses.from_setting(trusted).resolve(peer, forwarded_for) == client


@pytest.mark.parametrize(("text", "parsed"), [
    ("203.0.113.9", "203.0.113.9"), (" 203.0.113.9 ", "203.0.113.9"), ("203.0.113.9:80", "203.0.113.9"),
    ("2001:db8::1", "2001:db8::1"), ("[2001:db8::1]", "2001:db8::1"), ("[2001:db8::1]:8080", "2001:db8::1"),
    ("::ffff:203.0.113.9", "203.0.113.9"), ("", None), ("unknown", None), ("203.0.113.9:80:1", None),
])
def test_addresses_as_peers_and_proxies_write_them(text: str, parsed: str | None) -> None:
    address = parse_address(text)
    assert (str(address) if address is not None else None) == parsed


@pytest.mark.parametrize("value", ["10.0.0.0/8", "127.0.0.1", "10.0.0.0/8, ::1, 2001:db8::/32", " 10.0.0.1 ,", ""])
def test_trusted_proxies_setting_accepts_addresses_and_networks(value: str) -> None:
    assert Settings.from_mapping({"BARD_TRUSTED_PROXIES": value}).trusted_proxies == value


@pytest.mark.parametrize("value", ["*", "10.0.0.0/33", "proxy.internal", "10.0.0.1 10.0.0.2"])
def test_a_bad_trusted_proxies_setting_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingsError, match="BARD_TRUSTED_PROXIES"):
        Settings.from_mapping({"BARD_TRUSTED_PROXIES": value})
