"""The http-level settings of the rendered nginx.conf that suit immutable pods, over real HTTP.

Validators come from mtime and size only, so two replicas whose files share mtimes (as
the fetch scripts make them) answer a revalidation alike, and `if_modified_since exact`
never calls a rolled-back file "not modified". The access log is buffered, yet every
line arrives within about a second and on stop. One connection from a proxy carries
far more than nginx's default 1000 requests.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from staticsite_operator.core.nginxconf import render_nginx_conf

from .nginx_harness import Server, _free_port, _wait_healthy, make_spec, nginx_binary, serve, stop, workdir, write_site

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
