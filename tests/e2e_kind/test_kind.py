"""End to end on a real kind cluster, as a user would do it (`make e2e-kind`; needs Docker).

The image built by `make image` is loaded into kind; the chart is installed with it;
`helm test` runs its /healthz check for real (kwok cannot run it); a StaticSite is
applied and becomes Ready; its Service is port-forwarded and its content is fetched
over HTTP, including the custom 404 page. The nginx image is pulled by the kind node,
so the node needs network access to docker.io.

This is the only test that runs the operator from its container image and serves a
page through nginx in a pod. It cannot run on the development host used so far (no
Docker engine); tests/e2e_kind/conftest.py makes it fail, not skip, on such a host.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, Cluster, wait_for
from tests.e2e_kind.conftest import IMAGE

CHART = ROOT / "charts" / "staticsite-operator"
RELEASE = "staticsite-operator"
OPERATOR_NS = "staticsite-system"
SITES_NS = "e2e-sites"


def helm(k8s: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["helm", *args], check=False, text=True, capture_output=True, env=k8s.env(), timeout=600)
    if result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@contextmanager
def port_forward(k8s: Cluster, namespace: str, target: str, remote_port: int) -> Iterator[int]:
    """kubectl port-forward to a random local port; yields that port."""
    proc = subprocess.Popen(["kubectl", "-n", namespace, "port-forward", target, f":{remote_port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=k8s.env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:41234 -> 8080"
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            proc.kill()
            pytest.fail(f"kubectl port-forward did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        yield int(match.group(1))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_chart_installs_and_serves_a_site(kind_cluster: Any, tools_bin: str) -> None:
    kind_cluster.load_docker_image(IMAGE)
    k8s = Cluster(str(kind_cluster.kubeconfig_path), tools_bin, None)
    repository, _, tag = IMAGE.rpartition(":")

    helm(k8s, "install", RELEASE, str(CHART), "-n", OPERATOR_NS, "--create-namespace",
         "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
         "--set", "image.pullPolicy=Never", "--wait", "--timeout", "3m")
    try:
        # The hook pod GETs /healthz through the Service: the operator really started.
        helm(k8s, "test", RELEASE, "-n", OPERATOR_NS, "--timeout", "2m")

        k8s.kubectl("create", "namespace", SITES_NS)
        k8s.kubectl("label", "namespace", SITES_NS, "pod-security.kubernetes.io/enforce=restricted")
        hello = yaml.safe_load((ROOT / "examples" / "hello.yaml").read_text())
        hello["metadata"]["namespace"] = SITES_NS
        k8s.kubectl("apply", "-f", "-", input=json.dumps(hello))

        def ready() -> bool:
            status = k8s.kubectl_json("-n", SITES_NS, "get", "staticsite", "hello").get("status") or {}
            return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))

        # Pulling nginx on a fresh node takes a while.
        wait_for(ready, timeout=240, interval=2, what="the hello site to be Ready (nginx pulled and running)")

        with port_forward(k8s, SITES_NS, "service/hello", 80) as port:
            status, body = get(f"http://127.0.0.1:{port}/")
            assert status == 200
            assert "Hello from staticsite-operator" in body
            status, body = get(f"http://127.0.0.1:{port}/no-such-page")
            assert status == 404
            assert "Nothing here" in body  # the site's own 404.html
    finally:
        subprocess.run(["helm", "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait"], check=False,
                       env=k8s.env(), capture_output=True, timeout=300)
        k8s.kubectl("delete", "namespace", SITES_NS, "--wait=false", check=False)
