"""The write fence in the API client (clients.kube): every write path is refused before it is sent.

A standby, or a leader whose Lease may have run out, must send nothing that changes the
cluster: server-side applies of children, status patches, Events and deletes all go
through `Kube._call`, which asks the fence first. Reads are never fenced (a standby's
reflectors and the core's rare GETs keep working). Checked against a recording HTTP
server on 127.0.0.1: a refused write never reaches it.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import kubernetes
import pytest
import urllib3

from staticsite_operator.clients.kube import Kube
from staticsite_operator.runtime.leader import Fence, NotLeader

SITE = {"metadata": {"name": "site", "namespace": "ns", "uid": "u-1", "resourceVersion": "7"}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "site-0123456789", "namespace": "ns"}}


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with `reply` (and `status`); records what came (tests.unit.test_kube_client
    reads the whole requests)."""

    seen: ClassVar[list[str]] = []
    requests: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []  # method, path?query, headers, body
    reply: ClassVar[Any] = {"kind": "Whatever", "metadata": {"name": "x"}}
    status: ClassVar[int] = 200

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Recorder.requests.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        Recorder.seen.append(f"{self.command} {self.path.split('?')[0]}")
        body = Recorder.reply if isinstance(Recorder.reply, bytes) else json.dumps(Recorder.reply).encode()
        self.send_response(Recorder.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PATCH = do_POST = do_DELETE = do_PUT = _answer

    def log_message(self, *_: Any) -> None:
        pass


def recording_server() -> Iterator[str]:
    """A Recorder on 127.0.0.1, its base URL, for the while of a test."""
    Recorder.seen, Recorder.requests, Recorder.status = [], [], 200
    Recorder.reply = {"kind": "Whatever", "metadata": {"name": "x"}}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server() -> Iterator[str]:
    yield from recording_server()


def client(host: str, fence: Callable[[], float] | None) -> Kube:
    config = kubernetes.client.Configuration()
    config.host = host
    return Kube(kubernetes.client.ApiClient(config), fence=fence)


WRITES: dict[str, Callable[[Kube], object]] = {
    "apply": lambda kube: kube.apply(CONFIGMAP),
    "apply if absent": lambda kube: kube.apply(CONFIGMAP, if_absent=True),
    "status": lambda kube: kube.patch_status("ns", "site", {"phase": "Ready"}),
    "event": lambda kube: kube.post_event(SITE, "Normal", "Applied", "hello"),
    "delete": lambda kube: kube.delete("ConfigMap", "ns", "site-0123456789", "u-2"),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_closed_fence_refuses_every_write_before_it_is_sent(server: str, write: str) -> None:
    fence = Fence()  # closed: this replica never held the Lease
    kube = client(server, fence.check)
    with pytest.raises(NotLeader):
        WRITES[write](kube)
    assert Recorder.seen == []


def test_reads_are_never_fenced(server: str) -> None:
    kube = client(server, Fence().check)
    assert kube.get("ConfigMap", "ns", "site-0123456789") is not None
    assert Recorder.seen == ["GET /api/v1/namespaces/ns/configmaps/site-0123456789"]


def test_an_open_fence_lets_every_write_through_with_a_timeout_inside_it(server: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fence = Fence()
    fence.extend(time.monotonic() + 20)  # open for 20 s: no write may wait longer than that
    kube = client(server, fence.check)
    timeouts: list[float] = []
    urlopen = kube._http.urlopen

    def recording(*args: Any, timeout: urllib3.Timeout, **kwargs: Any) -> Any:
        timeouts.append(timeout.total)
        return urlopen(*args, timeout=timeout, **kwargs)

    monkeypatch.setattr(kube._http, "urlopen", recording)
    for write in sorted(WRITES):
        WRITES[write](kube)
    assert len(Recorder.seen) == len(WRITES)
    assert {line.split()[0] for line in Recorder.seen} == {"PATCH", "POST", "DELETE"}
    assert len(timeouts) == len(WRITES) and all(0 < t <= 20 for t in timeouts)  # not the default 30 s
    fence.extend(0.0)  # the Lease ran out: the next write is refused
    with pytest.raises(NotLeader):
        WRITES["apply"](kube)
    assert len(Recorder.seen) == len(WRITES)


def test_a_standby_may_ask_what_it_may_watch(server: str) -> None:
    """Found on the real node: the pool kind's access review is a POST, and fenced it made
    every replica crash at start, before any election. A review stores nothing."""
    from staticsite_operator.core import kinds

    Recorder.reply = {"resources": [{"name": kinds.STATICSITEPOOL.plural}], "status": {"allowed": True}}
    kube = client(server, Fence().check)  # closed
    assert kube.served(kinds.STATICSITEPOOL)
    assert Recorder.seen[-1] == "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
