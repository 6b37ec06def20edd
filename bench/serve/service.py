"""Measure one site through its Service and pods: the hook for a real kubelet node (NOT WIRED YET).

`make bench-serve` runs nginx processes on 127.0.0.1. Once the local cluster has a real
node (work on another branch), the same scenario can be measured as visitors get it:
the operator renders the StaticSite, its pods fetch the scenario's files as an archive,
and wrk loads the Service's ClusterIP from this machine (a Service of this machine's own
node, which the network rule allows). Everything that needs no cluster is here; to wire
it, per scenario:

1. publish `scenario_archive(s)` where the pods can fetch it, and allow that host in the
   chart's `policy.sources`;
2. apply `site_manifest(s, ...)` and wait until the StaticSite is Ready;
3. call `measure_through_service(s, "http://<cluster IP>:80", ...)`, with `pod_pids`
   returning the PIDs of the site's nginx processes (the node runs them on this machine:
   read them from the pods' cgroups, or `crictl inspect`), so CPU and memory are counted.

The result has the same shape as a local scenario's, checks included: each request is
first checked against its expected answer and against a local baseline nginx serving
the same files, then both are loaded in alternating rounds.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .measure import Options, Target, scenario
from .scenarios import Scenario

MTIME = 1_600_000_000  # every file's mtime in the archive: validators equal on every replica


def scenario_archive(s: Scenario) -> tuple[bytes, str]:
    """The scenario's files as a .tar.gz (no top directory), and its SHA-256."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in sorted(s.files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def site_manifest(s: Scenario, *, name: str, namespace: str, url: str, sha256: str) -> dict[str, Any]:
    """The StaticSite that serves the scenario from the published archive."""
    spec = dict(s.spec) | {"content": {"archive": {"url": url, "sha256": sha256}}}
    return {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def measure_through_service(s: Scenario, service_url: str, workdir: Path, opts: Options, *,
                            pod_pids: Callable[[], list[int]] | None = None,
                            pod_workers: Callable[[], list[int]] | None = None) -> dict[str, Any]:
    """Check and load the site behind `service_url` against a local baseline serving the same files.

    `pod_pids`: every nginx process of the site's pods, `pod_workers` its workers; without
    them, CPU and memory are not reported."""
    return scenario(s, workdir, opts, rendered=Target("rendered", service_url, pod_pids, pod_workers))
