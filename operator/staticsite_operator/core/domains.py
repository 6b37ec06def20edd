"""Which of a site's domains it may serve: the namespace's allowance, then first come, first served. Pure.

A domain belongs to the first StaticSite that claimed it, by creation time, then by
namespace and name. A later site that lists it is served without that host, and
is Degraded with DomainConflict, until the owner lets go (drops the domain, or is
deleted); then the next claimant gets it. Before any claim, the platform may restrict
which domains a namespace may use at all (policy.domains).

Claims are exact host names: `*.example.com` and `a.example.com` are different hosts
(ingress controllers prefer the exact host), so the namespace allowance is what keeps a
tenant from claiming another's subdomains with a wildcard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..api import conditions as c
from .policy import Policy
from .problems import Problem


@dataclass(frozen=True, order=True)
class Claim:
    created: str    # metadata.creationTimestamp (RFC 3339, UTC: sorts as a string)
    namespace: str
    name: str


@dataclass(frozen=True)
class Grant:
    hosts: tuple[str, ...]      # the domains this site serves, in spec order
    problem: Problem | None


def grant(me: Claim, domains: Iterable[str], claimants: Callable[[str], Iterable[Claim]], policy: Policy) -> Grant:
    hosts: list[str] = []
    refused: list[str] = []
    taken: list[tuple[str, Claim]] = []
    for domain in domains:
        if not policy.domain_allowed(me.namespace, domain):
            refused.append(domain)
            continue
        owner = min([*claimants(domain), me])
        if (owner.namespace, owner.name) == (me.namespace, me.name):
            hosts.append(domain)
        else:
            taken.append((domain, owner))
    problem = None
    if refused:
        problem = Problem(c.DOMAIN_NOT_ALLOWED, f"spec.domains: {_listed(refused)} not allowed in namespace "
                                                f"{me.namespace!r} by the platform's policy; the site is served "
                                                "without it")
    elif taken:
        domain, owner = taken[0]
        where = f" in namespace {owner.namespace!r}" if policy.reveal_domain_owner else ""
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        problem = Problem(c.DOMAIN_CONFLICT, f"spec.domains: {domain!r} is already claimed by another StaticSite"
                                             f"{where}{more}; the site is served without it until that site lets go")
    return Grant(tuple(hosts), problem)


def _listed(domains: list[str]) -> str:
    return ", ".join(repr(d) for d in domains) + (" is" if len(domains) == 1 else " are")
