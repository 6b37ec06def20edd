"""What a tenant's StaticSite may ask for: the platform's policy, and its checks. Pure.

The platform team sets the policy in the chart's `policy` values. The chart renders it
as one ConfigMap with the string keys below. That ConfigMap is the parameter of the
chart's ValidatingAdmissionPolicy, which refuses a bad spec at `kubectl apply`, and it is
mounted into the operator, which checks every spec again here (the second layer: a site
created before the policy tightened, or a cluster without the admission policy).

Keys (lists are one entry per line; globs are matched case-insensitively, and `*` may
only lead and/or end a pattern, so that CEL can evaluate them with string functions):

    annotations.allowed      Ingress annotation keys a site may set
    annotations.denied       keys refused whatever the allowlist says, on top of DENIED_ANNOTATIONS
    images.allowed           nginx images a site may name (the default image is always allowed)
    images.default           the platform's default nginx image
    ingressClasses.allowed   Ingress classes a site may name
    domains.restricted       "true": a namespace may claim only the domains its entry allows
    domains.ns.<namespace>   the domains a namespace may claim
    domains.revealOwner      "true": a DomainConflict names the owner's namespace
    sources.hosts            git and archive hosts the operator and the site's pods may fetch from
    sources.allowedNetworks  private addresses the operator may contact anyway: "CIDR" or "CIDR PORT,PORT"
    limits.maxReplicas       the most replicas a site may ask for
    limits.maxCPU            the most CPU a site's nginx may request or be limited to
    limits.maxMemory         the same for memory
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..api import conditions as c
from ..api import models
from . import quantity
from .problems import Problem

# Sites default to requests {cpu: 10m, memory: 16Mi} and limits {memory: 64Mi}; these
# bounds leave room for the biggest sites while stopping a tenant from asking for a node.
DEFAULT_MAX_REPLICAS = 10
DEFAULT_MAX_CPU = "2"
DEFAULT_MAX_MEMORY = "2Gi"


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the key."""


def _load_denied() -> tuple[str, ...]:
    text = importlib.resources.files("staticsite_operator.api").joinpath("denied-annotations.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


# Annotations that run configuration in an ingress controller, reach other namespaces or
# take over shared infrastructure: refused whatever the allowlist says. The list and its
# sources: api/denied-annotations.txt and docs/security.md.
DENIED_ANNOTATIONS: tuple[str, ...] = _load_denied()


def url_host(url: str) -> str:
    """The host of an http(s) URL that models.REMOTE_URL_PATTERN admitted."""
    match = re.match(r"^https?://([A-Za-z0-9.-]+)", url)
    return match.group(1).lower() if match else ""


def valid_glob(pattern: str) -> bool:
    return bool(pattern) and "*" not in pattern.strip("*")


def glob_match(pattern: str, value: str) -> bool:
    """`*x*` contains, `x*` starts with, `*x` ends with, `*` anything, else equal. Case-insensitive."""
    p, v = pattern.lower(), value.lower()
    if p == "*":
        return True
    if len(p) > 1 and p.startswith("*") and p.endswith("*"):
        return p[1:-1] in v
    if p.endswith("*"):
        return v.startswith(p[:-1])
    if p.startswith("*"):
        return v.endswith(p[1:])
    return p == v


def matches_any(patterns: tuple[str, ...], value: str) -> bool:
    return any(glob_match(p, value) for p in patterns)


@dataclass(frozen=True)
class Network:
    """Addresses the operator may contact although they are not public, optionally on some ports only."""

    net: ipaddress.IPv4Network | ipaddress.IPv6Network
    ports: frozenset[int] | None = None  # None: every port

    def allows(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool:
        return address in self.net and (self.ports is None or port in self.ports)


@dataclass(frozen=True)
class Policy:
    allowed_annotations: tuple[str, ...] = ("cert-manager.io/*",)
    denied_annotations: tuple[str, ...] = DENIED_ANNOTATIONS
    allowed_images: tuple[str, ...] = ()
    default_image: str = models.DEFAULT_NGINX_IMAGE
    allowed_ingress_classes: tuple[str, ...] = ("*",)
    domains_restricted: bool = False
    namespace_domains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reveal_domain_owner: bool = False
    source_hosts: tuple[str, ...] = ("*",)
    allowed_networks: tuple[Network, ...] = ()
    max_replicas: int = DEFAULT_MAX_REPLICAS
    max_cpu: str = DEFAULT_MAX_CPU
    max_memory: str = DEFAULT_MAX_MEMORY

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> Policy:
        """The policy from the ConfigMap's data (missing keys keep their defaults)."""
        def lines(key: str) -> tuple[str, ...] | None:
            if key not in data:
                return None
            return tuple(line.strip() for line in data[key].splitlines() if line.strip())

        def globs(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            found = lines(key)
            if found is None:
                return default
            if bad := [g for g in found if not valid_glob(g)]:
                raise PolicyError(f"{key}: {bad[0]!r}: '*' may only start and/or end a pattern")
            return found

        def flag(key: str) -> bool:
            value = data.get(key, "false").strip().lower()
            if value not in ("true", "false"):
                raise PolicyError(f"{key}: {value!r} is not true or false")
            return value == "true"

        defaults = cls()
        try:
            max_replicas = int(data.get("limits.maxReplicas", defaults.max_replicas))
        except ValueError:
            raise PolicyError(f"limits.maxReplicas: {data['limits.maxReplicas']!r} is not a whole number") from None
        for key in ("limits.maxCPU", "limits.maxMemory"):
            if key in data and quantity.parse(data[key]) is None:
                raise PolicyError(f"{key}: {data[key]!r} is not a resource quantity")
        return cls(
            allowed_annotations=globs("annotations.allowed", defaults.allowed_annotations),
            denied_annotations=DENIED_ANNOTATIONS + globs("annotations.denied", ()),
            allowed_images=globs("images.allowed", ()),
            default_image=data.get("images.default", "").strip() or defaults.default_image,
            allowed_ingress_classes=globs("ingressClasses.allowed", defaults.allowed_ingress_classes),
            domains_restricted=flag("domains.restricted"),
            namespace_domains={key.removeprefix("domains.ns."): globs(key, ())
                               for key in data if key.startswith("domains.ns.")},
            reveal_domain_owner=flag("domains.revealOwner"),
            source_hosts=globs("sources.hosts", defaults.source_hosts),
            allowed_networks=tuple(_network(line) for line in lines("sources.allowedNetworks") or ()),
            max_replicas=max_replicas,
            max_cpu=data.get("limits.maxCPU", defaults.max_cpu).strip(),
            max_memory=data.get("limits.maxMemory", defaults.max_memory).strip(),
        )

    # --- the checks ------------------------------------------------------------------
    def annotation_refused(self, key: str) -> str | None:
        """Why the key may not be set, or None."""
        if matches_any(self.denied_annotations, key):
            return "it can run configuration in the shared ingress controller or reach outside the namespace"
        if not matches_any(self.allowed_annotations, key):
            return "the platform's policy does not allow it (policy.annotations.allowed)"
        return None

    def domain_allowed(self, namespace: str, domain: str) -> bool:
        allowance = self.namespace_domains.get(namespace)
        if allowance is None:
            return not self.domains_restricted
        return matches_any(allowance, domain)

    def source_host_allowed(self, url: str) -> bool:
        return matches_any(self.source_hosts, url_host(url))

    def check(self, spec: models.StaticSiteSpec) -> Problem | None:
        """The first rule `spec` breaks, as the Problem that stops it being applied; None if none."""
        for where, keys in (("ingress", spec.ingress.annotations),
                            ("gateway", spec.gateway.annotations if spec.gateway else {})):
            refused = {key: why for key in keys if (why := self.annotation_refused(key))}
            if refused:
                key, why = next(iter(refused.items()))
                more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
                return Problem(c.ANNOTATION_NOT_ALLOWED, f"spec.{where}.annotations: {key!r} is refused: {why}{more}")
        image = spec.nginx.image
        if image is not None and image != self.default_image and not matches_any(self.allowed_images, image):
            return Problem(c.IMAGE_NOT_ALLOWED, f"spec.nginx.image: {image!r} is not an image the platform allows; "
                                                "leave it unset for the default image")
        ingress_class = spec.ingress.class_name
        if ingress_class is not None and not matches_any(self.allowed_ingress_classes, ingress_class):
            return Problem(c.INGRESS_CLASS_NOT_ALLOWED,
                           f"spec.ingress.className: {ingress_class!r} is not a class the platform allows")
        if (limit := self._limit_exceeded(spec)) is not None:
            return Problem(c.LIMIT_EXCEEDED, limit)
        source = spec.content.git or spec.content.archive
        if source is not None and not self.source_host_allowed(source.url):
            which = "git" if spec.content.git else "archive"
            return Problem(c.SOURCE_NOT_ALLOWED, f"spec.content.{which}.url: the host "
                                                 f"{url_host(source.url)!r} is not one the platform "
                                                 "allows content from (policy.sources.hosts)")
        return None

    def _limit_exceeded(self, spec: models.StaticSiteSpec) -> str | None:
        if spec.replicas > self.max_replicas:
            return f"spec.replicas: {spec.replicas} is more than the platform allows ({self.max_replicas})"
        res = spec.nginx.resources
        for part, values in (("requests", res.requests), ("limits", res.limits)):
            for name, bound in (("cpu", self.max_cpu), ("memory", self.max_memory)):
                asked, most = quantity.parse(values.get(name)), quantity.parse(bound)
                if asked is not None and most is not None and asked > most:
                    return (f"spec.nginx.resources.{part}.{name}: {values[name]} is more than the platform "
                            f"allows ({bound})")
        return None


def _network(line: str) -> Network:
    cidr, _, ports = line.partition(" ")
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
        parsed = frozenset(int(p) for p in re.split(r"[,\s]+", ports.strip()) if p) or None
    except ValueError:
        raise PolicyError(f"sources.allowedNetworks: {line!r} is not 'CIDR' or 'CIDR PORT,PORT'") from None
    return Network(net, parsed)
