"""git and archive sources, with the operator on the real API server and a real git server.

The operator resolves a moving branch to its new commit and rolls out; an older SHA in
`ref` rolls back; a private repository works with its token and fails clearly without
it, and the token appears nowhere but the Secret. kwok runs no init containers, so a
failed fetch is reported the way a kubelet reports it (the pod's init container status);
the fetch scripts themselves are tested with real git, busybox and nginx in
tests/unit/test_fetch_scripts.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import Cluster, wait_for
from tests.integration import sites
from tests.unit.gitserver import GitServer, serve_git

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("kube_env", "crd")]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[GitServer]:
    with serve_git(tmp_path) as server:
        yield server


def loopback(server: GitServer) -> dict[str, str]:
    """A policy that lets the operator contact the test's git server (127.0.0.1 is refused by default)."""
    port = urlsplit(server.url).port
    return {"sources.allowedNetworks": f"127.0.0.1/32 {port}"}


def git_site(name: str, namespace: str, **git: Any) -> dict[str, Any]:
    return {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"content": {"git": {"path": "public", "interval": "10s", **git}}}}


def fetch_env(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    dep = sites.get(cluster, namespace, "deployment", name)
    assert dep is not None
    init = next(c for c in dep["spec"]["template"]["spec"]["initContainers"] if c["name"] == "fetch")
    return {e["name"]: e["value"] for e in init["env"]}


def wait_revision(cluster: Cluster, namespace: str, name: str, sha: str, timeout: float = 40) -> dict[str, Any]:
    def served() -> dict[str, Any] | None:
        obj = sites.get(cluster, namespace, "staticsite", name) or {}
        st = obj.get("status") or {}
        ready = sites.condition(obj, "Ready").get("status") == "True"
        return obj if st.get("revision") == sha and ready else None

    result: dict[str, Any] = wait_for(served, timeout=timeout, what=f"{name} Ready at revision {sha[:12]}")
    return result


def test_moving_branch_rolls_out_and_an_old_sha_rolls_back(cluster: Cluster, namespace: str,
                                                           repo: GitServer) -> None:
    first = repo.sha("refs/heads/main")
    assert first is not None
    with sites.running_operator(namespace, policy=loopback(repo)):
        sites.apply(cluster, git_site("docs", namespace, url=repo.url, ref="main"))
        obj = wait_revision(cluster, namespace, "docs", first)
        assert obj["status"]["contentHash"] == f"git:{first}"
        env = fetch_env(cluster, namespace, "docs")
        assert env["GIT_SHA"] == first
        assert env["GIT_URL"] == repo.url
        nginx_cm = sites.config_of(cluster, namespace, "docs")
        assert nginx_cm is not None and set(nginx_cm["data"]) == {"site.json", "fetch-git.sh"}, "no inline content"
        # The pod renders nginx.conf (siteconf.py) from site.json and the fetched files.
        assert json.loads(nginx_cm["data"]["site.json"])["root"] == "/srv/site/public"

        second = repo.commit({"public/index.html": "<h1>v2</h1>"}, "v2")
        wait_revision(cluster, namespace, "docs", second)  # within one interval (10 s)
        assert fetch_env(cluster, namespace, "docs")["GIT_SHA"] == second
        assert "NewRevision" in [e["reason"] for e in sites.events(cluster, namespace, "docs")]

        sites.apply(cluster, git_site("docs", namespace, url=repo.url, ref=first))  # rollback
        wait_revision(cluster, namespace, "docs", first)
        assert fetch_env(cluster, namespace, "docs")["GIT_SHA"] == first


def test_private_repository_needs_its_token(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    token = "s3cret-token-7f1c"
    with serve_git(tmp_path, token=token) as private, \
            sites.running_operator(namespace, policy=loopback(private)) as runner:
        sites.apply(cluster, git_site("priv", namespace, url=private.url))
        cond = sites.wait_condition(cluster, namespace, "priv", "Degraded", "True", "GitResolveFailed")
        assert "secretRef" in cond["message"]

        sites.apply(cluster, git_site("priv", namespace, url=private.url, secretRef={"name": "missing"}))
        cond = sites.wait_condition(cluster, namespace, "priv", "Degraded", "True", "SecretUnavailable")
        assert "missing" in cond["message"]

        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git-token", "namespace": namespace},
                  "data": {"token": base64.b64encode(token.encode()).decode()}}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(secret))
        sites.apply(cluster, git_site("priv", namespace, url=private.url, secretRef={"name": "git-token"}))
        head = private.sha("refs/heads/main")
        assert head is not None
        wait_revision(cluster, namespace, "priv", head)

        dep = sites.get(cluster, namespace, "deployment", "priv")
        assert dep is not None
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert volumes["git-token"]["secret"]["secretName"] == "git-token"
        assert fetch_env(cluster, namespace, "priv")["GIT_TOKEN_FILE"].endswith("/token")

        # The token is in the Secret and nowhere else: not in children, status, Events or logs.
        everything = cluster.kubectl("-n", namespace, "get", "staticsites,deployments,replicasets,pods,"
                                     "configmaps,services,events", "-o", "json").stdout
        assert token not in everything
        assert base64.b64encode(token.encode()).decode() not in everything
    assert token not in runner.output


def test_archive_source_and_a_failed_checksum(cluster: Cluster, namespace: str) -> None:
    digest = "a" * 64
    archive = {"url": "https://downloads.example.com/site.tar.gz", "sha256": digest, "stripComponents": 1}
    with sites.running_operator(namespace):
        sites.apply(cluster, sites.site("art", namespace))
        sites.wait_ready(cluster, namespace, "art")
        inline = sites.config_of(cluster, namespace, "art")
        assert inline is not None and "nginx.conf" in inline["data"]

        manifest = sites.site("art", namespace)
        manifest["spec"]["content"] = {"archive": archive}
        sites.apply(cluster, manifest)
        obj = sites.wait_ready(cluster, namespace, "art")
        assert obj["status"]["contentHash"] == f"sha256:{digest}"
        env = fetch_env(cluster, namespace, "art")
        assert env["ARCHIVE_SHA256"] == digest
        assert env["STRIP_COMPONENTS"] == "1"
        wait_for(lambda: sites.get(cluster, namespace, "configmap", inline["metadata"]["name"]) is None,
                 what="the inline content's revision to be pruned after switching source")

        # Report a failed fetch the way the kubelet would: exit 42 from the init container.
        pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/instance=art")["items"]
        assert pods
        pod = pods[0]["metadata"]["name"]
        failed = {"status": {"initContainerStatuses": [{
            "name": "fetch", "image": "alpine/git", "imageID": "", "ready": False, "restartCount": 1,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 42, "reason": "Error",
                                         "message": f"checksum mismatch: expected {digest}, got {'b' * 64}"}}}]}}
        cluster.kubectl("-n", namespace, "patch", "pod", pod, "--subresource=status", "--type=merge",
                        "-p", json.dumps(failed))
        cond = sites.wait_condition(cluster, namespace, "art", "Degraded", "True", "ChecksumMismatch")
        assert "checksum mismatch" in cond["message"]
        assert "previous pods keep serving" in cond["message"]
