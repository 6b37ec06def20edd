"""Which addresses the operator may contact on a tenant's behalf: a guard against SSRF.

To resolve `git.ref`, the operator sends HTTP requests from its own pod, in the
platform's namespace, to a host a tenant names. Without a guard, a tenant could make it
reach cloud metadata (169.254.169.254), cluster Services or private networks, and
tell open ports from closed ones by how each attempt failed.

So before every connection (the first, and each redirect) the host must match the
policy's `sources.hosts`, and every address it resolves to must be public, unless the
platform allowed that network (and port) in `sources.allowedNetworks`. The connection
then goes to the address that was checked, so DNS cannot answer differently between
the check and the connect (DNS rebinding). A refusal says only that the policy refused
the host: nothing about its addresses or ports.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from ..core.policy import Policy, matches_any
from ..core.ports import SourceRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]

# Not covered by `is_global`, or covered only for the IPv6 wrapper of an IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_v4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def public(address: Address) -> bool:
    """Routable on the internet: not loopback, private, link-local, shared (100.64/10),
    reserved, multicast or unspecified, nor an IPv6 wrapper of such an IPv4 address."""
    inner = _embedded_v4(address)
    if inner is not None and not public(inner):
        return False
    return address.is_global and not address.is_multicast


class Guard:
    def __init__(self, policy: Policy, resolve: Resolver = socket.getaddrinfo) -> None:
        self.policy = policy
        self._resolve = resolve

    def refused(self, host: str) -> SourceRefused:
        return SourceRefused(f"the platform's policy does not let the operator contact {host!r} "
                             "(policy.sources): ask the platform team to allow it")

    def allowed(self, address: Address, port: int) -> bool:
        inner = _embedded_v4(address) or address
        if any(net.allows(inner, port) or net.allows(address, port) for net in self.policy.allowed_networks):
            return True
        return public(address)

    def address(self, host: str, port: int) -> str:
        """The address to connect to for `host`:`port`; SourceRefused if the policy forbids it."""
        if not matches_any(self.policy.source_hosts, host.lower().rstrip(".")):
            raise self.refused(host)
        # A name that does not resolve raises socket.gaierror: a failure to connect, not a refusal.
        found = [info[4][0] for info in self._resolve(host, port, type=socket.SOCK_STREAM)]
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in dict.fromkeys(found)]
        # Every address must be allowed, not just the first: a name can resolve to a public
        # address and a private one, and the client would try them in turn.
        if not addresses or not all(self.allowed(a, port) for a in addresses):
            raise self.refused(host)
        return str(addresses[0])

    def create_connection(self, where: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                          source_address: tuple[str, int] | None = None) -> socket.socket:
        """socket.create_connection, to the checked address (http.client's hook)."""
        host, port = where
        return socket.create_connection((self.address(host, port), port), timeout, source_address)
