"""Webhooks never reach internal hosts: refused when saved, and again at every delivery."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import PUBLIC_TEST_ADDRESS, fake_getaddrinfo
from tests.factories import add_to_list, make_member, make_segment
from webapp import config
from webapp.extensions import db
from webapp.models import Webhook, WebhookDelivery
from webapp.services import webhook_addresses as addresses
from webapp.services import webhook_delivery as delivery_module
from webapp.services.tokens import create_token
from webapp.services.webhook_delivery import deliver, post
from webapp.services.webhooks import WebhookError, create_webhook, update_webhook


class Dns:
    """A resolver whose answers a test sets per name, counting the look-ups."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []

    def __call__(self, host, port, *args, **kwargs):
        self.lookups.append(host)
        if host not in self.answers:
            return fake_getaddrinfo(host, port)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in self.answers[host]]


@pytest.fixture
def dns(monkeypatch):
    resolver = Dns()
    monkeypatch.setattr(addresses, "getaddrinfo", resolver)
    return resolver


@pytest.fixture
def no_allowed_hosts(app):
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ()


INTERNAL = [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://localhost:5432/", "resolves to 127.0.0.1, a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.5/hook", "private"),
    ("http://172.16.3.4/hook", "private"),
    ("https://192.168.1.10/hook", "private"),
    ("http://100.64.0.1/hook", "shared (carrier-grade NAT)"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://0.0.0.0:5000/", "unspecified"),
    ("http://[::1]:8080/hook", "loopback"),
    ("http://[::]/hook", "unspecified"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[fd12:3456::1]/hook", "private"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback IPv4 address inside an IPv6 address"),
    ("http://[::ffff:a9fe:a9fe]/hook", "link-local IPv4 address inside an IPv6 address"),
    ("http://[2002:a00:1::1]/hook", "private IPv4 address inside an IPv6 address"),
    ("http://[64:ff9b::a00:1]/hook", "private IPv4 address inside an IPv6 address"),
]


@pytest.mark.parametrize(("url", "reason"), INTERNAL)
def test_an_internal_address_is_refused_with_the_reason(app, no_allowed_hosts, url, reason):
    with pytest.raises(WebhookError) as refused:
        create_webhook({"url": url}, actor="t")
    message = refused.value.errors["url"]
    assert reason in message
    assert "only sent to public internet addresses" in message
    assert "WEBHOOK_ALLOWED_HOSTS" in message
    assert db.session.scalar(select(Webhook)) is None


def test_a_name_is_refused_when_any_of_its_addresses_is_internal(app, no_allowed_hosts, dns):
    dns.answers["mixed.example"] = [PUBLIC_TEST_ADDRESS, "10.9.8.7"]
    with pytest.raises(WebhookError) as refused:
        create_webhook({"url": "https://mixed.example/hook"}, actor="t")
    assert "mixed.example resolves to 10.9.8.7, a private address" in refused.value.errors["url"]
    dns.answers["v6.example"] = ["2606:2800:220:1:248:1893:25c8:1946", "::ffff:192.168.0.1"]
    with pytest.raises(WebhookError) as refused:
        create_webhook({"url": "https://v6.example/hook"}, actor="t")
    assert "resolves to ::ffff:192.168.0.1" in refused.value.errors["url"]


def test_an_unknown_host_is_refused(app, no_allowed_hosts):
    with pytest.raises(WebhookError) as refused:
        create_webhook({"url": "https://no-such-host.invalid/hook"}, actor="t")
    assert "no-such-host.invalid could not be resolved" in refused.value.errors["url"]


def test_a_public_host_is_accepted(app, no_allowed_hosts, dns):
    dns.answers["v6.example"] = ["2606:2800:220:1:248:1893:25c8:1946"]
    for url in ("https://crm.example.com/hooks", f"http://{PUBLIC_TEST_ADDRESS}:8080/x",
                "https://v6.example/hook", "https://[2606:2800:220:1:248:1893:25c8:1946]/x"):
        webhook, _ = create_webhook({"url": url}, actor="t")
        assert webhook.url == url


def test_an_edit_to_an_internal_address_is_refused_and_changes_nothing(app, no_allowed_hosts):
    webhook, _ = create_webhook({"url": "https://crm.example.com/hooks"}, actor="t")
    with pytest.raises(WebhookError) as refused:
        update_webhook(webhook, {"url": "http://169.254.169.254/", "description": "x"},
                       actor="t")
    assert "link-local" in refused.value.errors["url"]
    db.session.rollback()
    assert db.session.get(Webhook, webhook.id).url == "https://crm.example.com/hooks"


def test_the_allow_list_exempts_hosts_and_ports(app):
    app.config["WEBHOOK_ALLOWED_HOSTS"] = "localhost:8080, [::1], 10.0.0.5"
    for url in ("http://localhost:8080/x", "http://[::1]:9000/x", "http://10.0.0.5/x"):
        create_webhook({"url": url}, actor="t")
    with pytest.raises(WebhookError) as refused:
        create_webhook({"url": "http://localhost:8081/x"}, actor="t")
    assert "loopback" in refused.value.errors["url"]
    with pytest.raises(WebhookError):
        create_webhook({"url": "http://127.0.0.1:8080/x"}, actor="t")  # the name, not the IP


def test_allowed_hosts_setting_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("WEBHOOK_ALLOWED_HOSTS", raising=False)
    assert config.load(str(tmp_path))["WEBHOOK_ALLOWED_HOSTS"] == ()
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", " LocalHost:8080 ,127.0.0.1,, [::1] ")
    assert config.load(str(tmp_path))["WEBHOOK_ALLOWED_HOSTS"] == (
        "localhost:8080", "127.0.0.1", "[::1]")
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "http://localhost/x")
    with pytest.raises(RuntimeError, match="WEBHOOK_ALLOWED_HOSTS: 'http://localhost/x'"):
        config.load(str(tmp_path))


def test_the_form_says_why_an_internal_url_is_refused(client, auth, no_allowed_hosts):
    auth.login("admin")
    response = client.post("/webhooks/", data={"url": "http://localhost:5432/",
                                               "actions": ["ADD", "REMOVE"]})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "localhost resolves to 127.0.0.1, a loopback address" in page
    assert db.session.scalar(select(Webhook)) is None


def test_the_api_says_why_an_internal_url_is_refused(client, app, no_allowed_hosts):
    _, token = create_token("hooks", "admin")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/vnd.api+json"}
    response = client.post("/api/v1/webhooks", headers=headers, json={"data": {
        "type": "webhooks", "attributes": {"url": "http://169.254.169.254/latest"}}})
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["source"]["pointer"] == "/data/attributes/url"
    assert error["code"] == "blocked_host"
    assert "169.254.169.254 is a link-local address" in error["detail"]
    webhook, _ = create_webhook({"url": "https://crm.example.com/hooks"}, actor="t")
    response = client.patch(f"/api/v1/webhooks/{webhook.id}", headers=headers, json={"data": {
        "type": "webhooks", "id": str(webhook.id), "attributes": {"url": "http://[::1]/"}}})
    assert response.status_code == 422
    assert "::1 is a loopback address" in response.get_json()["errors"][0]["detail"]


def _subscribe_then_add(receiver, url):
    segment = make_segment(kind="static")
    webhook, secret = create_webhook({"url": url}, actor="t")
    receiver.secrets[str(webhook.id)] = secret
    add_to_list(segment, make_member())
    return webhook


def test_a_dns_change_after_saving_cannot_reach_an_internal_host(
        app, receiver, no_allowed_hosts, dns):
    port = receiver.server.server_address[1]
    dns.answers["hooks.example"] = [PUBLIC_TEST_ADDRESS]
    webhook = _subscribe_then_add(receiver, f"http://hooks.example:{port}/hook")
    dns.answers["hooks.example"] = ["127.0.0.1"]  # the attacker's DNS now points inside

    result = deliver()

    assert receiver.requests == []
    assert (result.posts, result.retrying) == (1, 1)
    row = db.session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.webhook_id == webhook.id))
    assert row.status == "retrying" and row.last_status_code is None
    assert row.last_error.startswith("Not sent: The host hooks.example resolves to 127.0.0.1, "
                                     "a loopback address")


def test_delivery_connects_to_the_checked_address_with_the_urls_host(app, receiver, dns):
    port = receiver.server.server_address[1]
    app.config["WEBHOOK_ALLOWED_HOSTS"] = "hooks.example"
    dns.answers["hooks.example"] = ["127.0.0.1"]
    webhook = _subscribe_then_add(receiver, f"http://hooks.example:{port}/hook?x=1")
    dns.lookups.clear()

    result = deliver()

    assert result.delivered == 1
    [request] = receiver.requests
    assert request["headers"]["Host"] == f"hooks.example:{port}"
    assert request["path"] == "/hook?x=1" and request["signed"]
    assert request["webhook_id"] == str(webhook.id)
    assert dns.lookups == ["hooks.example"]  # resolved once; the connection used that answer


def test_the_pinned_connection_tries_each_checked_address_in_turn(app, receiver, dns):
    port = receiver.server.server_address[1]
    app.config["WEBHOOK_ALLOWED_HOSTS"] = f"hooks.example:{port}"
    # Nothing listens on 127.0.0.2 (the receiver is bound to 127.0.0.1): refused, then next.
    dns.answers["hooks.example"] = ["127.0.0.2", "127.0.0.1"]
    _subscribe_then_add(receiver, f"http://hooks.example:{port}/hook")
    assert deliver().delivered == 1
    assert len(receiver.requests) == 1


DATA = Path(__file__).resolve().parent / "data"


def test_https_checks_the_certificate_of_the_urls_host_at_the_checked_address(
        app, dns, monkeypatch):
    """TLS server name and certificate check use the URL's host; TCP goes to the checked IP.

    The receiver's certificate (tests/webhooks/data, self-signed for secure.example, made
    for this test) is trusted only in the second attempt.
    """
    seen: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen["host"] = self.headers["Host"]
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(DATA / "receiver-cert.pem", DATA / "receiver-key.pem")
    context.sni_callback = lambda sock, name, ctx: seen.__setitem__("server_name", name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        app.config["WEBHOOK_ALLOWED_HOSTS"] = "secure.example"
        dns.answers["secure.example"] = ["127.0.0.1"]
        url = f"https://secure.example:{port}/hook"

        status, error = post(url, b"[]", {"Content-Type": "application/json"}, 5)
        assert (status, seen.get("server_name")) == (None, "secure.example")
        assert "CERTIFICATE_VERIFY_FAILED" in error  # not trusted: nothing is sent

        monkeypatch.setattr(delivery_module, "_tls_context", lambda: ssl.create_default_context(
            cafile=str(DATA / "receiver-cert.pem")))
        assert post(url, b"[]", {"Content-Type": "application/json"}, 5) == (204, None)
        assert seen == {"server_name": "secure.example", "host": f"secure.example:{port}"}
    finally:
        server.shutdown()
        server.server_close()
