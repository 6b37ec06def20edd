"""The local control plane is a real Kubernetes: the behaviours the operator relies on.

CRUD through the API server; a Deployment reaching readyReplicas == replicas (so the
controller-manager, scheduler and kwok all ran); owner-reference garbage collection;
and server-side apply conflicts between two field managers.

These run on kwok's fake nodes (the test namespaces do not opt in to the real node), so
no container starts and Ready is kwok's word: the Deployment's `image: nginx` as UID 101
would fail in a real container (`mkdir() "/var/lib/nginx/body" failed (13: Permission
denied)`). tests/e2e/test_real_node.py is its real-node twin, with the local nginx image.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import Cluster, wait_for

pytestmark = pytest.mark.cluster


def test_version_is_the_pinned_release(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"].startswith("v1.")
    assert version["gitVersion"] != "v0.0.0-master", "version ldflags were not applied"


def test_configmap_crud(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "configmap", "smoke", "--from-literal=a=1")
    assert cluster.kubectl_json("-n", namespace, "get", "configmap", "smoke")["data"] == {"a": "1"}
    cluster.kubectl("-n", namespace, "patch", "configmap", "smoke", "--type=merge", "-p", '{"data":{"a":"2"}}')
    assert cluster.kubectl_json("-n", namespace, "get", "configmap", "smoke")["data"] == {"a": "2"}
    cluster.kubectl("-n", namespace, "delete", "configmap", "smoke")
    gone = cluster.kubectl("-n", namespace, "get", "configmap", "smoke", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: smoke}
spec:
  replicas: 3
  selector: {matchLabels: {app: smoke}}
  template:
    metadata: {labels: {app: smoke}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 101, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: web
          image: nginx
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
"""


def test_deployment_becomes_ready(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=DEPLOYMENT)

    def ready() -> bool:
        st = cluster.kubectl_json("-n", namespace, "get", "deployment", "smoke").get("status", {})
        return st.get("readyReplicas") == 3 and st.get("availableReplicas") == 3

    wait_for(ready, timeout=60, what="3 ready replicas (scheduler, controller-manager and kwok)")
    pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", "app=smoke")["items"]
    assert len(pods) == 3
    assert all(p["status"]["phase"] == "Running" and p["spec"].get("nodeName") for p in pods)
    # kwok's Ready, not a container's: the pods must be on fake nodes, never the real one.
    fake = {n["metadata"]["name"] for n in cluster.kubectl_json("get", "nodes", "-l", "type=kwok")["items"]}
    assert {p["spec"]["nodeName"] for p in pods} <= fake


def test_restricted_pod_security_is_enforced(cluster: Cluster, namespace: str) -> None:
    """The namespaces tests use really reject privileged pods (so passing means compliant)."""
    bad = cluster.kubectl("-n", namespace, "run", "root", "--image=nginx", "--restart=Never", check=False)
    assert bad.returncode != 0
    assert "violates PodSecurity" in bad.stderr


def test_owner_deletion_garbage_collects(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "configmap", "owner")
    owner_uid = cluster.kubectl_json("-n", namespace, "get", "configmap", "owner")["metadata"]["uid"]
    owned = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "owned", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}]},
    }
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(owned))
    cluster.kubectl("-n", namespace, "delete", "configmap", "owner")

    def collected() -> bool:
        return cluster.kubectl("-n", namespace, "get", "configmap", "owned", check=False).returncode != 0

    wait_for(collected, timeout=60, what="the garbage collector to delete the owned ConfigMap")


def test_server_side_apply_conflict_between_managers(cluster: Cluster, namespace: str) -> None:
    def apply(manager: str, value: str, force: bool = False) -> subprocess.CompletedProcess[str]:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"key": value}}
        args = ["-n", namespace, "apply", "--server-side", f"--field-manager={manager}", "-f", "-"]
        return cluster.kubectl(*args, *(["--force-conflicts"] if force else []), input=json.dumps(cm), check=False)

    assert apply("alice", "a").returncode == 0
    conflict = apply("bob", "b")
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower() and "alice" in conflict.stderr
    assert apply("bob", "b", force=True).returncode == 0
    cm = cluster.kubectl_json("-n", namespace, "get", "configmap", "shared", "--show-managed-fields")
    assert cm["data"]["key"] == "b"
    managers = {m["manager"] for m in cm["metadata"]["managedFields"]}
    assert "bob" in managers
