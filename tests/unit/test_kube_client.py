"""The API client's own request path (clients.kube): what goes on the wire, and what comes back.

The client sends straight to the official client's connection pool, without its
per-call layers, so what those layers did is checked here against a recording HTTP
server on 127.0.0.1: the token, the user agent, the content types, the query, a
path prefix, errors as ApiError, and watch streams.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import kubernetes
import pytest

from staticsite_operator.clients import kube as kube_module
from staticsite_operator.clients.kube import Kube
from staticsite_operator.core.ports import ApiError

from .test_kube_fence import CONFIGMAP, Recorder, recording_server


@pytest.fixture
def server() -> Iterator[str]:
    yield from recording_server()


def client(host: str, token: str | None = "s3cret", identity: str = "") -> Kube:
    config = kubernetes.client.Configuration()
    config.host = host
    if token:
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
    return Kube(kubernetes.client.ApiClient(config), identity=identity)


def test_an_apply_sends_compact_json_as_apply_yaml_with_the_token_and_the_identity(server: str) -> None:
    client(server, identity="operator-0").apply(CONFIGMAP, if_absent=True)
    [(method, path, headers, body)] = Recorder.requests
    assert method == "PATCH"
    assert path == "/api/v1/namespaces/ns/configmaps/site-0123456789?fieldManager=staticsite-operator&force=true"
    assert headers["Content-Type"] == "application/apply-patch+yaml"
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["User-Agent"].endswith("(operator-0)")
    assert json.loads(body) == {**CONFIGMAP, "metadata": {**CONFIGMAP["metadata"], "resourceVersion": "1"}}
    assert b" " not in body  # compact


def test_a_get_has_no_body_nor_content_type_and_no_token_when_there_is_none(server: str) -> None:
    assert client(server, token=None).get("ConfigMap", "ns", "x") == Recorder.reply
    [(method, _, headers, body)] = Recorder.requests
    assert (method, body) == ("GET", b"")
    assert "Content-Type" not in headers and "Authorization" not in headers


def test_an_api_server_behind_a_path_prefix(server: str) -> None:
    client(server + "/k8s/").get("ConfigMap", "ns", "x")
    assert Recorder.requests[0][1] == "/k8s/api/v1/namespaces/ns/configmaps/x"


def test_a_refused_request_is_an_api_error_with_the_servers_reason_and_message(server: str) -> None:
    Recorder.status = 409
    Recorder.reply = {"kind": "Status", "reason": "Conflict", "message": "configmaps \"x\" already exists"}
    with pytest.raises(ApiError) as caught:
        client(server).apply(CONFIGMAP, if_absent=True)
    assert (caught.value.status, caught.value.reason) == (409, "Conflict")
    assert "already exists" in str(caught.value)
    Recorder.status = 404
    assert client(server).get("ConfigMap", "ns", "gone") is None  # a 404 on a get is "absent"


def test_no_server_is_a_transient_api_error_not_a_crash() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ApiError) as caught:
        client(f"http://127.0.0.1:{port}").get_json("/api")
    assert caught.value.status == 0


def test_a_rotated_token_is_sent_once_the_reuse_window_is_over(server: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    kube = client(server)
    tokens = iter(["first", "second"])

    def refresh(config: kubernetes.client.Configuration) -> None:  # as the in-cluster loader's hook does
        config.api_key["authorization"] = next(tokens)

    kube.api.configuration.refresh_api_key_hook = refresh
    kube.get_json("/api")
    kube.get_json("/api")  # within the window: the hook is not asked again
    monkeypatch.setattr(kube_module, "AUTH_REUSE", 0.0)
    kube._auth = (0.0, {})  # the window is over
    kube.get_json("/api")
    assert [r[2]["Authorization"] for r in Recorder.requests] == ["Bearer first", "Bearer first", "Bearer second"]


def test_a_watch_yields_each_event_as_it_is_split_across_lines(server: str) -> None:
    events = [{"type": "ADDED", "object": {"metadata": {"name": f"o{i}"}}} for i in range(3)]
    Recorder.reply = b"\n".join(json.dumps(e).encode() for e in events) + b"\n\n"
    got = list(client(server).watch("/api/v1/configmaps", [("resourceVersion", "5")], timeout=5))
    assert got == events
    assert Recorder.requests[0][1] == "/api/v1/configmaps?resourceVersion=5&watch=1&timeoutSeconds=5"
