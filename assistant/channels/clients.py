"""Who a request comes from: its address and scheme, believing only trusted proxies.

The socket's peer is the client unless it is one of `trusted_proxies`; then the
`X-Forwarded-For` hops are read right to left, skipping trusted ones, and the
first untrusted hop is the client (a client can write any hop left of its own).
`X-Forwarded-Proto: https` likewise counts only from a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443}


def networks(entries: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _within(address: str, nets: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in nets)


class Clients:
    """Reads a request's client address and scheme, and whether it is exempt from limits."""

    def __init__(self, trusted_proxies: Sequence[str], exempt: Sequence[str] = ()) -> None:
        self.trusted = networks(trusted_proxies)
        self.exempt_nets = networks(exempt)

    def peer(self, scope: Scope) -> str:
        client = scope.get("client")
        return client[0] if client else "unknown"

    def address(self, scope: Scope) -> str:
        peer = self.peer(scope)
        if not _within(peer, self.trusted):
            return peer
        # Every X-Forwarded-For header, in order: a proxy may add its own after the client's.
        forwarded = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not _within(hop, self.trusted):
                return hop
        return hops[0] if hops else peer

    def https(self, scope: Scope) -> bool:
        if scope.get("scheme") in ("https", "wss"):
            return True
        proto = Headers(scope=scope).get("x-forwarded-proto", "")
        return _within(self.peer(scope), self.trusted) and proto.lower() == "https"

    def exempt(self, scope: Scope) -> bool:
        """A direct client on an exempt address: no proxy stands between, so the address
        is the client's own (a proxy on this machine not named trusted adds a header)."""
        headers = Headers(scope=scope)
        proxied = "x-forwarded-for" in headers or "forwarded" in headers
        peer = self.peer(scope)
        # A trusted proxy's own address stands for its clients, never for this machine.
        return not proxied and not _within(peer, self.trusted) and _within(peer, self.exempt_nets)


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of `url`, lower case, default port dropped; None if not a URL."""
    try:
        parts = urlsplit(url.strip())
        hostname, port = parts.hostname, parts.port
    except ValueError:  # "http://[" and other malformed hosts or ports
        return None
    if parts.scheme not in DEFAULT_PORTS or not hostname:
        return None
    host = f"[{hostname}]" if ":" in hostname else hostname
    suffix = f":{port}" if port and port != DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{host}{suffix}"


def host_of(origin: str) -> str:
    """The `host[:port]` part of an origin from `origin_of`."""
    return origin.split("://", 1)[1]


def own_host(scope: Scope, https: bool) -> str | None:
    """The request's `Host` as `host[:port]`, default port dropped, lower case."""
    host = Headers(scope=scope).get("host")
    if not host:
        return None
    origin = origin_of(f"{'https' if https else 'http'}://{host}")
    return host_of(origin) if origin else None
