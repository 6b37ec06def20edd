"""The operator as the chart installs it, from the image built from this repo's Dockerfile.

In both RBAC modes (cluster-wide, and `watchNamespaces`): the pod becomes Running and
Ready and stays up (kwok used to fake Ready over a crash loop: `KeyError: 'getpwuid():
uid not found: 65532'`); /healthz and /metrics answer through a port-forward; the
operator authenticates with its in-cluster ServiceAccount (the API server's audit log
names it on the operator's writes) and serves a site in a namespace it watches, and
(namespaced mode) leaves an unwatched namespace alone. The operator's process meets the
restricted Pod Security Standard, read from inside its container.

Not here: `helm test`. Its pod asks for the Service by DNS name, and the local cluster
has no cluster DNS (docs/local-cluster.md says why).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Cluster, wait_for
from tests.e2e import kit
from tests.integration import sites

MODES = ["cluster-wide", "namespaced"]


@pytest.fixture(scope="module", params=MODES)
def installed(request: pytest.FixtureRequest, cluster: Cluster, operator: kit.OperatorRelease,
              node: str) -> Iterator[tuple[kit.OperatorRelease, str, str]]:
    """(the release, a namespace it serves, a namespace it does not serve in namespaced mode)."""
    with kit.namespace(cluster, "e2e-served") as served, kit.namespace(cluster, "e2e-other") as other:
        watch = (served,) if request.param == "namespaced" else ()
        yield operator.ensure(watch=watch), served, other


def test_operator_pod_is_ready_and_stays_up(cluster: Cluster, installed: tuple[kit.OperatorRelease, str, str],
                                            images: kit.Images) -> None:
    release, _, _ = installed
    pod = release.pod()
    container = pod["spec"]["containers"][0]
    assert container["image"] == images.operator, "the chart must run the image built from this repo"
    assert container["imagePullPolicy"] == "Never"
    assert pod["spec"]["nodeName"] == "staticsite-node"
    # A crash loop restarts the container: wait past the startup probe's first periods.
    time.sleep(5)
    status = release.pod()["status"]
    state = status["containerStatuses"][0]
    assert status["phase"] == "Running" and state["ready"] is True, json.dumps(status, indent=1)
    assert state["restartCount"] == 0, f"the operator restarted: {state.get('lastState')}"
    logs = cluster.kubectl("-n", release.namespace, "logs", pod["metadata"]["name"]).stdout
    assert "getpwuid" not in logs and "Traceback" not in logs, logs[-3000:]


def test_healthz_and_metrics_answer_through_port_forward(cluster: Cluster,
                                                         installed: tuple[kit.OperatorRelease, str, str]) -> None:
    release, _, _ = installed
    service = f"service/{release.release}-staticsite-operator"
    with kit.port_forward(cluster, release.namespace, service, 8080) as port:
        health = kit.request("127.0.0.1", port, "/healthz")
    assert health.status == 200, health
    with kit.port_forward(cluster, release.namespace, service, 9090) as port:
        metrics = kit.request("127.0.0.1", port, "/metrics")
    assert metrics.status == 200
    assert "staticsite_reconcile_total" in metrics.body and "staticsite_workqueue_depth" in metrics.body


def test_serves_a_site_with_its_service_account(cluster: Cluster, installed: tuple[kit.OperatorRelease, str, str],
                                                images: kit.Images) -> None:
    release, served, _ = installed
    assert cluster.audit_log is not None, "the local cluster writes an audit log"
    audit = cluster.audit_log.stat().st_size
    sites.apply(cluster, sites.site("hello", served, {"index.html": "<h1>served</h1>"}))
    kit.wait_site_ready(cluster, served, "hello", timeout=90)
    [pod] = kit.ready_pods(cluster, served, kit.site_selector("hello"))
    assert pod["spec"]["containers"][0]["image"] == images.nginx  # the chart's sites.nginxImage
    with kit.port_forward(cluster, served, "service/hello", 80) as port:
        page = kit.request("127.0.0.1", port, "/")
    assert page.status == 200 and "<h1>served</h1>" in page.body

    with cluster.audit_log.open() as log:
        log.seek(audit)
        records = [json.loads(line) for line in log if line.strip()]
    writers = {r["user"]["username"] for r in records
               if r.get("objectRef", {}).get("namespace") == served and r.get("verb") in ("patch", "create")}
    assert release.service_account in writers, f"writes in {served} came from {writers}"


def test_namespaced_mode_leaves_other_namespaces_alone(cluster: Cluster,
                                                       installed: tuple[kit.OperatorRelease, str, str]) -> None:
    release, _, other = installed
    sites.apply(cluster, sites.site("stray", other))
    if not release.watch:  # cluster-wide: the same site is served
        kit.wait_site_ready(cluster, other, "stray", timeout=90)
        return
    time.sleep(10)  # long enough for a watching operator to have written a status
    obj = sites.get(cluster, other, "staticsite", "stray")
    assert obj is not None and not obj.get("status"), f"an unwatched site got a status: {obj}"
    assert cluster.kubectl("-n", other, "get", "deployment", "stray", check=False).returncode != 0


def test_operator_process_meets_restricted_pss(cluster: Cluster,
                                               installed: tuple[kit.OperatorRelease, str, str]) -> None:
    release, _, _ = installed
    labels = cluster.kubectl_json("get", "namespace", release.namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    probe = kit.security_probe(cluster, release.namespace, release.pod()["metadata"]["name"], "operator")
    kit.assert_restricted(probe, "the operator")
    assert probe["uid"] == "65532"


def test_restricted_pss_is_enforced_on_the_real_node(cluster: Cluster,
                                                     real_namespace: Callable[[str], str]) -> None:
    """The namespaces the e2e pods run in reject a pod that breaks the restricted standard."""
    ns = real_namespace("e2e-pss")
    bad = cluster.kubectl("-n", ns, "run", "root", f"--image={kit.images().nginx}", "--restart=Never", check=False)
    assert bad.returncode != 0 and "violates PodSecurity" in bad.stderr, bad.stderr
    wait_for(lambda: cluster.kubectl("-n", ns, "get", "pods", "-o", "name").stdout == "", timeout=5,
             what="no pod admitted")
