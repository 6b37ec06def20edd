"""The http-level settings of the rendered nginx.conf that suit immutable pods, over real HTTP.

Validators come from mtime and size only, so two replicas whose files share mtimes (as
the fetch scripts make them) answer a revalidation alike, and `if_modified_since exact`
never calls a rolled-back file "not modified". The access log is buffered, yet every
line arrives within about a second and on stop. One connection from a proxy carries
far more than nginx's default 1000 requests. A precompressed file is sent as is, with
every header a compressed-on-the-fly one gets. The serving settings live in HTTP_COMMON,
so a shared nginx tier gets them too, and a pod's nginx.conf holds each once.
"""

from __future__ import annotations

import gzip
import http.client
import os
import subprocess
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from staticsite_operator.core.nginxconf import BASELINE_HEADERS, HTTP_COMMON, render_nginx_conf

from .nginx_harness import (
    Server,
    _free_port,
    _wait_healthy,
    make_spec,
    nginx_binary,
    parse_conf,
    serve,
    stop,
    walk,
    workdir,
    write_site,
)

pytestmark = pytest.mark.nginx

MTIME = 1_700_000_000
SPEC = make_spec({"index.html": "<h1>same bytes</h1>", "app.css": "body { margin: 0 }"})


def replica(base: Path, name: str, mtime: int) -> Path:
    root = base / name
    root.mkdir(mode=0o755)
    assert SPEC.content.inline is not None
    write_site(SPEC.content.inline, root)
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime))
    return root


def test_replicas_with_the_same_mtimes_agree_on_validators() -> None:
    with workdir() as tmp:
        a, b = replica(tmp, "a", MTIME), replica(tmp, "b", MTIME)
        with serve(SPEC, root=a) as first, serve(SPEC, root=b) as second:
            one, two = first.get("/app.css"), second.get("/app.css")
            assert one.header("ETag") == two.header("ETag") == f'"{MTIME:x}-{18:x}"'
            assert one.header("Last-Modified") == two.header("Last-Modified") == formatdate(MTIME, usegmt=True)
            # A revalidation made against one replica is answered 304 by the other.
            assert second.get("/app.css", {"If-None-Match": one.header("ETag") or ""}).status == 304
            assert second.get("/app.css", {"If-Modified-Since": one.header("Last-Modified") or ""}).status == 304


def test_a_rolled_back_file_is_never_not_modified() -> None:
    """A client holding a newer copy (a later mtime) gets the older file again, not a 304."""
    with workdir() as tmp, serve(SPEC, root=replica(tmp, "old", MTIME)) as server:
        newer = formatdate(MTIME + 86400, usegmt=True)
        answer = server.get("/app.css", {"If-Modified-Since": newer})
        assert answer.status == 200
        assert answer.body == b"body { margin: 0 }"


def test_the_buffered_access_log_arrives_within_seconds_and_on_stop() -> None:
    with workdir() as tmp:
        root = replica(tmp, "site", MTIME)
        port = _free_port()
        (tmp / "nginx.conf").write_text(render_nginx_conf(SPEC, root=str(root), listen=f"127.0.0.1:{port}",
                                                          tmp_dir=str(tmp)))
        log = tmp / "access.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([nginx_binary(), "-e", "stderr", "-c", str(tmp / "nginx.conf")], stdout=out,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        server = Server(port, root, "", log)
        try:
            assert _wait_healthy(server, proc)
            for n in range(5):
                assert server.get(f"/app.css?n={n}").status == 200
            deadline = time.monotonic() + 5  # flush=1s
            while time.monotonic() < deadline and server.log().count('"GET /app.css?n=') < 5:
                time.sleep(0.1)
            assert server.log().count('"GET /app.css?n=') == 5
            assert server.get("/app.css?n=last").status == 200
        finally:
            stop(proc)
        assert '"GET /app.css?n=last HTTP/1.1" 200' in server.log(), "flushed when nginx stops"


def test_one_connection_carries_thousands_of_requests() -> None:
    """An ingress controller keeps its connections to the pods; nginx's default closes them every 1000."""
    with workdir() as tmp, serve(SPEC, root=replica(tmp, "site", MTIME)) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for _ in range(1500):
                conn.request("GET", "/app.css")
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 200
                assert resp.getheader("Connection") != "close"
            assert conn.sock is not None, "the connection was never closed"
        finally:
            conn.close()


CSS = b"body { margin: 0 } " * 40  # over gzip_min_length, so nginx would compress it itself


def test_a_precompressed_file_is_sent_as_is_with_every_header() -> None:
    """gzip_static: app.css.gz is sent for app.css to a client that accepts gzip. It is made
    different from gzip(app.css) here, so only the file on disk can have produced the body."""
    with workdir() as tmp:
        root = replica(tmp, "site", MTIME)
        (root / "app.css").write_bytes(CSS)
        precompressed = gzip.compress(CSS + b"/* precompressed */", mtime=0)
        (root / "app.css.gz").write_bytes(precompressed)
        with serve(SPEC, root=root) as server:
            packed = server.get("/app.css", {"Accept-Encoding": "gzip"})
            plain = server.get("/app.css")
    assert packed.status == plain.status == 200
    assert packed.header("Content-Encoding") == "gzip"
    assert packed.body == precompressed
    assert plain.header("Content-Encoding") is None
    assert plain.body == CSS
    assert packed.header("Content-Type") == plain.header("Content-Type") == "text/css"
    assert packed.header("Vary") == "Accept-Encoding"
    for name, value in BASELINE_HEADERS.items():
        assert packed.header(name) == plain.header(name) == value, name
    assert packed.header("ETag"), "a precompressed file keeps a validator (its own mtime and size)"


SERVING = {
    "disable_symlinks": ["off"],         # confined at fetch time instead (fetch-common.sh)
    "open_file_cache": ["max=256", "inactive=60s"],
    "open_file_cache_valid": ["60s"],
    "open_file_cache_errors": ["on"],
    "sendfile": ["on"],
    "etag": ["on"],
    "if_modified_since": ["exact"],
    "keepalive_timeout": ["620s"],
    "keepalive_requests": ["10000"],
    "gzip_static": ["on"],
    "gzip_vary": ["on"],
}


def test_the_serving_settings_are_shared_and_set_once() -> None:
    """A shared tier includes HTTP_COMMON only: the settings must be there, at http level,
    and a pod's nginx.conf (which also includes it) must not set them a second time."""
    common = {d.name: d.words[1:] for d in parse_conf(HTTP_COMMON) if d.block is None}
    for name, args in SERVING.items():
        assert common.get(name) == args, name
    conf = render_nginx_conf(make_spec({"index.html": "x"}), root="/srv/site", listen="8080", tmp_dir="/tmp")
    found: dict[str, list[list[str]]] = {}
    for path, d in walk(parse_conf(conf)):
        if d.name in SERVING:
            found.setdefault(d.name, []).append(path)
    assert found == {name: [["http"]] for name in SERVING}
