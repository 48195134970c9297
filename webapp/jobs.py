"""Background jobs: RQ on Redis when REDIS_URL is set, a thread in this process otherwise.

A job is a dotted path to a function taking plain arguments; it runs inside an app context.
In tests (`JOBS_SYNC`), jobs run at once in the caller's thread.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from flask import Flask, current_app

QUEUE = "beacon"


def _resolve(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def run_job(path: str, *args, **kwargs):
    """Entry point RQ workers call: build an app and run the job inside its context."""
    from webapp import create_app

    app = create_app()
    with app.app_context():
        return _resolve(path)(*args, **kwargs)


def _run_in_thread(app: Flask, path: str, args: tuple, kwargs: dict) -> None:
    with app.app_context():
        try:
            _resolve(path)(*args, **kwargs)
        except Exception:  # a background failure is logged; the job records its own status
            app.logger.exception("background job %s failed", path)


def enqueue(path: str, *args, **kwargs) -> str:
    """Run `path(*args, **kwargs)` in the background; returns how it was dispatched."""
    app = current_app._get_current_object()
    if app.config["JOBS_SYNC"]:
        _resolve(path)(*args, **kwargs)
        return "sync"
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        from redis import Redis
        from rq import Queue

        Queue(QUEUE, connection=Redis.from_url(redis_url)).enqueue(
            run_job, path, *args, job_timeout=3600, **kwargs)
        return "rq"
    thread = threading.Thread(target=_run_in_thread, args=(app, path, args, kwargs),
                              daemon=True, name=f"job:{path}")
    thread.start()
    return "thread"


_redis_clients: dict[tuple[str, float], Any] = {}


def redis_client(url: str, timeout: float) -> Any:
    """A Redis client for `url` with this socket timeout, one per process (its pool shared)."""
    client = _redis_clients.get((url, timeout))
    if client is None:
        from redis import Redis

        client = _redis_clients[(url, timeout)] = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return client
