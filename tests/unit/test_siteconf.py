"""A git or archive site's pod renders its own nginx.conf (siteconf.py) and checks it.

The `routes` and `check` init containers run as render() wrote them: their commands, and
site.json from the rendered ConfigMap, against fetched content in a directory; only the
pod's mount paths move. Then nginx serves what they produced, and the operator's reading of
the pod's status (core.status.fetch_failure) says what a user would see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from staticsite_operator.api import conditions as c
from staticsite_operator.api import models
from staticsite_operator.core import render, status

from .nginx_harness import nginx_binary, serve, workdir

pytestmark = pytest.mark.nginx

SHA = "0" * 40


def rendered_pod(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The pod template and the nginx ConfigMap's data that render() makes for `spec`."""
    parsed = models.StaticSiteSpec.model_validate(spec)
    out = render.render(render.Site("site", "ns", "uid", parsed, SHA if parsed.content.git else None))
    config = next(o for o in out.objects if o["kind"] == "ConfigMap")
    deployment = next(o for o in out.objects if o["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"], config["data"]


@pytest.fixture
def pod_dirs() -> Iterator[Path]:
    with workdir() as tmp:
        for d in ("site", "config", "routes", "tmp"):
            (tmp / d).mkdir(mode=0o755)
        yield tmp


def run_routes(pod: dict[str, Any], data: dict[str, str], tmp: Path) -> tuple[subprocess.CompletedProcess[str],
                                                                              str]:
    """The `routes` init container as rendered, with its mounts moved under `tmp`; returns
    the process and its termination message."""
    container = next(x for x in pod["initContainers"] if x["name"] == "routes")
    argv = container["command"]
    assert argv[:3] == ["python", "-m", "staticsite_operator.siteconf"]
    site = json.loads(data[render.SITE_JSON])
    assert site["root"].startswith(render.SITE_ROOT)
    site["root"] = str(tmp / "site") + site["root"].removeprefix(render.SITE_ROOT)
    (tmp / "config" / render.SITE_JSON).write_text(json.dumps(site))
    out = tmp / "routes" / Path(argv[4]).name
    message = tmp / "termination-log"
    proc = subprocess.run([sys.executable, "-m", "staticsite_operator.siteconf", str(tmp / "config" / render.SITE_JSON),
                           str(out), "--problems", str(message)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])}},
                          check=False)
    return proc, message.read_text() if message.exists() else ""


def run_check(pod: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    """The `check` init container: nginx -t on what `routes` wrote (paths moved to `tmp`)."""
    container = next(x for x in pod["initContainers"] if x["name"] == "check")
    argv = container["command"]
    assert argv[:3] == ["nginx", "-t", "-q"]
    conf = tmp / "routes" / Path(argv[-1]).name
    text = conf.read_text().replace(" /tmp/", f" {tmp}/tmp/")
    local = tmp / "routes" / "local.conf"
    local.write_text(text)
    return subprocess.run([nginx_binary(), "-t", "-q", "-e", "stderr", "-c", str(local)],
                          capture_output=True, text=True, timeout=30, check=False)


def pod_status(name: str, code: int, message: str) -> dict[str, Any]:
    """What the kubelet reports for a pod whose init container `name` ended like this."""
    return {"initContainerStatuses": [
        {"name": n, "state": {"terminated": {"exitCode": code if n == name else 0,
                                             "message": message if n == name else ""}}}
        for n in ("fetch", "routes", "check")]}


GIT = {"content": {"git": {"url": "https://git.example.com/site.git", "ref": "main", "path": "public"}},
       "routing": {"semantics": "cloudflare",
                   "redirects": [{"from": "/from-spec", "to": "/about", "status": 301}]}}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        (root / name).write_text(text)
        (root / name).chmod(0o644)


def test_the_pod_renders_the_fetched_files_and_nginx_serves_them(pod_dirs: Path) -> None:
    pod, data = rendered_pod(GIT)
    assert "nginx.conf" not in data, "the pod renders it; the ConfigMap has site.json"
    names = [x["name"] for x in pod["initContainers"]]
    assert names == ["fetch", "routes", "check"], "nginx -t runs after the render, before nginx"
    nginx = pod["containers"][0]
    assert nginx["command"][-1] == f"{render.ROUTES_DIR}/nginx.conf"
    write(pod_dirs / "site" / "public", {
        "index.html": "HOME", "about.html": "ABOUT", "404.html": "NOT FOUND",
        "_redirects": "/old/* /new/:splat 301\n/from-spec /elsewhere 302\n/docs/:page.html /guide/:page\n",
        "_headers": "/*\n  X-From-Headers: yes\n"})
    proc, message = run_routes(pod, data, pod_dirs)
    assert proc.returncode == 0, proc.stderr
    assert message == "", "no line was skipped"
    check = run_check(pod, pod_dirs)
    assert check.returncode == 0, check.stderr
    assert status.fetch_failure(pod_status("routes", 0, message)) is None
    conf = (pod_dirs / "routes" / "nginx.conf").read_text()
    spec = models.StaticSiteSpec.model_validate(GIT)
    with serve(spec, root=pod_dirs / "site" / "public", conf_text=conf) as server:
        assert server.get("/about.html").header("Location") == "/about"  # Cloudflare's semantics
        assert server.get("/old/a/b").header("Location") == "/new/a/b"
        assert server.get("/docs/intro.html").header("Location") == "/guide/intro"
        # The spec's rules come first: its /from-spec wins over the file's.
        assert server.get("/from-spec").header("Location") == "/about"
        assert server.get("/about").header("X-From-Headers") == "yes"
        assert server.get("/_redirects").status == 404


def test_lines_that_cannot_be_honoured_are_reported_and_the_rest_serves(pod_dirs: Path) -> None:
    pod, data = rendered_pod(GIT)
    write(pod_dirs / "site" / "public", {"index.html": "HOME",
                                         "_redirects": "/a /b 301\n/c /d 302 Country=us\n/e /f 418\n"})
    proc, message = run_routes(pod, data, pod_dirs)
    assert proc.returncode == 0, proc.stderr
    assert message.startswith("_redirects:2: expected exactly 2 or 3"), message
    assert "_redirects:3: valid status codes" in message
    assert run_check(pod, pod_dirs).returncode == 0
    failure = status.fetch_failure(pod_status("routes", 0, message))
    assert failure == {"reason": c.ROUTING_FILE_INVALID, "message": message}


def test_a_symlinked_rules_file_is_not_followed(pod_dirs: Path) -> None:
    pod, data = rendered_pod(GIT)
    write(pod_dirs / "site" / "public", {"index.html": "HOME"})
    secret = pod_dirs / "secret.txt"
    secret.write_text("/leak /secret-value-7f1c 301\n")
    os.symlink(secret, pod_dirs / "site" / "public" / "_redirects")
    proc, message = run_routes(pod, data, pod_dirs)
    assert proc.returncode == 0
    assert message.startswith("_redirects:0: not read"), message
    assert "secret-value" not in (pod_dirs / "routes" / "nginx.conf").read_text()


def test_a_render_that_fails_stops_the_pod(pod_dirs: Path) -> None:
    pod, data = rendered_pod(GIT)
    data = {**data, render.SITE_JSON: json.dumps({"spec": {"content": {}}, "root": render.SITE_ROOT})}
    proc, message = run_routes(pod, data, pod_dirs)
    assert proc.returncode == 45
    assert not (pod_dirs / "routes" / "nginx.conf").exists()
    failure = status.fetch_failure(pod_status("routes", 45, message))
    assert failure is not None and failure["reason"] == c.ROUTING_FAILED
    assert "cannot render nginx.conf" in failure["message"]


def test_a_configuration_nginx_refuses_stops_the_pod(pod_dirs: Path) -> None:
    pod, data = rendered_pod(GIT)
    write(pod_dirs / "site" / "public", {"index.html": "HOME"})
    assert run_routes(pod, data, pod_dirs)[0].returncode == 0
    conf = pod_dirs / "routes" / "nginx.conf"
    conf.write_text(conf.read_text().replace("server {", "server { bogus_directive on;", 1))
    check = run_check(pod, pod_dirs)
    assert check.returncode != 0
    failure = status.fetch_failure(pod_status("check", check.returncode, check.stderr))
    assert failure is not None and failure["reason"] == c.ROUTING_FAILED
    assert "bogus_directive" in failure["message"]


def test_inline_sites_render_in_the_operator() -> None:
    pod, data = rendered_pod({"content": {"inline": {"files": [{"path": "index.html", "content": "x"}]}}})
    assert "initContainers" not in pod
    assert "nginx.conf" in data and render.SITE_JSON not in data
