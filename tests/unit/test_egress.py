"""clients.egress: which addresses the operator may contact for a tenant (SSRF guard).

The address checks run without sending anything: names are resolved by a fake resolver,
and no test connects to a private-range address. The two tests that connect use
127.0.0.1 only, with listeners that prove the refused one was never contacted.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from staticsite_operator.clients import gitremote
from staticsite_operator.clients.egress import Guard, public
from staticsite_operator.core.policy import Network, Policy
from staticsite_operator.core.ports import SourceRefused

from .gitserver import QuietHandler, counting_listener, http_server


def resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in table[host]]
    return resolve


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "100.127.255.254", "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fd00::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "2002:7f00:1::1", "64:ff9b::a00:1", "2001:db8::1",
])
def test_private_loopback_link_local_and_cluster_addresses_are_refused(address: str) -> None:
    assert not public(ipaddress.ip_address(address))
    guard = Guard(Policy(), resolve=resolver({"evil.example.com": [address]}))
    with pytest.raises(SourceRefused):
        guard.address("evil.example.com", 443)


@pytest.mark.parametrize("address", ["93.184.215.14", "140.82.112.3", "2606:4700::6810:84e5"])
def test_public_addresses_are_allowed(address: str) -> None:
    guard = Guard(Policy(), resolve=resolver({"git.example.com": [address]}))
    assert guard.address("git.example.com", 443) == address


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    guard = Guard(Policy(), resolve=resolver({"mixed.example.com": ["93.184.215.14", "10.0.0.7"]}))
    with pytest.raises(SourceRefused):
        guard.address("mixed.example.com", 443)


def test_allowed_networks_open_a_private_range_on_the_ports_named() -> None:
    policy = Policy(allowed_networks=(Network(ipaddress.ip_network("100.64.0.0/16"), frozenset({80})),
                                      Network(ipaddress.ip_network("fd00::/8"))))
    guard = Guard(policy, resolve=resolver({"git.svc": ["100.64.3.4"], "v6.svc": ["fd00::5"]}))
    assert guard.address("git.svc", 80) == "100.64.3.4"
    with pytest.raises(SourceRefused):
        guard.address("git.svc", 8080)
    assert guard.address("v6.svc", 443) == "fd00::5"


def test_host_patterns_are_checked_before_any_lookup() -> None:
    looked_up: list[str] = []

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    guard = Guard(Policy(source_hosts=("github.com", "*.example.com")), resolve=resolve)
    assert guard.address("git.example.com", 443)
    with pytest.raises(SourceRefused) as err:
        guard.address("gitlab.com", 443)
    assert looked_up == ["git.example.com"]
    assert str(err.value) == guard.refused("gitlab.com").args[0]
    assert "443" not in str(err.value)


def test_the_default_policy_never_contacts_loopback() -> None:
    with counting_listener() as (port, accepted):
        with pytest.raises(SourceRefused):
            gitremote.resolve_ref(f"http://127.0.0.1:{port}/site.git", "main", timeout=1)
        with pytest.raises(SourceRefused):
            gitremote.resolve_ref(f"http://localhost:{port}/site.git", "main", timeout=1)
    assert accepted == [], "the listener was contacted"


def test_a_redirect_to_a_refused_address_is_never_followed() -> None:
    """An allowed server (127.0.0.1 on one port, by policy) redirects to a refused one."""
    with counting_listener() as (forbidden, accepted):
        class Redirect(QuietHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{forbidden}/site.git/info/refs?service=git-upload-pack")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with http_server(Redirect) as allowed:
            policy = Policy(allowed_networks=(Network(ipaddress.ip_network("127.0.0.1/32"),
                                                      frozenset({allowed.server_port})),))
            with pytest.raises(SourceRefused):
                gitremote.resolve_ref(f"http://127.0.0.1:{allowed.server_port}/site.git", "main", timeout=1,
                                      guard=Guard(policy))
    assert accepted == [], "the redirect target was contacted"
