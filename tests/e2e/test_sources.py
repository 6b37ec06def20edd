"""Git and archive content, fetched by the sites' init containers in real pods.

A fixture server (hack/images/fixture/server.py) runs as a pod on the real node: git
over smart HTTP, and plain files. The tests push commits to it from the host through a
port-forward; the site pods' init container (the local fetcher image) fetches from its
ClusterIP, and the operator, in its own pod, resolves branch refs from it too.

- a site pinned to a full commit SHA (the operator does no lookup) is fetched and served;
- a new commit on the branch a site follows rolls out; a rollback by `ref` to an older
  SHA serves the old commit again;
- an archive whose sha256 does not match never serves: the site is Degraded
  (ChecksumMismatch) while the old pods keep serving the old archive;
- the examples in examples/remote, pointed at the fixture server (their URL, ref,
  checksum), are served with their own routing, secretRef included;
- the fetch init container, run as the operator renders it, meets the restricted Pod
  Security Standard (read from inside the container, by running the rendered pod
  template with a probe in place of the fetch script).

The operator's egress guard refuses private and shared addresses (100.64.0.0/10
included) unless the platform allows the network: the chart's
`policy.sources.allowedNetworks` allows the Service range, port 80, for these tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, Cluster, wait_for
from tests.e2e import kit
from tests.integration import sites

SERVICE_CIDR = "100.64.0.0/16"  # hack/lib.sh
GIT_TIMEOUT = 60


def fixture_server(namespace: str, image: str) -> list[dict[str, Any]]:
    labels = {"app": "fixture"}
    restricted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                  "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    pod = {"securityContext": {"runAsNonRoot": True, "runAsUser": 101, "runAsGroup": 101, "fsGroup": 101,
                               "seccompProfile": {"type": "RuntimeDefault"}},
           "automountServiceAccountToken": False, "enableServiceLinks": False,
           "containers": [{"name": "server", "image": image, "ports": [{"containerPort": 8080}],
                           "env": [{"name": "FIXTURE_REPOS", "value": "site,handbook"}],
                           "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
                           "securityContext": restricted,
                           "volumeMounts": [{"name": v, "mountPath": f"/{v}"} for v in ("srv", "tmp")]}],
           "volumes": [{"name": v, "emptyDir": {}} for v in ("srv", "tmp")]}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fixture", "namespace": namespace},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": pod}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fixture", "namespace": namespace},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
    ]


@dataclass
class Fixture:
    cluster: Cluster
    namespace: str
    ip: str           # the fixture server's ClusterIP, as pods reach it
    work: Path        # local clones, one per repository

    def url(self, path: str) -> str:
        return f"http://{self.ip}/{path}"

    def git(self, repo: str, *args: str) -> str:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.work), "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.com",
               "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@example.com", "GIT_TERMINAL_PROMPT": "0"}
        proc = subprocess.run(["git", *args], cwd=self.work / repo, env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, check=False)
        if proc.returncode != 0:
            pytest.fail(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def commit(self, repo: str, files: dict[str, str], branch: str = "main") -> str:
        """Commit `files` on `branch` of `repo` and push it to the server; the new SHA."""
        clone = self.work / repo
        if not clone.exists():
            clone.mkdir(parents=True)
            self.git(repo, "init", "-q", "-b", branch)
        for path, text in files.items():
            (clone / path).parent.mkdir(parents=True, exist_ok=True)
            (clone / path).write_text(text)
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "-m", f"update {sorted(files)}")
        with kit.port_forward(self.cluster, self.namespace, "service/fixture", 80) as port:
            self.git(repo, "push", "-q", f"http://127.0.0.1:{port}/git/{repo}.git", f"HEAD:refs/heads/{branch}")
        return self.git(repo, "rev-parse", "HEAD")

    def upload(self, name: str, data: bytes) -> str:
        """Store a file on the server; its URL as pods see it."""
        with kit.port_forward(self.cluster, self.namespace, "service/fixture", 80) as port:
            resp = kit.request("127.0.0.1", port, f"/files/{name}", method="PUT", body=data)
        assert resp.status == 201, resp
        return self.url(f"files/{name}")


def tarball(files: dict[str, str], top: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{path}" if top else path)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def fixture(cluster: Cluster, operator: kit.OperatorRelease, images: kit.Images,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    operator.ensure(extra=(
        "--set", "gitCredentials.enabled=true",  # examples/remote/git-docs.yaml names a token Secret
        # The operator looks refs up on the fixture server's ClusterIP: a shared address.
        "--set", f"policy.sources.allowedNetworks[0].cidr={SERVICE_CIDR}",
        "--set", "policy.sources.allowedNetworks[0].ports={80}"))
    with kit.namespace(cluster, "e2e-sources") as ns:
        for obj in fixture_server(ns, images.fixture):
            cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
        cluster.kubectl("-n", ns, "rollout", "status", "deployment/fixture", "--timeout=90s")
        yield Fixture(cluster, ns, kit.cluster_ip(cluster, ns, "fixture"), tmp_path_factory.mktemp("git"))


def git_site(name: str, fx: Fixture, ref: str, repo: str = "site", **git: Any) -> dict[str, Any]:
    return {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
            "metadata": {"name": name, "namespace": fx.namespace},
            "spec": {"content": {"git": {"url": fx.url(f"git/{repo}.git"), "ref": ref, "path": "public", **git}}}}


def serves(fx: Fixture, site: str, path: str = "/") -> str:
    """The body one request through the site's ClusterIP gets (a new connection each time)."""
    ip = kit.cluster_ip(fx.cluster, fx.namespace, site)
    try:
        return kit.request(ip, 80, path, timeout=2).body
    except OSError as exc:
        return f"error: {exc}"


def wait_serving(fx: Fixture, site: str, text: str, timeout: float = 90) -> None:
    """Until the site serves `text` and nothing else (every ready pod has rolled)."""
    def rolled() -> bool:
        return all(text in serves(fx, site) for _ in range(6))
    wait_for(rolled, timeout=timeout, interval=1, what=f"{site} to serve {text!r} only")


def test_site_pinned_to_a_commit_is_fetched_by_its_init_container(fixture: Fixture, images: kit.Images) -> None:
    fx = fixture
    sha = fx.commit("site", {"public/index.html": "<h1>pinned one</h1>\n", "README.md": "source\n"})
    sites.apply(fx.cluster, git_site("pinned", fx, ref=sha))
    kit.wait_site_ready(fx.cluster, fx.namespace, "pinned", timeout=120)
    wait_serving(fx, "pinned", "<h1>pinned one</h1>")
    assert "source" not in serves(fx, "pinned", "/README.md")  # only public/ is served
    [pod] = kit.ready_pods(fx.cluster, fx.namespace, kit.site_selector("pinned"))
    inits = {c["name"]: c for c in pod["spec"]["initContainers"]}
    assert inits["fetch"]["image"] == images.fetcher
    # The fetched site's _redirects/_headers are read by the operator's own code, in its image.
    assert inits["routes"]["image"] == images.operator
    states = {s["name"]: s["state"] for s in pod["status"]["initContainerStatuses"]}
    assert set(states) == set(inits)
    assert all(state["terminated"]["exitCode"] == 0 for state in states.values()), states
    log = fx.cluster.kubectl("-n", fx.namespace, "logs", pod["metadata"]["name"], "-c", "fetch").stdout
    assert f"fetched {sha}" in log, log


def test_new_commit_rolls_out_and_a_rollback_by_ref_serves_the_old_one(fixture: Fixture) -> None:
    fx = fixture
    first = fx.commit("site", {"public/index.html": "<h1>branch one</h1>\n"})
    sites.apply(fx.cluster, git_site("follow", fx, ref="main", interval="10s"))
    kit.wait_site_ready(fx.cluster, fx.namespace, "follow", timeout=120)
    wait_serving(fx, "follow", "<h1>branch one</h1>")

    second = fx.commit("site", {"public/index.html": "<h1>branch two</h1>\n"})
    wait_serving(fx, "follow", "<h1>branch two</h1>", timeout=120)  # resolved within `interval`, then rolled
    status = sites.get(fx.cluster, fx.namespace, "staticsite", "follow")
    assert second in json.dumps(status.get("status") if status else {}), status

    sites.apply(fx.cluster, git_site("follow", fx, ref=first, interval="10s"))
    kit.wait_site_ready(fx.cluster, fx.namespace, "follow", timeout=120)
    wait_serving(fx, "follow", "<h1>branch one</h1>")


def test_archive_with_a_wrong_checksum_never_serves(fixture: Fixture) -> None:
    fx = fixture
    good = tarball({"index.html": "<h1>archive one</h1>\n"})
    url = fx.upload("good.tar.gz", good)
    spec = {"url": url, "sha256": hashlib.sha256(good).hexdigest()}
    site = {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
            "metadata": {"name": "archived", "namespace": fx.namespace},
            "spec": {"replicas": 2, "content": {"archive": spec}}}
    sites.apply(fx.cluster, site)
    kit.wait_site_ready(fx.cluster, fx.namespace, "archived", timeout=120)
    wait_serving(fx, "archived", "<h1>archive one</h1>")
    old_pods = {p["metadata"]["name"] for p in kit.ready_pods(fx.cluster, fx.namespace, kit.site_selector("archived"))}

    bad = tarball({"index.html": "<h1>tampered</h1>\n"})
    site["spec"]["content"]["archive"] = {"url": fx.upload("bad.tar.gz", bad), "sha256": "0" * 64}
    sites.apply(fx.cluster, site)
    sites.wait_condition(fx.cluster, fx.namespace, "archived", "Degraded", "True", "ChecksumMismatch", timeout=120)
    # Bounded: 20 s of requests through the Service, each one answered by an old pod.
    seen = {serves(fx, "archived") for _ in kit.bounded_loop(20, 200) if time.sleep(0.1) is None}
    assert seen == {"<h1>archive one</h1>\n"}, seen
    ready = {p["metadata"]["name"] for p in kit.ready_pods(fx.cluster, fx.namespace, kit.site_selector("archived"))}
    assert ready == old_pods, f"ready pods changed from {old_pods} to {ready}"


def remote_example(name: str, namespace: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "remote" / f"{name}.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    return doc


def test_remote_examples_are_served_from_the_fixture_server(fixture: Fixture) -> None:
    fx = fixture
    handbook = remote_example("git-docs", fx.namespace)
    fx.commit("handbook", {"public/index.html": "<h1>Handbook</h1>\n", "public/onboarding.html": "<h1>Day one</h1>\n",
                           "public/404.html": "<h1>No such page</h1>\n"})
    handbook["spec"]["content"]["git"]["url"] = fx.url("git/handbook.git")
    token = handbook["spec"]["content"]["git"]["secretRef"]["name"]
    fx.cluster.kubectl("-n", fx.namespace, "create", "secret", "generic", token, "--from-literal=token=e2e-token")
    notes = remote_example("archive", fx.namespace)
    archive = tarball({"index.html": "<h1>Release notes</h1>\n"}, top="build-1842")
    notes["spec"]["content"]["archive"].update(url=fx.upload("build-1842.tar.gz", archive),
                                               sha256=hashlib.sha256(archive).hexdigest())
    for doc in (handbook, notes):
        sites.apply(fx.cluster, doc)
    for doc in (handbook, notes):
        kit.wait_site_ready(fx.cluster, fx.namespace, doc["metadata"]["name"], timeout=120)
    assert len(kit.ready_pods(fx.cluster, fx.namespace, kit.site_selector("handbook"))) == 2
    with kit.port_forward(fx.cluster, fx.namespace, "service/handbook", 80) as port:
        page = kit.request("127.0.0.1", port, "/onboarding")             # cleanUrls
        missing = kit.request("127.0.0.1", port, "/no-such-page")        # notFoundPage
    assert page.status == 200 and "Day one" in page.body
    assert missing.status == 404 and "No such page" in missing.body
    with kit.port_forward(fx.cluster, fx.namespace, "service/release-notes", 80) as port:
        route = kit.request("127.0.0.1", port, "/v2/changes")             # spa, stripComponents: 1
    assert route.status == 200 and "Release notes" in route.body


def test_init_containers_meet_restricted_pss(fixture: Fixture) -> None:
    """Init containers exit once done; each rendered spec is run again with a probe instead."""
    fx = fixture
    sha = fx.commit("site", {"public/index.html": "<h1>probe</h1>\n"})
    sites.apply(fx.cluster, git_site("probed", fx, ref=sha))
    kit.wait_site_ready(fx.cluster, fx.namespace, "probed", timeout=120)
    template = fx.cluster.kubectl_json("-n", fx.namespace, "get", "deployment", "probed")["spec"]["template"]
    inits = template["spec"].pop("initContainers")
    assert {c["name"] for c in inits} >= {"fetch", "routes"}
    for init in inits:
        name = f"probe-{init['name']}"
        spec = {**template["spec"], "containers": [{**init, "command": ["sh", "-c", kit.PROBE_SCRIPT]}],
                "restartPolicy": "Never"}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": fx.namespace},
               "spec": spec}
        fx.cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))

        def finished(name: str = name) -> bool:
            phase = fx.cluster.kubectl_json("-n", fx.namespace, "get", "pod", name)["status"].get("phase")
            return phase in ("Succeeded", "Failed")

        wait_for(finished, timeout=60, what=f"the {name} pod to finish")
        probe = kit.parse_probe(fx.cluster.kubectl("-n", fx.namespace, "logs", name).stdout)
        kit.assert_restricted(probe, f"the {init['name']} init container")
        assert probe["uid"] == "101", probe
