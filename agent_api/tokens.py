"""Agent tokens: HS256 JWTs with ``exp``, ``iss`` and ``aud``, verified with the algorithm pinned.

The agent fetches one token per page load and sends it as ``authorization: bearer <token>`` (scheme in any
case). It never refreshes it, so the lifetime (``BARD_JWT_TTL_SECONDS``) should outlast a browser tab.

The HMAC key is SHA-256 of the configured secret, so it always has the 32 bytes HS256 wants whatever the
secret's length; only Bard signs and verifies these tokens, so no other party needs the raw secret. A short
secret is still a weak one: it is logged at start.

An agent sends the same token with every batch, so tokens that verified are remembered until their ``exp``
(a bounded map, cleared when full): a batch then costs a dict lookup instead of an HMAC and a JSON decode.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt

from agent_api.errors import Unauthorized

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
MAX_REMEMBERED_TOKENS = 10_000

log = logging.getLogger(__name__)


class TokenAuthority:
    def __init__(
        self, secret: str, *, ttl_seconds: int, issuer: str, audience: str, clock: Callable[[], float] = time.time
    ) -> None:
        if not secret:
            raise ValueError("the agent token secret must not be empty")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            log.warning("the agent token secret is shorter than %d bytes; use a longer one", MIN_SECRET_BYTES)
        self._key = signing_key(secret)
        self._verified: dict[str, tuple[float, dict[str, Any]]] = {}  # token -> (exp, claims)
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._issuer = issuer
        self._audience = audience

    def issue(self, now: float | None = None) -> str:
        issued_at = int(self._clock() if now is None else now)
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "iat": issued_at,
            "exp": issued_at + self._ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> dict[str, Any]:
        remembered = self._verified.get(token)
        if remembered is not None:
            if self._clock() < remembered[0]:
                return remembered[1]
            del self._verified[token]
            raise Unauthorized("the token has expired")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        if self._clock() >= claims["exp"]:  # pyjwt reads the system clock; this authority's clock decides too
            raise Unauthorized("the token has expired")
        if len(self._verified) >= MAX_REMEMBERED_TOKENS:
            self._verified.clear()
        self._verified[token] = (float(claims["exp"]), claims)
        return claims

    def verify_header(self, authorization: str | None) -> dict[str, Any]:
        """Check an ``Authorization`` header value: ``Bearer <token>``, scheme case-insensitive."""
        if not authorization:
            raise Unauthorized("the authorization header is missing")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the authorization header must be 'Bearer <token>'")
        return self.verify(token.strip())


def signing_key(secret: str) -> bytes:
    return hashlib.sha256(b"bard agent token\0" + secret.encode()).digest()
