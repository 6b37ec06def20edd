"""The `staticsite` CLI without a cluster: packing a folder (what is left out, text and
binary, the size the operator measures, the errors that say what to do), netlify.toml to
spec.routing, branch preview names, progress while waiting, API errors, and `preview`
serving a folder exactly as the pod's rendered configuration does (real nginx).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from staticsite_operator.api import models
from staticsite_operator.cli import cluster, main, netlify, pack, site
from staticsite_operator.core import render
from tests.unit import nginx_harness


def build(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


# --- pack -------------------------------------------------------------------------------

def test_pack_keeps_well_known_and_leaves_out_hidden_files_and_node_modules(tmp_path: Path) -> None:
    folder = build(tmp_path / "dist", {"index.html": "<h1>hi</h1>", ".well-known/security.txt": "Contact: x",
                                       ".DS_Store": "junk", ".git/HEAD": "ref", "node_modules/a.js": "x",
                                       "assets/.cache/x": "y", "_redirects": "/a /b 302\n"})
    packed = pack.pack(folder)
    assert sorted(f.path for f in packed.files) == [".well-known/security.txt", "_redirects", "index.html"]
    assert sorted(packed.skipped) == [".DS_Store", ".git/", "assets/.cache/", "node_modules/"]


def test_pack_reports_progress_on_large_folders(tmp_path: Path) -> None:
    folder = build(tmp_path, {f"p/{i}.html": "x" for i in range(pack.PROGRESS_EVERY * 2 + 1)})
    seen: list[tuple[int, int]] = []
    pack.pack(folder, progress=lambda n, size: seen.append((n, size)))
    assert seen == [(pack.PROGRESS_EVERY, pack.PROGRESS_EVERY), (2 * pack.PROGRESS_EVERY, 2 * pack.PROGRESS_EVERY)]


def test_pack_stores_text_as_text_and_binary_as_base64(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00"
    folder = build(tmp_path, {"index.html": "héllo", "logo.png": png, "nul.txt": "a\x00b"})
    files = {f.path: f for f in pack.pack(folder).files}
    assert files["index.html"].content == "héllo" and files["index.html"].binary_content is None
    assert files["logo.png"].binary_content == base64.b64encode(png).decode()
    assert files["nul.txt"].binary_content is not None  # NUL bytes: not text, whatever UTF-8 says


def test_pack_measures_what_the_operator_stores(tmp_path: Path) -> None:
    folder = build(tmp_path, {"index.html": "<h1>x</h1>" * 50, "img/a.png": bytes(range(256)) * 8,
                              "_redirects": "/old /new 301\n"})
    packed = pack.pack(folder)
    spec = models.StaticSiteSpec.model_validate({"content": packed.content()})
    rendered = render.render(render.Site("web", "ns", "uid-1", spec))
    (config,) = [o for o in rendered.objects if o["kind"] == "ConfigMap" and "nginx.conf" in o.get("data", {})]
    stored = sum(len(k) + len(v) for part in ("data", "binaryData") for k, v in (config.get(part) or {}).items())
    assert packed.size == stored


def test_a_folder_too_large_for_inline_content_says_what_to_use(tmp_path: Path) -> None:
    folder = build(tmp_path / "public", {"index.html": "x", "video.bin": os.urandom(800_000)})
    with pytest.raises(pack.PackError) as exc:
        pack.pack(folder)
    message = str(exc.value)
    assert "over the 1,000,000-byte limit" in message and "video.bin" in message
    assert "staticsite pack" in message and "--archive-url" in message


def test_a_symlink_leaving_the_folder_is_refused_and_one_inside_is_packed(tmp_path: Path) -> None:
    folder = build(tmp_path / "dist", {"index.html": "hi"})
    (folder / "same.html").symlink_to(folder / "index.html")
    packed = pack.pack(folder)
    assert {f.path: f.content for f in packed.files}["same.html"] == "hi"
    (tmp_path / "secret").write_text("s")
    (folder / "leak.txt").symlink_to(tmp_path / "secret")
    with pytest.raises(pack.PackError, match=r"leak.txt: a symbolic link to .* outside the folder"):
        pack.pack(folder)


def test_a_file_name_nginx_cannot_serve_is_named(tmp_path: Path) -> None:
    folder = build(tmp_path, {"index.html": "hi", "bad\x01name.html": "x"})
    with pytest.raises(pack.PackError, match=r"bad\x01name.html: this file name cannot be served"):
        pack.pack(folder)
    with pytest.raises(pack.PackError, match="health probe"):
        pack.pack(build(tmp_path / "h", {"healthz": "x"}))


def test_pack_archive_is_reproducible_and_holds_the_packed_files(tmp_path: Path) -> None:
    folder = build(tmp_path / "dist", {"index.html": "hi", "a/b.css": "body{}", ".env": "SECRET"})
    first = pack.archive(pack.pack(folder), tmp_path / "1.tgz")
    os.utime(folder / "index.html", (1, 1))
    assert pack.archive(pack.pack(folder), tmp_path / "2.tgz") == first
    with tarfile.open(tmp_path / "1.tgz") as tar:
        assert sorted(tar.getnames()) == ["a/b.css", "index.html"]


def test_a_not_found_page_missing_from_the_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build(tmp_path / "dist", {"index.html": "hi"})
    (tmp_path / "routing.yaml").write_text("routing:\n  notFoundPage: /404.html\n")
    args = ["preview", str(tmp_path / "dist"), "--check", "--routing", str(tmp_path / "routing.yaml")]
    assert main.main(args) == 1
    assert "routing.notFoundPage: '404.html' is not a file in content.inline" in capsys.readouterr().err


# --- import-netlify ---------------------------------------------------------------------

NETLIFY_TOML = '''
[build]
publish = "dist"

[[redirects]]
from = "/blog/:slug"
to = "/posts/:slug"
status = 302
force = true
query = {page = ":page"}

[[redirects]]
from = "/api/*"
to = "https://api.example.com/:splat"
status = 200

[[redirects]]
from = "/fr/*"
to = "/fr/index.html"
status = 200
conditions = {Country = ["fr", "be"]}

[[headers]]
for = "/*.js"
[headers.values]
Cache-Control = "public, max-age=31536000"
Link = """
</a.css>; rel=preload
</b.js>; rel=preload"""
'''


def test_import_netlify_translates_toml_rules_and_lists_the_others(tmp_path: Path) -> None:
    build(tmp_path, {"netlify.toml": NETLIFY_TOML, "_redirects": "/old /new\n", "_headers": "/*\n  X-A: 1\n"})
    imported = netlify.import_netlify(tmp_path)
    routing = imported.routing()
    # Netlify's order: _redirects before netlify.toml; _headers before it too (the toml wins).
    assert routing["redirects"] == [
        {"from": "/old", "to": "/new", "status": 301},
        {"from": "/blog/:slug", "to": "/posts/:slug", "status": 302, "force": True, "query": {"page": ":page"}}]
    assert routing["headers"] == [
        {"path": "/*", "set": {"X-A": "1"}},
        {"path": "/*.js", "set": {"Cache-Control": "public, max-age=31536000",
                                  "Link": "</a.css>; rel=preload, </b.js>; rel=preload"}}]
    assert len(imported.problems) == 2
    assert "[[redirects]] #2 (from = '/api/*'): proxying to another server" in imported.problems[0]
    assert "[[redirects]] #3 (from = '/fr/*'): Country= conditions need a GeoIP lookup" in imported.problems[1]
    text = imported.yaml()
    assert "# 2 rule(s) not translated:" in text
    assert models.Routing.model_validate(yaml.safe_load(text)["routing"]).redirects[1].force is True


def test_import_netlify_refuses_what_has_no_redirects_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whitespace"):
        netlify.redirect_line({"from": "/a b", "to": "/c"})
    with pytest.raises(ValueError, match="does not proxy"):
        netlify.redirect_line({"from": "/a", "to": "/c", "headers": {"X": "y"}})
    with pytest.raises(ValueError, match="no such file"):
        netlify.import_netlify(tmp_path / "netlify.toml")
    (tmp_path / "netlify.toml").write_text("[[redirects]\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        netlify.import_netlify(tmp_path / "netlify.toml")


def test_import_netlify_command_prints_yaml_on_stdout_and_problems_on_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "netlify.toml").write_text(NETLIFY_TOML)
    assert main.main(["import-netlify", str(tmp_path / "netlify.toml")]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["routing"]["semantics"] == "netlify"
    assert "not translated: netlify.toml [[redirects]] #2" in err


# --- names, manifests, progress -----------------------------------------------------------

def test_preview_names_fit_a_dns_label_and_differ_per_branch() -> None:
    assert site.preview_name("blog", "feature/Login_v2") == "blog-feature-login-v2"
    long_a = site.preview_name("blog", "feature/" + "x" * 80)
    long_b = site.preview_name("blog", "feature/" + "x" * 81)
    assert len(long_a) <= 63 and long_a != long_b and site.check_name(long_a) == long_a
    assert site.preview_domain("blog.example.com", "feature/Login") == "feature-login.blog.example.com"
    assert len(site.preview_domain("example.com", "x" * 100).split(".")[0]) <= 63
    assert site.default_name("My Site 2") == "my-site-2" and site.default_name("2024") == "site-2024"


def test_the_manifest_holds_only_what_was_given_and_is_checked_before_the_cluster() -> None:
    content = {"inline": {"files": [{"path": "index.html", "content": "hi"}]}}
    obj = site.manifest("web", "ns", content)
    assert obj["spec"] == {"content": content}
    with pytest.raises(ValueError, match="notFoundPage"):
        site.manifest("web", "ns", content, routing={"notFoundPage": "missing.html"})


def _obj(generation: int, observed: int, **conds: tuple[str, str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "ns", "generation": generation},
            "status": {"observedGeneration": observed, "replicas": 1, "readyReplicas": 1,
                       "conditions": [{"type": t, "status": s, "reason": r, "message": m}
                                      for t, (s, r, m) in conds.items()]}}


def test_ready_counts_only_at_the_applied_generation() -> None:
    assert not site.progress(_obj(3, 2, Ready=("True", "Available", "")), 3).ready
    assert site.progress(_obj(3, 3, Ready=("True", "Available", "")), 3).ready


def test_wait_fails_with_the_degraded_message_and_warns_on_a_skipped_line(capsys: pytest.CaptureFixture[str]) -> None:
    states = iter([_obj(2, 1), _obj(2, 2, Ready=("False", "WaitingForReplicas", ""),
                                    Degraded=("True", "ApplyFailed", "the API server refused the Deployment"))])
    with pytest.raises(cluster.CliError, match="Degraded: ApplyFailed: the API server refused the Deployment"):
        main.wait(lambda: next(states), 2, 60, "web", sleep=lambda _: None)
    states = iter([_obj(2, 2, Ready=("True", "Available", ""),
                        Degraded=("True", "RoutingFileInvalid", "_redirects:3: bad"))])
    main.wait(lambda: next(states), 2, 60, "web", sleep=lambda _: None)
    assert "warning: RoutingFileInvalid: _redirects:3: bad" in capsys.readouterr().err


def test_wait_gives_up_after_the_timeout_saying_where_to_look() -> None:
    ticks = iter(range(0, 1000, 10))
    with pytest.raises(cluster.CliError, match=r"(?s)not Ready after 30s .*staticsite status web"):
        main.wait(lambda: _obj(2, 1), 2, 30, "web", clock=lambda: float(next(ticks)), sleep=lambda _: None)


def test_api_errors_say_what_to_do() -> None:
    conn = cluster.Cluster(api=None, namespace="ns", server="https://127.0.0.1:6443")
    no_crd = json.dumps({"kind": "Status", "code": 404, "message": "the server could not find the requested "
                                                                   "resource", "details": {}}).encode()
    assert "StaticSite CRD" in str(cluster._api_error(404, no_crd, "apply StaticSite web", conn))
    no_ns = json.dumps({"code": 404, "details": {"name": "nope", "kind": "namespaces"}}).encode()
    assert "kubectl create namespace nope" in str(cluster._api_error(404, no_ns, "apply", conn))
    invalid = json.dumps({"code": 422, "details": {"causes": [{"field": "spec.domains[0]", "message": "bad"}]}})
    assert "spec.domains[0]: bad" in str(cluster._api_error(422, invalid.encode(), "apply", conn))
    assert "kubectl auth can-i" in str(cluster._api_error(403, b"{}", "apply", conn))


def test_no_cluster_is_reported_with_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build(tmp_path / "dist", {"index.html": "hi"})
    missing = str(tmp_path / "no-kubeconfig")
    assert main.main(["deploy", str(tmp_path / "dist"), "--name", "web", "--kubeconfig", missing]) == 1
    assert "no Kubernetes cluster configured" in capsys.readouterr().err
    # A kubeconfig whose server does not answer (a closed port on this machine).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "team"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    started = time.monotonic()
    assert main.main(["status", "web", "--kubeconfig", str(kubeconfig)]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}" in err, err
    assert time.monotonic() - started < 20


# --- preview: real nginx -------------------------------------------------------------------

SPA = {"index.html": "<!doctype html><div id=app></div><script src=/assets/app-1a2b.js></script>",
       "assets/app-1a2b.js": "console.log('app')", "_redirects": "/* /index.html 200\n",
       "_headers": "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n"}


@pytest.mark.nginx
def test_preview_answers_as_the_pods_rendered_config(tmp_path: Path) -> None:
    folder = build(tmp_path / "dist", SPA)
    nginx_harness.nginx_binary()  # a missing nginx fails here, loudly
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "staticsite_operator.cli", "preview", str(folder),
                             "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        preview = nginx_harness.Server(port, folder, "", tmp_path / "none.log")
        deadline = time.monotonic() + 20
        while True:
            try:
                preview.get("/healthz")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "preview did not start"
                time.sleep(0.2)
        # The pod's config, as the operator renders it, served by the test harness.
        spec = models.StaticSiteSpec.model_validate({"content": pack.pack(folder).content()})
        rendered = render.render(render.Site("web", "ns", "uid-1", spec))
        (pod_conf,) = [o["data"]["nginx.conf"] for o in rendered.objects
                       if o["kind"] == "ConfigMap" and "nginx.conf" in o.get("data", {})]
        with nginx_harness.serve(spec, conf_text=pod_conf) as pod:
            for path in ("/", "/dashboard/settings", "/assets/app-1a2b.js", "/_redirects", "/assets/nope.js"):
                want, got = pod.get(path), preview.get(path)
                assert (got.status, got.body) == (want.status, want.body), path
                for name in ("Content-Type", "Cache-Control", "Location"):
                    assert got.header(name) == want.header(name), (path, name)
        deep = preview.get("/dashboard/settings")
        assert deep.status == 200 and b"id=app" in deep.body
        js = preview.get("/assets/app-1a2b.js")
        assert (js.header("Content-Type") or "").split(";")[0] in ("application/javascript", "text/javascript")
        assert js.header("Cache-Control") == "public, max-age=31536000, immutable"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"serving 4 files on http://127.0.0.1:{port}/" in err


@pytest.mark.nginx
def test_preview_check_reports_a_skipped_line(tmp_path: Path) -> None:
    folder = build(tmp_path, {"index.html": "x", "_redirects": "/a /b 302 Role=admin\n"})
    proc = subprocess.run([sys.executable, "-m", "staticsite_operator.cli", "preview", str(folder), "--check"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "_redirects:1: Role= conditions need Netlify Identity" in proc.stderr
    assert "nginx -t: the configuration for 2 files is valid" in proc.stderr


def test_names_from_the_command_line_stay_in_their_path_segment() -> None:
    assert cluster._site_path("ns", "../../api/v1/secrets") == \
        "/apis/staticsite.dev/v1alpha1/namespaces/ns/staticsites/..%2F..%2Fapi%2Fv1%2Fsecrets"
    assert cluster._site_path("a/b", None).startswith("/apis/staticsite.dev/v1alpha1/namespaces/a%2Fb/")


def test_pack_to_an_unwritable_place_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build(tmp_path / "dist", {"index.html": "hi"})
    assert main.main(["pack", str(tmp_path / "dist"), "-o", str(tmp_path / "no" / "site.tgz")]) == 1
    assert f"error: {tmp_path / 'no' / 'site.tgz'}: No such file or directory" in capsys.readouterr().err
