"""The serving benchmark's own checks: its baselines behave like the rendered configs, and it runs.

Every scenario's hand-written baseline must answer every request of the load exactly as
the working tree's rendered config does (status, headers, body), and correctly; when the
routing changes, this says which baseline to update before any figure is trusted. Then
one short run of `python -m bench.serve` end to end with wrk (which must be installed:
`make bench-serve` installs it).

    .venv/bin/python -m pytest bench/serve/test_serve.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.nginx_harness import workdir

from . import check, nginx
from .measure import Options, scenario
from .scenarios import Scenario, all_scenarios

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.nginx


@pytest.fixture
def scratch() -> Iterator[Path]:
    with workdir() as path:  # world-readable: nginx's workers run as nobody under root
        yield path


@pytest.mark.parametrize("s", all_scenarios(), ids=lambda s: s.name)
def test_baseline_answers_like_the_rendered_config(s: Scenario, scratch: Path) -> None:
    result = scenario(s, scratch, Options(rounds=0, steady_seconds=0), python_path=ROOT / "operator",
                      checks_only=True)
    assert result == {"ok": True}, "\n".join(result.get("problems", []))


def test_a_broken_answer_is_caught() -> None:
    """The check is not vacuous: a wrong status, a missing marker and a wrong Location all count."""
    s = all_scenarios()[3]  # redirects-50
    request = s.requests[-1]
    good = check.Answer(301, (("location", request.location or ""),), b"")
    assert check.wrong(request, good) is None
    assert check.wrong(request, check.Answer(200, (), b"")) == "status 200, expected 301"
    assert "Location" in (check.wrong(request, check.Answer(301, (("location", "/elsewhere"),), b"")) or "")
    page = s.requests[0]
    assert "lacks" in (check.wrong(page, check.Answer(200, (), b"<h1>other</h1>")) or "")


@pytest.mark.slow
def test_bench_serve_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "bench.serve", "--scenarios", "plain,redirects-50", "--seconds", "1",
                           "--rounds", "1", "--steady-seconds", "1", "--steady-rate", "20", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert set(results["scenarios"]) == {"plain", "redirects-50"}
    for s in results["scenarios"].values():
        assert s["ok"]
        assert s["rendered"]["rps"] > 0 and s["baseline"]["rps"] > 0
        assert s["rendered"]["memory"]["worker_rss_mib"], "nginx's workers were found"
        assert s["steady"]["rps"] > 0
    assert "| plain |" in (out / "results.md").read_text()
    assert (out / "configs" / "redirects-50.baseline.conf").exists()
    assert nginx.binary()
