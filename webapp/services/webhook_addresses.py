"""Where a webhook may be sent: public internet addresses only, unless an operator allows a host.

A webhook URL names a host; Beacon's server makes the request, so without a check an admin
(or a stolen admin token) could make it POST to the database port, the cloud metadata
service (169.254.169.254) or anything else on the internal network. `check_url` resolves
the URL's host once and refuses it when any of its addresses is loopback, link-local,
private, shared (carrier-grade NAT), multicast, reserved, unspecified or otherwise not
globally routable; IPv4 addresses inside IPv6 ones (IPv4-mapped `::ffff:a.b.c.d`, 6to4,
NAT64 `64:ff9b::/96`, Teredo) are judged by the IPv4 address they carry.

The same check runs when a webhook is saved (with a message saying why) and again before
every delivery, which then connects to the addresses it checked (never resolving the name a
second time), so a DNS answer that changes between the check and the connection cannot
reach an internal host.

`WEBHOOK_ALLOWED_HOSTS` (comma-separated `host` or `host:port`; IPv6 as `[::1]:8080`)
exempts hosts from the address check, for local development and the test suite.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app, has_app_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The resolver; a module attribute so that tests can replace it (no real DNS in tests).
getaddrinfo = socket.getaddrinfo

DEFAULT_PORTS = {"http": 80, "https": 443}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SHARED = ipaddress.ip_network("100.64.0.0/10")


class BlockedDestination(ValueError):
    """A URL whose host may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Destination:
    """A checked URL: its host and port, and the addresses to connect to (in order)."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def parse_allowed_hosts(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Normalised allow-list entries (`host` or `host:port`, lower-case); raises ValueError."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    entries: list[str] = []
    for raw in items:
        item = str(raw).strip().lower()
        if not item:
            continue
        try:
            parts = urlsplit(f"//{item}")
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a host or host:port ({exc})") from None
        host = parts.hostname
        if not host or parts.path or parts.query or parts.username or port == 0:
            raise ValueError(f"{item!r} is not a host or host:port")
        entries.append(_host_key(host) if port is None else f"{_host_key(host)}:{port}")
    return tuple(entries)


def _host_key(host: str) -> str:
    """A host as the allow-list writes it: IPv6 literals in brackets."""
    return f"[{host}]" if ":" in host else host


def _allowed(host: str, port: int) -> bool:
    configured = current_app.config.get("WEBHOOK_ALLOWED_HOSTS") if has_app_context() else ()
    entries = parse_allowed_hosts(configured)
    key = _host_key(host.lower())
    return key in entries or f"{key}:{port}" in entries


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return None


def refusal(address: IPAddress) -> str | None:
    """Why this address may not receive webhooks ("a loopback address"), or None when public."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner)
            return f"{reason[:-len(' address')]} IPv4 address inside an IPv6 address" \
                if reason else None
    checks = (("is_unspecified", "an unspecified"), ("is_loopback", "a loopback"),
              ("is_link_local", "a link-local"), ("is_multicast", "a multicast"),
              ("is_reserved", "a reserved"), ("is_private", "a private"))
    for attribute, words in checks:
        if getattr(address, attribute):
            return f"{words} address"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED:
        return "a shared (carrier-grade NAT) address"
    if not address.is_global:
        return "a non-public address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses (an IP literal is its own), in the resolver's order, no repeats."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [str(literal)]
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise BlockedDestination(f"The host {host} could not be resolved ({exc}).") from None
    found: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # Drop an IPv6 zone ("fe80::1%eth0"): the address itself is what is judged.
        text = str(sockaddr[0]).split("%", 1)[0]
        if text not in found:
            found.append(text)
    if not found:
        raise BlockedDestination(f"The host {host} has no address.")
    return found


def check_url(url: str) -> Destination:
    """Resolve the URL's host once and check every address; raises BlockedDestination."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or DEFAULT_PORTS.get(scheme, 80)
    addresses = resolve(host, port)
    if not _allowed(host, port):
        for text in addresses:
            reason = refusal(ipaddress.ip_address(text))
            if reason is None:
                continue
            via = "is" if text == host else f"resolves to {text},"
            raise BlockedDestination(
                f"The host {host} {via} {reason}: webhooks are only sent to public internet "
                "addresses (an operator can allow a host with WEBHOOK_ALLOWED_HOSTS).")
    return Destination(scheme, host, port, tuple(addresses))
