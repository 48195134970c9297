"""HTTP clients for the concurrency suite: plain stdlib, run in processes of their own.

Each client process opens one keep-alive connection, waits at a barrier with the others so
that they all start at the same instant, sends its requests back to back and reports every
(status, body) it got.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import re
import urllib.parse
from typing import Any

JSONAPI = "application/vnd.api+json"
Request = tuple[str, str, Any]  # method, path under /api/v1, JSON body or None


def call(connection: http.client.HTTPConnection, token: str, method: str, path: str,
         body: Any = None) -> tuple[int, Any]:
    """One API request; returns the status and the decoded JSON body (None when empty)."""
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Accept": JSONAPI}
    if payload is not None:
        headers["Content-Type"] = JSONAPI
    connection.request(method, f"/api/v1{path}", body=payload, headers=headers)
    response = connection.getresponse()
    raw = response.read()
    return response.status, json.loads(raw) if raw else None


def _client(port: int, token: str, requests: list[Request], barrier, results) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    answers = []
    barrier.wait()
    for method, path, body in requests:
        answers.append(call(connection, token, method, path, body))
    connection.close()
    results.put(answers)


def run_clients(port: int, token: str, plans: list[list[Request]],
                extra: list[tuple] = ()) -> list[list[tuple[int, Any]]]:
    """Run one client process per plan, all released at once; their answers in plan order.

    `extra` holds (function, args) run in their own processes, released with the clients
    (e.g. a command-line upload); they get the barrier as their last argument.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(plans) + len(extra))
    queues = [context.Queue() for _ in plans]
    processes = [context.Process(target=_client, args=(port, token, plan, barrier, queue))
                 for plan, queue in zip(plans, queues, strict=True)]
    processes += [context.Process(target=target, args=(*args, barrier))
                  for target, args in extra]
    for process in processes:
        process.start()
    answers = [queue.get(timeout=300) for queue in queues]
    for process in processes:
        process.join(timeout=300)
        if process.exitcode != 0:
            raise RuntimeError(f"a client process ended with exit code {process.exitcode}")
    return answers


def dashboard_page(port: int, email: str, password: str, path: str) -> tuple[int, str]:
    """Sign in through the login form and GET a dashboard page; its status and HTML."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", "/login")
        response = connection.getresponse()
        html = response.read().decode()
        cookies = _cookies(response)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "email": email, "password": password})
        connection.request("POST", "/login", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookies})
        response = connection.getresponse()
        response.read()
        if response.status != 303:
            raise RuntimeError(f"sign-in answered {response.status}")
        cookies = _cookies(response) or cookies
        connection.request("GET", path, headers={"Cookie": cookies})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _cookies(response: http.client.HTTPResponse) -> str:
    return "; ".join(value.split(";", 1)[0] for name, value in response.getheaders()
                     if name.lower() == "set-cookie")
