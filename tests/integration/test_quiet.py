"""Quiet on the API server: a converged operator sends no writes, idle or restarted.

Writes are counted by the API server itself: the local cluster's audit policy logs
every non-read request, with its user agent (the operator's client and kopf's).
"""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from tests.conftest import AuditLog, Cluster, wait_for
from tests.integration import sites

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("kube_env", "crd")]


def _reconciles() -> float:
    return REGISTRY.get_sample_value("staticsite_reconcile_total", {"result": "ok"}) or 0.0


def _summary(writes: list[dict[str, object]]) -> list[str]:
    return [f"{w.verb} {w.uri} ({w.user_agent})" for w in writes]


def test_no_writes_when_idle_or_after_restart(cluster: Cluster, namespace: str, audit: AuditLog) -> None:
    names = ["quiet-a", "quiet-b", "quiet-c"]
    with sites.running_operator(namespace):
        sites.apply(cluster, sites.example("docs-site", namespace) | {
            "metadata": {"name": names[0], "namespace": namespace}})
        sites.apply(cluster, sites.site(names[1], namespace, domains=["b.example.com"]))
        sites.apply(cluster, sites.example("spa", namespace) | {
            "metadata": {"name": names[2], "namespace": namespace}})
        for name in names:
            sites.wait_ready(cluster, namespace, name)
        assert audit.writes(), "the audit log saw none of the operator's writes: is it being written?"

        # Let the last watch events (our own status writes coming back) settle, then count.
        time.sleep(3)
        audit.mark()
        time.sleep(10)
        idle = audit.writes()
        assert idle == [], _summary(idle)

    audit.mark()
    before = _reconciles()
    with sites.running_operator(namespace):
        # A restart re-lists everything and reconciles every site: wait until it has,
        # plus a moment for anything it might have written to reach the log.
        wait_for(lambda: _reconciles() >= before + len(names), what="every site reconciled after the restart")
        time.sleep(2)
        restarted = audit.writes()
    assert restarted == [], _summary(restarted)
    for name in names:
        assert sites.condition(sites.get(cluster, namespace, "staticsite", name), "Ready")["status"] == "True"


def test_kopf_keeps_no_state_on_the_objects(cluster: Cluster, namespace: str) -> None:
    """No last-handled-configuration annotation, no finalizers: nothing grows with the spec."""
    with sites.running_operator(namespace):
        sites.apply(cluster, sites.site("stateless", namespace))
        obj = sites.wait_ready(cluster, namespace, "stateless")
    annotations = obj["metadata"].get("annotations") or {}
    assert not [k for k in annotations if k.startswith("kopf.zalando.org")], annotations
    assert not obj["metadata"].get("finalizers")
