"""One scenario: lay out its files, start the rendered and the baseline nginx, check, then load both.

Rounds alternate the order (rendered first, then baseline first, ...) so that drift in
the machine's load falls on both alike; each figure is the median over rounds. Under
load, nginx's CPU time (master and workers) and the workers' peak RSS (VmHWM, reset
before each run) are read from /proc. The steady phase loads the rendered config at a
fixed rate and reads its CPU share and memory: the basis of the default resources.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import procstat
from . import baselines, check, load, nginx
from .scenarios import Request, Scenario


@dataclass(frozen=True)
class Options:
    seconds: float = 5
    rounds: int = 5
    threads: int = 2
    connections: int = 32
    steady_rate: float = 100      # requests per second of the steady phase
    steady_connections: int = 4
    steady_seconds: float = 10    # CPU time is counted in 10 ms ticks: 10 s resolve 1 millicore


@dataclass
class Target:
    """Something that serves a scenario ("rendered" or "baseline"): a URL, and how to read
    its processes, all of them and the workers (None: cannot)."""

    name: str
    url: str
    pids: Callable[[], list[int]] | None = None
    workers: Callable[[], list[int]] | None = None


def expected_error_share(loop: list[Request]) -> float:
    return sum(r.status >= 400 for r in loop) / len(loop)


def one_run(t: Target, loop: list[Request], workdir: Path, opts: Options, *, seconds: float,
            connections: int, rate: float = 0) -> dict[str, Any]:
    """wrk against `t`, plus nginx's CPU seconds and the workers' peak memory during the run."""
    pids = t.pids() if t.pids else []
    for pid in pids:
        procstat.reset_peak(pid)
    cpu0 = sum(procstat.cpu_seconds(p) for p in pids)
    res = load.run(t.url, loop, workdir, seconds=seconds, threads=opts.threads, connections=connections, rate=rate)
    out: dict[str, Any] = asdict(res)
    if pids:
        cpu = sum(procstat.cpu_seconds(p) for p in pids) - cpu0
        out["cpu_s"] = cpu
        out["cpu_us_per_request"] = cpu / max(1, res.requests) * 1e6
        out["millicores"] = cpu / res.seconds * 1000
    if t.workers:
        mem = [nginx.memory(p) for p in t.workers()]
        out["worker_peak_rss_mib"] = max((m["hwm"] for m in mem), default=float("nan"))
    share = res.status_4xx_5xx / max(1, res.requests)
    # The loop is fixed, so the share of 4xx answers is known; a config that starts failing under load shows here.
    out["valid"] = res.socket_errors == 0 and abs(share - expected_error_share(loop)) < 0.02
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request", "worker_peak_rss_mib", "mib_per_s")
    out = {k: statistics.median(r[k] for r in runs) for k in keys if all(k in r for r in runs)}
    out["valid"] = all(r["valid"] for r in runs)
    return out


def memory_of(t: Target) -> dict[str, Any]:
    """Each worker's RSS, and the PSS of master and workers together (what the container is charged)."""
    if t.pids is None or t.workers is None:
        return {}
    workers = [nginx.memory(p) for p in t.workers()]
    everyone = [nginx.memory(p) for p in t.pids()]
    return {"worker_rss_mib": [round(m["rss"], 1) for m in workers],
            "total_pss_mib": round(sum(m["pss"] for m in everyone), 1),
            "total_rss_mib": round(sum(m["rss"] for m in everyone), 1)}


def local_target(n: nginx.Nginx) -> Target:
    return Target(n.name, n.url, n.pids, n.workers)


def compare(targets: list[Target], loop: list[Request], workdir: Path, opts: Options) -> dict[str, Any]:
    """Warm up, then `rounds` runs of each target in alternating order: every run and the medians."""
    for t in targets:
        one_run(t, loop, workdir, opts, seconds=1, connections=opts.connections)
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    for i in range(opts.rounds):
        for t in targets if i % 2 == 0 else list(reversed(targets)):
            runs[t.name].append(one_run(t, loop, workdir, opts, seconds=opts.seconds, connections=opts.connections))
    return {t.name: {"runs": runs[t.name], **summary(runs[t.name]), "memory": memory_of(t)} for t in targets}


def steady(t: Target, loop: list[Request], workdir: Path, opts: Options) -> dict[str, Any]:
    """The rendered config at a fixed, modest rate: CPU share and memory."""
    run = one_run(t, loop, workdir, opts, seconds=opts.steady_seconds, connections=opts.steady_connections,
                  rate=opts.steady_rate)
    return {"rate": opts.steady_rate, "rps": run["rps"], "millicores": run.get("millicores"),
            "p99_ms": run["p99_ms"], "valid": run["valid"], "memory": memory_of(t)}


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """Rendered ÷ baseline, round by round (the two runs of a round are back to back, so
    they saw the same machine), then the median over rounds."""
    pairs = list(zip(result["rendered"]["runs"], result["baseline"]["runs"], strict=True))

    def median(key: str) -> float:
        return float(statistics.median(x[key] / y[key] for x, y in pairs if key in x and key in y and y[key]))

    per_round = [x["rps"] / y["rps"] for x, y in pairs]
    return {"throughput": median("rps"), "p50": median("p50_ms"), "p99": median("p99_ms"),
            "throughput_min": min(per_round), "throughput_max": max(per_round),
            "cpu_per_request": median("cpu_us_per_request")}


def scenario(s: Scenario, workdir: Path, opts: Options, *, python_path: Path | None = None,
             rendered: Target | None = None, checks_only: bool = False) -> dict[str, Any]:
    """Everything measured for one scenario (or the problems that stopped it).

    The rendered side is a local nginx running the config that the operator at
    `python_path` renders, or `rendered` (named "rendered": a site's Service, service.py).
    `checks_only`: stop after the checks, with {"ok": True} if they passed."""
    base = workdir / s.name
    root = base / "site"
    nginx.write_tree(root, s.files)

    def render(port: int) -> str:
        assert python_path is not None, "scenario() needs python_path or rendered"
        return nginx.render(python_path, s.spec, root=root, listen=f"127.0.0.1:{port}", tmp=base / "rendered")

    def baseline(port: int) -> str:
        return baselines.config(s, listen=f"127.0.0.1:{port}", root=str(root), tmp=str(base / "baseline"))

    with ExitStack() as stack:
        if rendered is None:
            rendered = local_target(stack.enter_context(nginx.running("rendered", base / "rendered", render)))
        targets = [rendered, local_target(stack.enter_context(nginx.running("baseline", base / "baseline",
                                                                             baseline)))]
        problems = check.check(s.requests, targets[0].url, targets[1].url)
        if problems or checks_only:
            return {"ok": not problems, **({"problems": problems} if problems else {})}
        loop = s.load()
        result: dict[str, Any] = {"ok": True, **compare(targets, loop, base, opts)}
        result["ratios"] = ratios(result)
        if opts.steady_seconds:
            result["steady"] = steady(targets[0], loop, base, opts)
        result["ok"] = result["rendered"]["valid"] and result["baseline"]["valid"]
        if not result["ok"]:
            result["problems"] = ["socket errors or changed answers under load: see runs"]
        return result
