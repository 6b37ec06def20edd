"""Helpers for tests that run the operator against the cluster."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf.testing
import pytest
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


def config_of(cluster: Cluster, namespace: str, site: str) -> dict[str, Any] | None:
    """The ConfigMap of the revision the site's Deployment mounts (content, nginx.conf)."""
    dep = get(cluster, namespace, "deployment", site)
    if dep is None:
        return None
    (name,) = {v["configMap"]["name"] for v in dep["spec"]["template"]["spec"]["volumes"] if "configMap" in v}
    return get(cluster, namespace, "configmap", name)


def configmaps_of(cluster: Cluster, namespace: str, site: str) -> list[str]:
    """The names of every ConfigMap labelled for the site."""
    out = cluster.kubectl("-n", namespace, "get", "configmaps", "-l", f"app.kubernetes.io/instance={site}",
                          "-o", "name").stdout.split()
    return sorted(name.split("/", 1)[1] for name in out)


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
def policy_dir(policy: dict[str, str]) -> Iterator[str]:
    """The platform's policy as the chart mounts it: one file per key, in a directory."""
    with tempfile.TemporaryDirectory(prefix="staticsite-policy-") as tmp:
        for key, value in policy.items():
            (Path(tmp) / key).write_text(value)
        yield tmp


@contextlib.contextmanager
def running_operator(namespace: str,
                     policy: dict[str, str] | None = None) -> Iterator[kopf.testing.KopfRunner]:
    """The operator in a thread of this process, serving `namespace` (comma-separated for
    several), started with the launch command the image uses, under `policy` (default: the
    built-in one). Like the image, it is configured by environment variables only: the one
    source for kopf's arguments and for what the operator watches."""
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(pytest.MonkeyPatch.context())
        env.setenv("STATICSITE_NAMESPACES", namespace)
        env.setenv("STATICSITE_HEALTH_PORT", "0")
        if policy is not None:
            env.setenv("STATICSITE_POLICY_DIR", stack.enter_context(policy_dir(policy)))
        else:
            env.delenv("STATICSITE_POLICY_DIR", raising=False)
        with kopf.testing.KopfRunner(kopf_args(Config.from_env(os.environ)), timeout=60) as runner:
            yield runner
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output


def deepcopy(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)
