"""Configuration: every setting is read in config.load() with its default, bad values named."""

from __future__ import annotations

import pytest

from webapp import config

SETTINGS = ("API_MAX_BODY_BYTES", "API_TOKEN_CACHE_SECONDS", "RATELIMIT_ENABLED",
            "SECRET_KEY_FALLBACKS", "JOBS_SYNC", "WEBHOOKS_AUTO_DELIVER", "WEBHOOK_BATCH_SIZE",
            "WEBHOOK_MAX_ATTEMPTS", "WEBHOOK_TIMEOUT", "UPLOAD_MAX_BYTES", "UPLOAD_FOLDER",
            "MAX_CONTENT_LENGTH", "TIMEZONE", "LIMIT_CRITERIA", "TIERS")


def test_defaults(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the environment, each setting has its documented default."""
    for name in (*SETTINGS, "MAX_UPLOAD_BYTES", "BEACON_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    loaded = config.load(str(tmp_path))
    assert set(SETTINGS) <= set(loaded)
    assert loaded["API_MAX_BODY_BYTES"] == 32 * 1024 * 1024
    assert loaded["API_TOKEN_CACHE_SECONDS"] == 10
    assert loaded["RATELIMIT_ENABLED"] is True and loaded["JOBS_SYNC"] is False
    assert loaded["WEBHOOKS_AUTO_DELIVER"] is True and loaded["SECRET_KEY_FALLBACKS"] == []
    assert (loaded["WEBHOOK_BATCH_SIZE"], loaded["WEBHOOK_MAX_ATTEMPTS"],
            loaded["WEBHOOK_TIMEOUT"]) == (100, 8, 5.0)
    assert loaded["UPLOAD_MAX_BYTES"] is None
    assert loaded["UPLOAD_FOLDER"] == str(tmp_path / "uploads")


def test_environment(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each setting is taken from its environment variable."""
    monkeypatch.setenv("WEBHOOK_TIMEOUT", "2.5")
    monkeypatch.setenv("RATELIMIT_ENABLED", "0")
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", "old-one, ,older")
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "1000")
    monkeypatch.setenv("API_TOKEN_CACHE_SECONDS", "0.5")
    loaded = config.load(str(tmp_path))
    assert loaded["WEBHOOK_TIMEOUT"] == 2.5 and loaded["RATELIMIT_ENABLED"] is False
    assert loaded["SECRET_KEY_FALLBACKS"] == ["old-one", "older"]
    assert loaded["UPLOAD_MAX_BYTES"] == 1000 and loaded["API_TOKEN_CACHE_SECONDS"] == 0.5


@pytest.mark.parametrize(("name", "value"), [
    ("WEBHOOK_TIMEOUT", "soon"), ("WEBHOOK_TIMEOUT", "0"), ("JOBS_SYNC", "maybe"),
    ("WEBHOOK_BATCH_SIZE", "-1"), ("API_MAX_BODY_BYTES", "1e6")])
def test_bad_values_name_the_variable(tmp_path, monkeypatch: pytest.MonkeyPatch, name: str,
                                      value: str) -> None:
    """A value that is not understood stops the start with a message naming the variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=name):
        config.load(str(tmp_path))
