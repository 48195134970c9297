"""API tokens: created once, stored hashed, resolved from a Bearer header."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from flask import current_app, g, request
from sqlalchemy import event, select

from webapp.access import bearer_credentials
from webapp.extensions import db
from webapp.models import ApiToken, User
from webapp.timeutil import utcnow

TOKEN_PREFIX = "bcn_"


def hash_token(raw: str) -> str:
    """SHA-256 of a raw token, which is all the database keeps."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(name: str, role: str, created_by: User | None = None) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the raw value, which is never shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, role=role, token_hash=hash_token(raw), prefix=raw[:10],
                     created_by=created_by)
    db.session.add(token)
    db.session.commit()
    return token, raw


@dataclass(frozen=True)
class TokenPrincipal:
    """What a request needs of its token: who it is and what it may do."""

    id: int
    name: str
    role: str

    @property
    def label(self) -> str:
        """How the token is named in history and audit lines."""
        return f"token {self.name}"


# Per-process cache of resolved tokens: a hash lookup per API request is a good part of a
# cheap request's time. Entries live API_TOKEN_CACHE_SECONDS (config.py); any change to a
# token row made through this process (revoke) empties the cache at once, other processes
# notice within the same few seconds.
_cache: dict[str, tuple[float, TokenPrincipal | None]] = {}


def forget_tokens() -> None:
    """Drop every cached token resolution."""
    _cache.clear()


@event.listens_for(ApiToken, "after_update")
def _token_changed(mapper, connection, target) -> None:
    forget_tokens()


def load_bearer_token() -> TokenPrincipal | None:
    """Resolve the request's Bearer token into g.api_token (None when absent or invalid)."""
    raw = bearer_credentials(request)
    if raw is None:
        g.api_token = None
        return None
    digest = hash_token(raw)
    cached = _cache.get(digest)
    if cached is not None and cached[0] > time.monotonic():
        g.api_token = cached[1]
        return cached[1]
    ttl = float(current_app.config["API_TOKEN_CACHE_SECONDS"])
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    principal = None
    if token is not None and token.revoked_at is None:
        principal = TokenPrincipal(token.id, token.name, token.role)
        now = utcnow()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            token.last_used_at = now
            db.session.commit()
    if ttl > 0:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (time.monotonic() + ttl, principal)
    g.api_token = principal
    return principal
