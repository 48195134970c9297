"""Configuration read from the environment and the instance folder; no secrets in code.

Every setting is read here, once, with its default (the README's configuration table lists them);
the rest of the application reads `app.config[NAME]` and keeps no defaults of its own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from webapp.targeting.schema import TIERS


def _secret_key(instance_path: str) -> str:
    """SECRET_KEY from the environment, else generated once into the instance folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _database_url(instance_path: str) -> str:
    """DATABASE_URL, normalised to the psycopg 3 driver; default an SQLite file in instance/."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{Path(instance_path) / 'beacon.sqlite3'}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _number(name: str, default: int) -> int:
    """A whole number >= 0 from the environment, with a message naming the variable if not."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise RuntimeError(f"{name} must be a whole number >= 0, not {raw!r}")
    return int(raw)


def _positive(name: str, default: int) -> int:
    """A whole number >= 1 from the environment, with a message naming the variable if not."""
    value = _number(name, default)
    if value < 1:
        raise RuntimeError(f"{name} must be a whole number >= 1, not {value}")
    return value


def _flag(name: str, default: bool) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off, with a message if neither."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise RuntimeError(f"{name} must be 1 or 0, not {raw!r}")


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices` from the environment, with a message naming the variable if not."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise RuntimeError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _allowed_hosts() -> tuple[str, ...]:
    """WEBHOOK_ALLOWED_HOSTS as normalised entries, with a message naming the variable if bad."""
    from webapp.services.webhook_addresses import parse_allowed_hosts

    try:
        return parse_allowed_hosts(os.environ.get("WEBHOOK_ALLOWED_HOSTS", ""))
    except ValueError as exc:
        raise RuntimeError(f"WEBHOOK_ALLOWED_HOSTS: {exc}") from None


def _seconds(name: str, default: float) -> float:
    """A number of seconds > 0 from the environment, with a message naming the variable if not."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise RuntimeError(f"{name} must be a number of seconds above 0, not {raw!r}")
    return value


#: The defaults of the settings that modules also need outside an application (README table).
DEFAULTS = {
    "API_MAX_BODY_BYTES": 32 * 1024 * 1024,
    "API_TOKEN_CACHE_SECONDS": 10.0,
    "MAX_UPLOAD_BYTES": 200 * 1024 * 1024,
    "VISIBILITY_CACHE_BYTES": 64 * 1024 * 1024,
    "WEBHOOK_BATCH_SIZE": 100,
    "WEBHOOK_MAX_ATTEMPTS": 8,
    "WEBHOOK_TIMEOUT": 5.0,
    "WEBHOOK_LOG_RETENTION_DAYS": 30,
}


def load(instance_path: str) -> dict:
    """The configuration mapping for a new app."""
    url = _database_url(instance_path)
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": url,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "beacon-memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "API_RATE_LIMIT": os.environ.get("API_RATE_LIMIT", "1200 per minute"),
        "TIMEZONE": os.environ.get("BEACON_TIMEZONE", "UTC"),
        "MAX_CONTENT_LENGTH": _number("MAX_UPLOAD_BYTES", DEFAULTS["MAX_UPLOAD_BYTES"]),
        "UPLOAD_MAX_BYTES": _number("UPLOAD_MAX_BYTES", 0) or None,  # None: MAX_CONTENT_LENGTH
        "UPLOAD_FOLDER": os.environ.get("UPLOAD_FOLDER") or str(Path(instance_path) / "uploads"),
        "API_MAX_BODY_BYTES": _number("API_MAX_BODY_BYTES", DEFAULTS["API_MAX_BODY_BYTES"]),
        "API_TOKEN_CACHE_SECONDS": _seconds("API_TOKEN_CACHE_SECONDS",
                                            DEFAULTS["API_TOKEN_CACHE_SECONDS"]),
        "RATELIMIT_ENABLED": _flag("RATELIMIT_ENABLED", True),
        "SECRET_KEY_FALLBACKS": [k.strip() for k in
                                 os.environ.get("SECRET_KEY_FALLBACKS", "").split(",")
                                 if k.strip()],
        "JOBS_SYNC": _flag("JOBS_SYNC", False),
        # A rule edit that moves more members than this runs as a background job with a
        # progress bar (webapp/services/segment_jobs.py); smaller ones are applied at once.
        "SEGMENT_JOB_THRESHOLD": _number("SEGMENT_JOB_THRESHOLD", 50_000),
        "WEBHOOKS_AUTO_DELIVER": _flag("WEBHOOKS_AUTO_DELIVER", True),
        "WEBHOOK_BATCH_SIZE": _number("WEBHOOK_BATCH_SIZE", DEFAULTS["WEBHOOK_BATCH_SIZE"]),
        "WEBHOOK_MAX_ATTEMPTS": _number("WEBHOOK_MAX_ATTEMPTS", DEFAULTS["WEBHOOK_MAX_ATTEMPTS"]),
        "WEBHOOK_TIMEOUT": _seconds("WEBHOOK_TIMEOUT", DEFAULTS["WEBHOOK_TIMEOUT"]),
        # Sign-in throttling (webapp/login_throttle.py): failures before backoff starts,
        # per client address and per account (browsers it has not signed in with), the
        # longest wait, and how long failures are remembered.
        "LOGIN_ADDRESS_FREE_FAILURES": 10,
        "LOGIN_ACCOUNT_FREE_FAILURES": 5,
        "LOGIN_BACKOFF_MAX_SECONDS": 900,
        "LOGIN_FAILURE_MEMORY_SECONDS": 24 * 3600,
        # Accounts: how long an admin-made password-reset link works, and whether admins
        # must use two-factor sign-in (TOTP) before they can do anything else.
        "PASSWORD_RESET_HOURS": _positive("PASSWORD_RESET_HOURS", 24),
        "REQUIRE_ADMIN_TOTP": _flag("REQUIRE_ADMIN_TOTP", False),
        "LIMIT_SEGMENTS": 10_000,
        "LIMIT_CRITERIA": 50,
        "LIMIT_STATIC_MEMBERS": 5_000_000,
        "LIMIT_BATCH": 10_000,
        "TIERS": list(TIERS),
        "VISIBILITY_CACHE_BYTES": _number("VISIBILITY_CACHE_BYTES",
                                          DEFAULTS["VISIBILITY_CACHE_BYTES"]),
        "UPLOAD_KEEP_HOURS": _number("UPLOAD_KEEP_HOURS", 24),
        "WEBHOOK_LOG_RETENTION_DAYS": _number("WEBHOOK_LOG_RETENTION_DAYS",
                                              DEFAULTS["WEBHOOK_LOG_RETENTION_DAYS"]),
        # Hosts exempt from the internal-address check (local development, the test suite).
        "WEBHOOK_ALLOWED_HOSTS": _allowed_hosts(),
        # Reverse proxies in front of Beacon whose X-Forwarded-For/-Proto are trusted, so
        # that sign-in throttling sees the client's address rather than the proxy's.
        "PROXY_COUNT": _number("PROXY_COUNT", 0),
        "SET_BASED_KEY_CHECKS": os.environ.get("SET_BASED_KEY_CHECKS", "1") != "0",
        # Member writes whose custom fields disagree with the attribute registry: refused, or
        # accepted and counted on the registry page and shown on the member page.
        "ATTRIBUTE_CHECK": _choice("ATTRIBUTE_CHECK", ("refuse", "flag"), "refuse"),
        # How many days of history as-of decisions keep (0: everything); `flask history
        # prune` drops what is older, and older moments are refused.
        "HISTORY_RETENTION_DAYS": _number("HISTORY_RETENTION_DAYS", 0),
    }


def engine_options(url: str) -> dict:
    """Engine options for the final database URL: SQLite waits on locks, PostgreSQL pings."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}
