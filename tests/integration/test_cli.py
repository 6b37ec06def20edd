"""The `staticsite` CLI against a real API server and the operator: deploy a folder and
re-deploy it (the new content is what the site's ConfigMap holds), `kubectl staticsite` as a
plugin, branch previews, status, a skipped `_redirects` line, and the errors that stop a
deploy before anything is written (an oversized folder, a bad rule, a missing namespace).

The CLI runs as its installed executables, in a subprocess, as a user runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cluster
from tests.integration import sites

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("kube_env", "crd")]

BIN = Path(sys.executable).parent  # the venv's bin: staticsite and kubectl-staticsite


def run(cluster: Cluster, *args: str, kubectl: bool = False) -> subprocess.CompletedProcess[str]:
    env = cluster.env()
    env["PATH"] = f"{BIN}:{env['PATH']}"  # kubectl finds its plugins on PATH
    command = ["kubectl", "staticsite", *args] if kubectl else [str(BIN / "staticsite"), *args]
    return subprocess.run(command, env=env, text=True, capture_output=True, timeout=180, check=False)


def folder(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def stored(cluster: Cluster, namespace: str, name: str) -> set[str]:
    """The text values of the site's current ConfigMap (its files and nginx.conf)."""
    config = sites.config_of(cluster, namespace, name) or {}
    return set((config.get("data") or {}).values())


def test_deploy_then_redeploy_serves_the_new_content(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    dist = folder(tmp_path / "dist", {"index.html": "<h1>v1</h1>", "assets/app.js": "console.log(1)",
                                      ".git/HEAD": "ref: main"})
    with sites.running_operator(namespace):
        first = run(cluster, "deploy", str(dist), "--name", "web", "-n", namespace, "--timeout", "90")
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == f"http://web.{namespace}.svc"
        assert "packed 2 files" in first.stderr and "left out 1 hidden path(s): .git/" in first.stderr
        assert "(generation 1)" in first.stderr and "Ready (Available)" in first.stderr
        assert "<h1>v1</h1>" in stored(cluster, namespace, "web")
        obj = cluster.kubectl_json("-n", namespace, "get", "staticsite", "web", "--show-managed-fields")
        assert {m["manager"] for m in obj["metadata"]["managedFields"]} >= {"staticsite-cli"}

        (dist / "index.html").write_text("<h1>v2</h1>")
        second = run(cluster, "deploy", str(dist), "--name", "web", "-n", namespace, "--timeout", "90")
        assert second.returncode == 0, second.stderr
        assert "(generation 2)" in second.stderr and "Ready (Available)" in second.stderr
        values = stored(cluster, namespace, "web")
        assert "<h1>v2</h1>" in values and "<h1>v1</h1>" not in values

        status = run(cluster, "status", "web", "-n", namespace)
        assert status.returncode == 0, status.stderr
        assert f"URL:        http://web.{namespace}.svc" in status.stdout
        assert "Ready        True   Available" in status.stdout and "generation: 2" in status.stdout
        listing = run(cluster, "status", "-n", namespace)
        assert listing.stdout.splitlines()[1].split()[:3] == ["web", "True", "Available"]


def test_kubectl_plugin_deploys_a_branch_preview_and_deletes_it(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    dist = folder(tmp_path / "blog" / "public", {"index.html": "<h1>preview</h1>"})
    with sites.running_operator(namespace):
        out = run(cluster, "deploy", str(dist), "--branch", "feature/New_Login", "-n", namespace,
                  "--domain", "blog.example.com", "--timeout", "90", kubectl=True)
        assert out.returncode == 0, out.stderr
        # The name comes from the folder above `public`; the preview's name and host from the branch.
        assert "site name: blog" in out.stderr
        assert out.stdout.strip() == "http://feature-new-login.blog.example.com"
        obj = sites.get(cluster, namespace, "staticsite", "blog-feature-new-login") or {}
        assert obj["spec"]["domains"] == ["feature-new-login.blog.example.com"]
        listed = run(cluster, "previews", "blog", "-n", namespace, kubectl=True)
        assert listed.stdout.split()[:2] == ["blog-feature-new-login", "branch=feature-new-login"]
        deleted = run(cluster, "delete", "blog", "--branch", "feature/New_Login", "-n", namespace)
        assert deleted.returncode == 0, deleted.stderr
        assert sites.get(cluster, namespace, "staticsite", "blog-feature-new-login") is None
        again = run(cluster, "delete", "blog", "--branch", "feature/New_Login", "-n", namespace)
        assert again.returncode == 1 and "no StaticSite 'blog-feature-new-login'" in again.stderr


def test_a_skipped_redirects_line_is_a_warning_and_the_site_serves(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    dist = folder(tmp_path / "dist", {"index.html": "x", "_redirects": "/a /b 302\n/c /d 302 Country=us\n"})
    with sites.running_operator(namespace):
        out = run(cluster, "deploy", str(dist), "--name", "web", "-n", namespace, "--timeout", "90")
        assert out.returncode == 0, out.stderr
        # Said before applying (the CLI parses the file as the operator does), then by the operator.
        assert "warning: _redirects:2: Country= conditions need a GeoIP lookup" in out.stderr
        assert "warning: RoutingFileInvalid:" in out.stderr and "_redirects:2: Country=" in out.stderr


def test_what_stops_a_deploy_before_anything_is_written(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    big = folder(tmp_path / "big", {"index.html": "x", "movie.bin": os.urandom(900_000)})
    out = run(cluster, "deploy", str(big), "--name", "big", "-n", namespace)
    assert out.returncode == 1 and "too large for inline content" in out.stderr and "staticsite pack" in out.stderr
    assert sites.get(cluster, namespace, "staticsite", "big") is None

    routing = tmp_path / "routing.yaml"
    routing.write_text("routing:\n  redirects:\n  - {from: /a/*/b, to: /c}\n")
    small = folder(tmp_path / "small", {"index.html": "x"})
    out = run(cluster, "deploy", str(small), "--name", "bad", "-n", namespace, "--routing", str(routing))
    assert out.returncode == 1 and "redirects[0].from: '*' is only allowed at the end" in out.stderr, out.stderr
    assert sites.get(cluster, namespace, "staticsite", "bad") is None

    out = run(cluster, "deploy", str(small), "--name", "web", "-n", f"{namespace}-missing")
    assert out.returncode == 1 and f"kubectl create namespace {namespace}-missing" in out.stderr, out.stderr


def test_a_cluster_without_the_crd_is_told_how_to_install_it(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real API server's answer for a resource type it does not serve (the CRD stays
    # installed for the other tests: the CLI asks for a group nobody registered).
    from staticsite_operator.cli import cluster as kube
    from staticsite_operator.cli import site

    monkeypatch.setattr(kube.models, "GROUP", "not-installed.staticsite.dev")
    conn = kube.connect(cluster.kubeconfig)
    obj = site.manifest("web", "default", {"inline": {"files": [{"path": "index.html", "content": "x"}]}})
    with pytest.raises(kube.CliError, match=r"StaticSite CRD .* is not installed in the cluster at https://127\.0\.0\.1"):
        conn.apply(obj)


def test_a_degraded_site_fails_the_deploy_with_its_reason(cluster: Cluster, namespace: str) -> None:
    # An archive on a host the platform's policy refuses: the operator says SourceNotAllowed.
    url = "https://archive.example.invalid/site.tar.gz"
    with sites.running_operator(namespace, policy={"sources.hosts": "git.example.com"}):
        out = run(cluster, "deploy", "--name", "art", "-n", namespace, "--archive-url", url, "--sha256", "a" * 64,
                  "--timeout", "60")
    assert out.returncode == 1, out.stderr
    assert "error: StaticSite art is Degraded: SourceNotAllowed:" in out.stderr
    assert "staticsite status art" in out.stderr
    obj = sites.get(cluster, namespace, "staticsite", "art") or {}
    assert obj["spec"]["content"] == {"archive": {"url": url, "sha256": "a" * 64}}
