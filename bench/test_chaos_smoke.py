"""The chaos suite end to end, small: `python -m bench.chaos` on its own cluster, in a few minutes.

At 5 sites, on a cluster of its own ($CHAOS_CLUSTER_NAME, default "chaos-smoke", never
the test cluster): the clean runs, a SIGKILL of the operator during a content update,
the API server killed and restarted, every watch expired (410 Gone) mid-update, and two
replicas failing over (2 SIGKILLs, 1 SIGTERM, 1 partition of the leader). Every
invariant must hold in every run (the suite exits non-zero otherwise), no replica may
write without the Lease, and the table must be written. `make chaos` runs the full suite.

    .venv/bin/python -m pytest bench/test_chaos_smoke.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.mark.timeout(780)
def test_chaos_suite_runs_and_every_invariant_holds(tmp_path: Path) -> None:
    out = tmp_path / "chaos"
    cmd = [sys.executable, "-m", "bench.chaos", "--sites", "5", "--seeds", "1", "--threads", "4",
           "--scenarios", "kill-update,apiserver-restart,watch-expiry,ha", "--failovers", "2", "--handovers", "1",
           "--partitions", "1", "--partition-seconds", "15", "--expiry-seconds", "3",
           "--out", str(out), "--cluster-name", os.environ.get("CHAOS_CLUSTER_NAME", "chaos-smoke")]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=760, check=False)
    tail = run.stderr[-4000:]
    assert (out / "results.md").stat().st_size > 0, tail
    results = json.loads((out / "results.json").read_text())
    assert [r["scenario"] for r in results["runs"]] == ["clean-create", "clean-update", "kill-update",
                                                          "apiserver-restart", "watch-expiry"], tail
    for r in results["runs"]:
        assert r["ok"], (r["scenario"], r["invariants"], r["extra"])
        assert r["converged"] and r["invariants"]["counts"] == dict.fromkeys(r["invariants"]["counts"], 0)
    kill = results["runs"][2]
    assert kill["fault"].startswith("operator SIGKILLed") and kill["recovery_s"] is not None
    expiry = results["runs"][4]
    assert expiry["extra"]["lists_after_fault"] > 0 and expiry["extra"]["watches_reopened"] > 0, expiry["extra"]
    ha = results["ha"]
    assert ha["ok"], ha
    assert ha["sigkill_takeover"]["count"] == 2 and ha["sigkill_takeover"]["max_s"] <= 15
    assert ha["graceful_takeover"]["count"] == 1
    assert ha["partition_takeover"]["count"] == 1 and ha["partition_takeover"]["max_s"] <= 15
    assert ha["partition_rejoin"]["count"] == 1
    assert ha["fencing"]["double_writes"] == 0 and ha["fencing"]["writes_checked"] > 0
    assert results["fencing_all"]["double_writes"] == 0
    assert run.returncode == 0, tail
    assert "| scenario |" in run.stdout
