"""API tokens: created once, stored hashed, resolved from a Bearer header."""

from __future__ import annotations

import hashlib
import secrets

from flask import g, request
from sqlalchemy import select

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


def load_bearer_token() -> ApiToken | None:
    """Resolve the request's Bearer token into g.api_token (None when absent or invalid)."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        g.api_token = None
        return None
    raw = header[7:].strip()
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(raw)))
    if token is None or token.revoked_at is not None:
        g.api_token = None
        return None
    now = utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        db.session.commit()
    g.api_token = token
    return token
