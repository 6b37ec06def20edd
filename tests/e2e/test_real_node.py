"""The real node runs real containers: the honest twin of the integration smoke test.

tests/integration/test_cluster_smoke.py runs `image: nginx` as UID 101 on kwok's fake
nodes, where Ready is faked; in a real container that image fails (`mkdir()
"/var/lib/nginx/body" failed (13: Permission denied)`). Here the same Deployment runs
the local nginx image (built to run as UID 101 with a read-only root) on the real node:
its readiness probe passes for real, kube-proxy serves its ClusterIP to the host, the
API server reaches the kubelet for logs and exec, and ten replicas start in bounded
time (printed: the figures in docs/local-cluster.md come from here).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from tests.conftest import Cluster, wait_for
from tests.e2e import kit


def deployment(image: str, replicas: int) -> str:
    restricted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}}
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "smoke"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "smoke"}},
                 "template": {"metadata": {"labels": {"app": "smoke"}}, "spec": {
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 101,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "web", "image": image, "securityContext": restricted,
                                     "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                                        "periodSeconds": 1},
                                     "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}],
                     "volumes": [{"name": "tmp", "emptyDir": {}}]}}}})


def service() -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "smoke"},
                       "spec": {"selector": {"app": "smoke"}, "ports": [{"port": 80, "targetPort": 8080}]}})


def ready_after_apply(cluster: Cluster, ns: str, replicas: int, image: str) -> float:
    start = time.monotonic()
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=deployment(image, replicas))
    wait_for(lambda: len(kit.ready_pods(cluster, ns, "app=smoke")) == replicas, timeout=90, interval=0.2,
             what=f"{replicas} Ready pods")
    return time.monotonic() - start


def test_local_nginx_is_really_ready_and_served(cluster: Cluster, real_namespace: Callable[[str], str],
                                                images: kit.Images) -> None:
    ns = real_namespace("e2e-smoke")
    took = ready_after_apply(cluster, ns, 1, images.nginx)
    print(f"1 pod: apply -> Ready in {took:.1f}s")
    [pod] = kit.ready_pods(cluster, ns, "app=smoke")
    assert pod["spec"]["nodeName"] == "staticsite-node"
    assert pod["status"]["podIP"].startswith("100.96.0.")
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=service())
    ip = kit.cluster_ip(cluster, ns, "smoke")

    def served() -> kit.Response | None:
        try:
            return kit.request(ip, 80, "/healthz", timeout=2)
        except OSError:
            return None

    resp = wait_for(served, timeout=30, what=f"the ClusterIP {ip} to answer")
    assert resp.status == 200 and resp.body == "ok\n"
    name = pod["metadata"]["name"]
    assert '"GET /healthz HTTP/1.1" 200' in cluster.kubectl("-n", ns, "logs", name).stdout  # API -> kubelet
    assert cluster.kubectl("-n", ns, "exec", name, "--", "nginx", "-v").stderr.startswith("nginx version: nginx/")


def test_ten_replicas_start_in_bounded_time(cluster: Cluster, real_namespace: Callable[[str], str],
                                            images: kit.Images) -> None:
    ns = real_namespace("e2e-ten")
    took = ready_after_apply(cluster, ns, 10, images.nginx)
    print(f"10 replicas: apply -> Ready in {took:.1f}s")
    assert took < 60
