"""Helpers for tests that run the operator against the cluster."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf.testing
import yaml

from staticsite_operator.__main__ import kopf_args
from staticsite_operator.config import Config
from tests.conftest import Cluster, wait_for

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def example(name: str, namespace: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    return doc


def site(name: str, namespace: str, files: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    files = files or {"index.html": "<h1>hello</h1>"}
    return {
        "apiVersion": "staticsite.dev/v1alpha1",
        "kind": "StaticSite",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"content": {"inline": {"files": [{"path": p, "content": c} for p, c in files.items()]}}, **spec},
    }


def apply(cluster: Cluster, obj: dict[str, Any]) -> None:
    # Server-side, as we recommend to users: client-side apply stores a copy of the whole
    # object in an annotation, which caps a site at 256 KiB.
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj))


def get(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    res = cluster.kubectl("-n", namespace, "get", kind, name, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def wait_ready(cluster: Cluster, namespace: str, name: str, timeout: float = 60) -> dict[str, Any]:
    """Wait until Ready=True refers to the site's current generation."""
    def ready() -> dict[str, Any] | None:
        obj = get(cluster, namespace, "staticsite", name)
        if obj is None:
            return None
        cond = condition(obj, "Ready")
        current = obj["status"].get("observedGeneration") == obj["metadata"]["generation"] if "status" in obj else False
        return obj if current and cond.get("status") == "True" else None

    result: dict[str, Any] = wait_for(ready, timeout=timeout, what=f"StaticSite {namespace}/{name} Ready")
    return result


def wait_condition(cluster: Cluster, namespace: str, name: str, type_: str, status: str, reason: str,
                   timeout: float = 60) -> dict[str, Any]:
    def match() -> dict[str, Any] | None:
        cond = condition(get(cluster, namespace, "staticsite", name), type_)
        return cond if cond.get("status") == status and cond.get("reason") == reason else None

    result: dict[str, Any] = wait_for(match, timeout=timeout, what=f"{type_}={status} ({reason}) on {name}")
    return result


def events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    items = cluster.kubectl_json("-n", namespace, "get", "events",
                                 f"--field-selector=involvedObject.name={name},involvedObject.kind=StaticSite")["items"]
    return list(items)


@contextlib.contextmanager
def running_operator(namespace: str) -> Iterator[kopf.testing.KopfRunner]:
    """The operator in a thread of this process, watching one namespace (as kopf's docs suggest),
    started with the launch command the image uses."""
    config = Config.from_env({"STATICSITE_NAMESPACES": namespace, "STATICSITE_HEALTH_PORT": "0"})
    with kopf.testing.KopfRunner(kopf_args(config), timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output


def deepcopy(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)
