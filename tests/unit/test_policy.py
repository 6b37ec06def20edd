"""The platform's policy (core.policy) and domain claims (core.domains), without a cluster.

The same globs are evaluated by the chart's ValidatingAdmissionPolicy in CEL: the glob
cases here are the semantics both must share (tests/integration/test_tenant_admission
checks the CEL side on the real API server).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from staticsite_operator.api import conditions as c
from staticsite_operator.api import models
from staticsite_operator.core import domains, policy
from staticsite_operator.core.domains import Claim
from staticsite_operator.core.policy import Policy, PolicyError, glob_match

ROOT = Path(__file__).resolve().parents[2]


def spec(**kw: Any) -> models.StaticSiteSpec:
    return models.StaticSiteSpec.model_validate(
        {"content": {"inline": {"files": [{"path": "index.html", "content": "x"}]}}, **kw})


@pytest.mark.parametrize(("pattern", "value", "matched"), [
    ("cert-manager.io/*", "cert-manager.io/cluster-issuer", True),
    ("cert-manager.io/*", "evil.io/cert-manager.io/x", False),
    ("*snippet*", "nginx.ingress.kubernetes.io/Configuration-SNIPPET", True),
    ("*/auth-url", "nginx.ingress.kubernetes.io/auth-url", True),
    ("*/auth-url", "nginx.ingress.kubernetes.io/auth-url-x", False),
    ("*.team-a.example.com", "docs.team-a.example.com", True),
    ("*.team-a.example.com", "a.b.team-a.example.com", True),
    ("*.team-a.example.com", "team-a.example.com", False),
    ("*.team-a.example.com", "evilteam-a.example.com", False),
    ("*", "anything", True),
    ("exact.example.com", "EXACT.example.com", True),
])
def test_globs(pattern: str, value: str, matched: bool) -> None:
    assert glob_match(pattern, value) is matched


def test_the_chart_ships_the_same_denylist() -> None:
    shipped = (ROOT / "operator" / "staticsite_operator" / "api" / "denied-annotations.txt").read_bytes()
    assert (ROOT / "charts" / "staticsite-operator" / "files" / "denied-annotations.txt").read_bytes() == shipped
    assert "*snippet*" in policy.DENIED_ANNOTATIONS
    assert all(policy.valid_glob(g) for g in policy.DENIED_ANNOTATIONS)


@pytest.mark.parametrize("key", [
    "nginx.ingress.kubernetes.io/configuration-snippet", "nginx.ingress.kubernetes.io/server-snippet",
    "nginx.org/server-snippets", "haproxy.org/backend-config-snippet", "nginx.ingress.kubernetes.io/auth-url",
    "nginx.ingress.kubernetes.io/mirror-target", "traefik.ingress.kubernetes.io/router.middlewares",
    "kubernetes.io/ingress.class", "alb.ingress.kubernetes.io/scheme",
])
def test_config_running_annotations_are_refused_whatever_the_allowlist(key: str) -> None:
    generous = Policy(allowed_annotations=("*",))
    problem = generous.check(spec(ingress={"annotations": {key: "x"}}))
    assert problem is not None and problem.reason == c.ANNOTATION_NOT_ALLOWED
    assert key in problem.message and "ingress controller" in problem.message


def test_only_allowed_annotations_pass() -> None:
    default = Policy()
    assert default.check(spec(ingress={"annotations": {"cert-manager.io/cluster-issuer": "le"}})) is None
    problem = default.check(spec(ingress={"annotations": {"example.com/owner": "me", "a.io/b": "c"}}))
    assert problem is not None and "policy.annotations.allowed" in problem.message and "1 more" in problem.message


def test_images_ingress_classes_limits_and_sources() -> None:
    rules = Policy(allowed_images=("registry.example.com/nginx:*",), default_image="staticsite.local/nginx:1",
                   allowed_ingress_classes=("public",), max_replicas=3, max_cpu="500m", max_memory="256Mi",
                   source_hosts=("git.example.com",))
    assert rules.check(spec(nginx={"image": "registry.example.com/nginx:1.28"})) is None
    assert rules.check(spec(nginx={"image": "staticsite.local/nginx:1"})) is None, "the default is always allowed"
    cases = [
        (spec(nginx={"image": "docker.io/evil/miner:latest"}), c.IMAGE_NOT_ALLOWED, "spec.nginx.image"),
        (spec(ingress={"className": "internal"}), c.INGRESS_CLASS_NOT_ALLOWED, "spec.ingress.className"),
        (spec(replicas=4), c.LIMIT_EXCEEDED, "spec.replicas"),
        (spec(nginx={"resources": {"limits": {"cpu": "1"}}}), c.LIMIT_EXCEEDED, "limits.cpu"),
        (spec(nginx={"resources": {"requests": {"memory": "1Gi"}}}), c.LIMIT_EXCEEDED, "requests.memory"),
    ]
    for bad, reason, field in cases:
        problem = rules.check(bad)
        assert problem is not None and problem.reason == reason and field in problem.message
    git = {"content": {"git": {"url": "https://evil.example.org/r.git"}}}
    problem = rules.check(models.StaticSiteSpec.model_validate(git))
    assert problem is not None and problem.reason == c.SOURCE_NOT_ALLOWED and "evil.example.org" in problem.message


def test_policy_from_the_configmap_data() -> None:
    loaded = Policy.from_data({
        "annotations.allowed": "cert-manager.io/cluster-issuer\n example.com/*\n",
        "annotations.denied": "example.com/dangerous",
        "images.allowed": "registry.example.com/*", "images.default": "staticsite.local/nginx:1",
        "domains.restricted": "true", "domains.ns.team-a": "*.team-a.example.com\nteam-a.example.com",
        "domains.revealOwner": "true", "sources.hosts": "git.example.com",
        "sources.allowedNetworks": "100.64.0.0/16 80,8080\nfd00::/8",
        "limits.maxReplicas": "5", "limits.maxCPU": "1", "limits.maxMemory": "512Mi",
    })
    assert loaded.allowed_annotations == ("cert-manager.io/cluster-issuer", "example.com/*")
    assert loaded.annotation_refused("example.com/dangerous") is not None
    assert loaded.annotation_refused("nginx.ingress.kubernetes.io/server-snippet") is not None, "built-in list kept"
    assert loaded.domain_allowed("team-a", "docs.team-a.example.com")
    assert not loaded.domain_allowed("team-a", "docs.team-b.example.com")
    assert not loaded.domain_allowed("team-c", "anything.example.com"), "restricted: no entry, no domains"
    assert [(str(n.net), n.ports) for n in loaded.allowed_networks] == [
        ("100.64.0.0/16", frozenset({80, 8080})), ("fd00::/8", None)]
    assert (loaded.max_replicas, loaded.max_cpu, loaded.max_memory) == (5, "1", "512Mi")
    assert Policy.from_data({}) == Policy()


@pytest.mark.parametrize(("data", "key"), [
    ({"annotations.allowed": "a*b"}, "annotations.allowed"),
    ({"domains.restricted": "yes"}, "domains.restricted"),
    ({"limits.maxReplicas": "many"}, "limits.maxReplicas"),
    ({"limits.maxMemory": "lots"}, "limits.maxMemory"),
    ({"sources.allowedNetworks": "not-a-cidr"}, "sources.allowedNetworks"),
])
def test_a_bad_policy_names_its_key(data: dict[str, str], key: str) -> None:
    with pytest.raises(PolicyError, match=key):
        Policy.from_data(data)


# --- domain claims -----------------------------------------------------------------
A = Claim("2026-01-01T00:00:00Z", "team-a", "docs")
B = Claim("2026-01-02T00:00:00Z", "team-b", "docs")
B_SAME_SECOND = Claim("2026-01-01T00:00:00Z", "team-b", "docs")


def claimants_of(*claims: Claim) -> Any:
    return lambda domain: list(claims)


def test_the_first_claim_wins_then_namespace_then_name() -> None:
    assert domains.grant(A, ["docs.example.com"], claimants_of(A, B), Policy()).hosts == ("docs.example.com",)
    claims = {"docs.example.com": [A, B], "b.example.com": [B]}
    later = domains.grant(B, ["docs.example.com", "b.example.com"], claims.__getitem__, Policy())
    assert later.hosts == ("b.example.com",)
    assert later.problem is not None and later.problem.reason == c.DOMAIN_CONFLICT
    assert "team-a" not in later.problem.message, "the owner's namespace is not revealed by default"
    tie = domains.grant(B_SAME_SECOND, ["docs.example.com"], claimants_of(A, B_SAME_SECOND), Policy())
    assert tie.hosts == (), "same second: team-a sorts first"


def test_the_owner_is_named_only_when_the_platform_allows_it() -> None:
    revealed = domains.grant(B, ["docs.example.com"], claimants_of(A, B), Policy(reveal_domain_owner=True))
    assert revealed.problem is not None and "'team-a'" in revealed.problem.message


def test_when_the_owner_lets_go_the_next_claimant_gets_the_domain() -> None:
    assert domains.grant(B, ["docs.example.com"], claimants_of(B), Policy()).hosts == ("docs.example.com",)
    assert domains.grant(B, ["docs.example.com"], claimants_of(), Policy()).hosts == ("docs.example.com",), (
        "a claim the cache has not seen yet still counts for the site itself")


def test_a_domain_outside_the_namespace_allowance_is_refused() -> None:
    rules = Policy(domains_restricted=True, namespace_domains={"team-b": ("*.team-b.example.com",)})
    granted = domains.grant(B, ["www.team-b.example.com", "docs.team-a.example.com"], claimants_of(B), rules)
    assert granted.hosts == ("www.team-b.example.com",)
    assert granted.problem is not None and granted.problem.reason == c.DOMAIN_NOT_ALLOWED
    assert "docs.team-a.example.com" in granted.problem.message
