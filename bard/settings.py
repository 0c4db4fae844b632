"""Bard's settings: parsed once, at the entry point, from a mapping (normally ``os.environ``).

Every setting is an environment variable ``BARD_<NAME>``; the names of DESIGN.md's table are fixed so that
operators, scripts and the deploy templates agree. Every setting has a default that works for ``bard up``.
Nothing below the entry point reads the environment: code takes a :class:`Settings`.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from bard.client_address import InvalidTrustedProxies, parse_trusted_proxies

PREFIX = "BARD_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: str = "./var"
    clickhouse_url: str = ""  # default: chdb://<data_dir>/clickhouse
    # The database Bard's tables live in; default: the URL's path for a server, "bard" for chDB.
    clickhouse_database: str = ""
    postgres_url: str = "postgresql://localhost:5432/bard"
    amqp_url: str = "amqp://guest:guest@localhost:5672/"
    amqp_exchange: str = "bard"
    amqp_queue: str = "bard.events"
    # "quorum" for a RabbitMQ cluster; "classic" is faster on one node.
    amqp_queue_type: str = "classic"
    host: str = "127.0.0.1"
    agent_api_port: int = 3001
    replayer_api_port: int = 3003
    # The demo shop `bard up` serves (bard/demo_shop.py), on an origin of its own; 0 for none.
    demo_port: int = 3002
    jwt_secret: str = ""
    jwt_ttl_seconds: int = 24 * 3600
    jwt_issuer: str = "bard"
    jwt_audience: str = "bardrr"
    dashboard_dir: str = ""
    dashboard_token: str = ""
    # Comma-separated origins allowed to call the agent API from a browser; "*" for any.
    agent_cors_origins: str = "*"
    # Comma-separated origins allowed to call the replayer API from a browser; empty for none.
    replayer_cors_origins: str = ""
    max_body_bytes: int = 10 * 1024 * 1024
    max_idle_default_ms: int = 60_000
    max_idle_max_ms: int = 3_600_000
    authenticate_rate_per_minute: int = 120
    login_rate_per_minute: int = 20
    # The proxies or load balancers in front of Bard whose X-Forwarded-For is believed: addresses or networks,
    # comma-separated ("10.0.0.0/8, 127.0.0.1"). Empty: the peer is the client and the header is ignored, as any
    # client can forge it (bard/client_address.py has the rule).
    trusted_proxies: str = ""
    # Processes serving the agent API, in `bard up` and in `bard agent-api` (whose --workers overrides it). Under
    # `bard up`, 0 serves it from the main process, on the event loop that also runs the consumer and chDB.
    agent_api_workers: int = 2
    # Under `bard up` with workers: how much lower the main process (consumer, chDB, replayer API, ender) runs than
    # the workers, as a nice increment (0: the same). /record's tail is then paid by the lag and the dashboard.
    up_nice: int = 10
    # Groups of batches one agent API process stores at once, each on its own PostgreSQL connection (a process
    # opens this many + 2). Fewer means larger groups: fewer transactions and messages, a longer wait for each.
    # At 10,000 events/s on 2 cores, 1 took ~10 % less CPU per batch than 2 and ~15 % less than 4 (BENCHMARKS.md).
    agent_store_workers: int = 1
    # Batches stored together share queue messages of up to this many bytes of rows (a batch is never split;
    # one larger than this goes alone). 1 gives every batch its own message.
    agent_message_bytes: int = 1024 * 1024
    # Session ender
    ender_interval_seconds: float = 10.0
    ender_grace_seconds: float = 10.0
    # Each ClickHouse insert costs a part; 5000 moves 100 k sessions ~2.5x faster than 1000 (BENCHMARKS.md).
    ender_batch_size: int = 5000
    # `bard session-ender` serves no API, so it answers /metrics on a port of its own (0: none).
    ender_metrics_port: int = 3006
    # Embedded consumer: a batch closes at this many rows or after this many seconds. Each insert makes parts
    # that chDB merges on the same cores as everything else: at 10,000 events/s, 0.5 s instead of 0.25 s cut
    # the /record p99 by ~15-25 % for a lag p99 of ~0.6 s instead of ~0.3 s (aim 1 s; BENCHMARKS.md).
    consumer_batch_rows: int = 10_000
    consumer_batch_seconds: float = 0.5
    # `bard consumer` serves no API, so it answers /metrics on a port of its own (0: none). Under `bard up` the
    # consumer's metrics are on both APIs' /metrics instead.
    consumer_metrics_port: int = 3005
    # How long an HTTP connection may sit idle between requests before the server closes it. bardrr sends when it
    # has 10 events, so a reader's batches come seconds to minutes apart; at uvicorn's 5 s each opened a new
    # connection, for more CPU and latency (BENCHMARKS.md, "Keep-alive"). 75 s, nginx's default, outlasts a
    # load balancer's idle timeout (AWS ALB: 60 s), so the balancer never reuses a connection Bard is closing.
    keep_alive_seconds: int = 75
    log_level: str = "INFO"
    # "text", or "json" for one JSON object per line (bard.logs).
    log_format: str = "text"

    def __post_init__(self) -> None:
        for name in ("agent_api_port", "replayer_api_port", "demo_port", "consumer_metrics_port",
                     "ender_metrics_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"{env_name(name)} must be a port number, got {port}")
        for name in ("jwt_ttl_seconds", "max_body_bytes", "max_idle_default_ms", "max_idle_max_ms",
                     "authenticate_rate_per_minute", "login_rate_per_minute", "agent_store_workers",
                     "agent_message_bytes",
                     "ender_batch_size", "consumer_batch_rows", "keep_alive_seconds"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be positive, got {getattr(self, name)}")
        if self.max_idle_default_ms > self.max_idle_max_ms:
            raise SettingsError("BARD_MAX_IDLE_DEFAULT_MS must not exceed BARD_MAX_IDLE_MAX_MS")
        if not 0 <= self.up_nice <= 19:
            raise SettingsError(f"BARD_UP_NICE must be 0 to 19, got {self.up_nice}")
        if self.agent_api_workers < 0:
            raise SettingsError(f"BARD_AGENT_API_WORKERS must be 0 or more, got {self.agent_api_workers}")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"BARD_LOG_FORMAT must be text or json, got {self.log_format!r}")
        if self.amqp_queue_type not in ("classic", "quorum"):
            raise SettingsError(f"BARD_AMQP_QUEUE_TYPE must be classic or quorum, got {self.amqp_queue_type!r}")
        try:
            parse_trusted_proxies(self.trusted_proxies)
        except InvalidTrustedProxies as exc:
            raise SettingsError(f"BARD_TRUSTED_PROXIES: {exc}") from None
        url = self.clickhouse_url
        if url and not url.startswith(("chdb://", "http://", "https://")):
            raise SettingsError(f"BARD_CLICKHOUSE_URL must start with chdb://, http:// or https://, got {url!r}")

    @property
    def resolved_clickhouse_url(self) -> str:
        return self.clickhouse_url or f"chdb://{Path(self.data_dir, 'clickhouse').resolve()}"

    @property
    def resolved_clickhouse_database(self) -> str:
        if self.clickhouse_database:
            return self.clickhouse_database
        url = self.resolved_clickhouse_url
        if url.startswith("chdb://"):
            return "bard"
        return urlsplit(url).path.lstrip("/") or "default"

    @property
    def mode(self) -> Literal["embedded", "server"]:
        """Embedded when ClickHouse is chDB in this process, server when it is reached over HTTP."""
        return "embedded" if self.resolved_clickhouse_url.startswith("chdb://") else "server"

    @classmethod
    def from_mapping(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``BARD_*`` variables; unknown ``BARD_*`` names are an error (typos)."""
        known = {f: env_name(f) for f in cls.__struct_fields__}
        by_env = {v: k for k, v in known.items()}
        raw: dict[str, str] = {}
        for key, value in environ.items():
            if not key.startswith(PREFIX):
                continue
            if key not in by_env:
                raise SettingsError(f"unknown setting {key}")
            raw[by_env[key]] = value
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(_name_field(str(exc))) from None

    @classmethod
    def from_environ(cls) -> Settings:
        return cls.from_mapping(os.environ)

    def replace(self, **changes: object) -> Settings:
        return msgspec.structs.replace(self, **changes)


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def _name_field(message: str) -> str:
    # msgspec says "... - at `$.agent_api_port`"; name the variable instead.
    head, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return message
    return f"{env_name(where.rstrip('`'))}: {head}"


def with_secrets(settings: Settings) -> Settings:
    """Fill the secrets that are unset: embedded mode generates them once into the data directory;
    server mode refuses to start without them."""
    missing = [f for f in ("jwt_secret", "dashboard_token") if not getattr(settings, f)]
    if not missing:
        return settings
    if settings.mode == "server":
        names = ", ".join(env_name(f) for f in missing)
        raise SettingsError(f"{names} must be set in server mode (ClickHouse over HTTP)")
    return settings.replace(**{f: _stored_secret(Path(settings.data_dir), f) for f in missing})


def _stored_secret(data_dir: Path, name: str) -> str:
    path = data_dir / name
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def split_origins(value: str) -> list[str]:
    return [o.strip() for o in value.split(",") if o.strip()]
