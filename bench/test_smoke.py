"""The benchmark harness works end to end: `python -m bench` at N=2 on its own cluster.

Covers the whole path once, quickly: cluster up and down (as "staticsite-bench-smoke",
never the test cluster), the operator subprocess, every scenario, the floor, the audit
log (the ServiceAccount rule must make the operator's reads visible), and the three
output files. It checks that figures exist, not what they are: targets are for
`make bench` to report.

    .venv/bin/python -m pytest bench/test_smoke.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import sites
from staticsite_operator.api import models
from staticsite_operator.core import kinds

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_SCENARIOS = {"startup", "a_create", "b_update", "c_idle", "d_restart", "e_delete"}
FLOOR_SCENARIOS = {"a_create", "b_update", "e_delete"}

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.mark.timeout(150)
def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "bench", "--sizes", "2", "--idle-seconds", "3", "--threads", "4",
           "--out", str(out), "--cluster-name", "staticsite-bench-smoke"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=140, check=False)
    assert run.returncode == 0, run.stderr[-4000:]

    for name in ("results.md", "results.json", "convergence.png"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    size = results["sizes"]["2"]
    assert set(size["operator"]) == OPERATOR_SCENARIOS
    assert set(size["floor"]) == FLOOR_SCENARIOS
    assert all(sc["complete"] for sc in [*size["operator"].values(), *size["floor"].values()]), size
    assert {"nproc", "memory_gib", "kernel", "python", "date", "kube_version"} <= set(results["machine"])
    assert [t["target"] for t in results["targets"]], "no targets section"

    # The audit log saw the operator: its writes while converging, and its reads (lists,
    # watches) after the restart, which only the bench's all-verbs rule records.
    assert size["operator"]["a_create"]["requests"]["writes"] > 0
    restart = size["operator"]["d_restart"]["requests"]["by_verb_resource"]
    assert any(key.startswith("list ") for key in restart), restart
    # What woke the reconciles: each new site's own event queued one, and the echoes of the
    # operator's writes (ConfigMap, Service, Deployment) came back without queueing any.
    created = size["operator"]["a_create"]["extra"]
    assert created["queued StaticSite"] >= 2 and created["events Deployment"] >= 2, created
    assert created.get("queued ConfigMap", 0) < created["events ConfigMap"], created
    assert "## What woke the reconciles" in (out / "results.md").read_text()
    # Every child a bench site wants (no gateway: an Ingress, not an HTTPRoute), for each site.
    spec = models.StaticSiteSpec.model_validate(sites.manifest("s", "ns", 1)["spec"])
    hosts = tuple(spec.domains)
    assert size["floor"]["a_create"]["requests"]["writes"] == 2 * sum(c.wanted(spec, hosts) for c in kinds.CHILDREN)
    assert "| N |" in run.stdout  # the table is printed at the end
