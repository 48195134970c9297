"""A local webhook receiver: an http.server on 127.0.0.1 in a thread that checks signatures."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webapp.services.webhook_delivery import SIGNATURE_HEADER, verify_signature


class Receiver:
    """Records every POST; answers with the queued statuses, then 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.secrets: dict[str, str] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                webhook_id = self.headers.get("Beacon-Webhook-Id", "")
                secret = receiver.secrets.get(webhook_id, "")
                header = self.headers.get(SIGNATURE_HEADER, "")
                timestamp = int(header.split(",")[0].partition("=")[2] or 0)
                receiver.requests.append({
                    "path": self.path, "headers": dict(self.headers), "body": body,
                    "events": json.loads(body), "webhook_id": webhook_id,
                    "signed": verify_signature(secret, body, header),
                    "clock_skew": abs(time.time() - timestamp),
                })
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                payload = b'{"ok": true}' if status < 300 else b"receiver says no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:  # keep pytest output quiet
                pass

        return Handler

    def events(self, webhook_id: int | None = None) -> list[dict]:
        """Every event received (for one webhook, when given), in arrival order."""
        return [e for r in self.requests
                if webhook_id is None or r["webhook_id"] == str(webhook_id)
                for e in r["events"]]


@pytest.fixture
def receiver():
    """A running receiver; register secrets with `receiver.secrets[str(id)] = secret`."""
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
