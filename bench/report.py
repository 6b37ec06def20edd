"""results.json (every figure), results.md (the tables) and convergence.png (time against N).

Targets are reported, never asserted: a run that misses one still writes its results.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

FLOOR_FACTOR = 2.0


def machine(kube_version: str) -> dict[str, Any]:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())
    versions = {}
    for pkg in ("kopf", "kubernetes", "pydantic", "PyYAML", "Jinja2"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "?"
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "memory_gib": round(int(meminfo["MemTotal"].split()[0]) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kube_version": kube_version,
        "packages": versions,
        "loadavg_start": os.getloadavg(),
    }


def _get(sc: dict[str, Any] | None, *path: str) -> Any:
    cur: Any = sc
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return math.nan
        cur = cur[key]
    return math.nan if cur is None else cur  # results.json stores a missing figure as null


def _fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else "yes" if met else "**no**"


def _times(value: Any) -> str:
    """A ratio's cell: "1.04x", or "n/a" when it was not measured."""
    text = _fmt(value, 2)
    return text if text == "n/a" else f"{text}x"


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _own_share(op: dict[str, Any] | None, floor: dict[str, Any] | None) -> float:
    """The operator's last child write / the floor's: its own share of the time."""
    return _ratio(_get(op, "extra", "last_child_write_s"), _get(floor, "extra", "last_child_write_s"))


def _sized(results: dict[str, Any], n: int) -> dict[str, Any] | None:
    size: dict[str, Any] | None = results["sizes"].get(str(n))
    return size


def _gets_per_site(sc: dict[str, Any] | None, sites: int) -> float:
    """GETs of a single object (not lists, watches or discovery) per site in a scenario."""
    by = _get(sc, "requests", "by_verb_resource")
    if not isinstance(by, dict) or not sites:
        return math.nan
    gets: int = sum(count for key, count in by.items() if key.startswith("get ") and not key.startswith("get /"))
    return gets / sites


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target, from whichever sizes this run measured ("not measured" otherwise)."""
    sizes = sorted(int(n) for n in results["sizes"])
    if not sizes:
        return []
    rows: list[tuple[str, str, str, bool | None]] = []
    replicas = results["config"].get("replicas", 1)
    ingress = results["config"].get("ingress", True)

    def op(n: int, scenario: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = (_sized(results, n) or {}).get("operator", {}).get(scenario)
        return found

    idle = max((_get(s.get("operator", {}).get("c_idle"), "requests", "writes") for s in results["sizes"].values()),
               default=math.nan)
    restart = max((_get(s.get("operator", {}).get("d_restart"), "requests", "writes")
                   for s in results["sizes"].values()), default=math.nan)
    rows += [("writes while idle (every N)", "0", _fmt(idle), idle == 0),
             ("writes on restart (every N)", "0", _fmt(restart), restart == 0)]
    largest = sizes[-1]
    create = op(largest, "a_create")
    rows.append((f"GETs per new site (N={largest})", "0", _fmt(_gets_per_site(create, largest), 2),
                 _gets_per_site(create, largest) == 0))
    per_site = _get(create, "requests", "writes_per_site")
    what = "no Ingress" if not ingress else "with an Ingress: subtract its apply for the target's shape"
    rows.append((f"writes per new site, Events included (N={largest}, {what})", "<= 6", _fmt(per_site, 2),
                 per_site <= (6 if not ingress else 7)))
    if replicas and 1000 in sizes:
        size = results["sizes"]["1000"]
        ratio = _get(size, "ratio_a")
        share = _own_share(op(1000, "a_create"), size.get("floor", {}).get("a_create"))
        peak = max((_get(sc, "usage", "operator_peak_rss_mib") for sc in size.get("operator", {}).values()),
                   default=math.nan)
        cpu_create = _get(op(1000, "a_create"), "usage", "operator_cpu_s")
        cpu_update = _get(op(1000, "b_update"), "usage", "operator_cpu_s")
        rows += [
            (f"1000 sites Ready within {FLOOR_FACTOR:g}x the floor", f"<= {FLOOR_FACTOR:g}x", _times(ratio),
             ratio <= FLOOR_FACTOR),
            ("peak RSS over the whole run at 1000 sites, restart included", "<= 120 MiB", f"{_fmt(peak)} MiB",
             peak <= 120),
            ("the operator's last child write / the floor's, 1000 new sites", "<= 1.3x", _times(share),
             share <= 1.3),
            ("operator CPU to create / to update 1000 sites", "<= 20 s / <= 30 s",
             f"{_fmt(cpu_create)} s / {_fmt(cpu_update)} s", cpu_create <= 20 and cpu_update <= 30),
        ]
    if replicas == 0 and 10000 in sizes:
        size = results["sizes"]["10000"]
        peak = max((_get(sc, "usage", "operator_peak_rss_mib") for sc in size.get("operator", {}).values()),
                   default=math.nan)
        restart_s = _get(op(10000, "d_restart"), "seconds")
        restart_w = _get(op(10000, "d_restart"), "requests", "writes")
        ratio = _get(size, "ratio_a")
        rows += [
            ("peak RSS at 10,000 sites (replicas 0), restart included", "<= 400 MiB", f"{_fmt(peak)} MiB",
             peak <= 400),
            ("restart over 10,000 converged sites: every site checked, and its writes", "<= 60 s, 0 writes",
             f"{_fmt(restart_s)} s, {_fmt(restart_w)} writes", restart_s <= 60 and restart_w == 0),
            ("10,000 sites created (replicas 0): all Ready / the floor", "<= 1.5x", _times(ratio),
             ratio <= 1.5),
        ]
    # A target whose figure is missing (no floor run, say) is "not measured", never "met" or "missed".
    return [{"target": t, "goal": g, "measured": m, "met": None if "n/a" in m else bool(ok)} for t, g, m, ok in rows]


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# staticsite-operator benchmark",
        "",
        f"{m['date']} on {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}, Kubernetes {m['kube_version']} (kwok nodes: {results['config']['nodes']}), "
        f"controller-manager client QPS: {results['config'].get('kcm_qps', 20)}, "
        f"operator workers: {results['config']['workers'] or 'default'}, load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}.",
        "",
        "## Convergence (seconds)",
        "",
        "Per-site times run from a site's apply to Ready at its new generation (operator) or from "
        "the first apply to each Deployment rolled out (floor); total is the first request to the last one.",
        "",
        "`own a / floor` compares when the operator's last write to a child reached the server with "
        "the floor's: the operator's own share, which a slow cluster hides in the totals.",
        "",
        "| N | a p50 | a p95 | a max | a total | floor a | a / floor | own a / floor | b p50 | b p95 | b total "
        "| floor b | b / floor | d catch-up | e children gone | e pods gone |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, size in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        op, fl = size.get("operator", {}), size.get("floor", {})
        a, b = op.get("a_create"), op.get("b_update")
        lines.append("| " + " | ".join([
            n, _fmt(_get(a, "latency", "p50_s")), _fmt(_get(a, "latency", "p95_s")), _fmt(_get(a, "latency", "max_s")),
            _fmt(_get(a, "seconds")), _fmt(_get(fl.get("a_create"), "seconds")), _times(_get(size, "ratio_a")),
            _times(_own_share(a, fl.get("a_create"))),
            _fmt(_get(b, "latency", "p50_s")), _fmt(_get(b, "latency", "p95_s")), _fmt(_get(b, "seconds")),
            _fmt(_get(fl.get("b_update"), "seconds")), _times(_get(size, "ratio_b")),
            _fmt(_get(op.get("d_restart"), "seconds")), _fmt(_get(op.get("e_delete"), "seconds")),
            _fmt(_get(op.get("e_delete"), "extra", "pods_gone_s")),
        ]) + " |")
    lines += [
        "",
        "## Targets",
        "",
        "| target | goal | measured | met? |",
        "|---|---|---|---|",
        *(f"| {t['target']} | {t['goal']} | {t['measured']} | {_verdict(t['met'])} |"
          for t in results["targets"]),
        "",
        "## Cost per scenario",
        "",
        "Operator CPU and peak RSS from /proc; requests and writes from the API server's audit log "
        "(the operator's ServiceAccount, kopf's requests included; the floor's by user agent). "
        "`children done` and `last write` are when the writer's last write to a child object, and its "
        "last write of any kind, reached the server (seconds into the window): the writer's own share of "
        "the time; the rest is the cluster's controllers.",
        "",
        "| N | who | scenario | time s | complete | CPU s | peak RSS MiB | requests | writes | writes/site "
        "| children done s | last write s | reconciles | apiserver CPU s | etcd CPU s | kcm CPU s | machine busy % |",
        "|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, size in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        for who in ("operator", "floor"):
            for name, sc in size.get(who, {}).items():
                u, r, comp = sc["usage"], sc["requests"], sc["usage"]["components_cpu_s"]
                lines.append("| " + " | ".join([
                    n, who, name, _fmt(sc["seconds"]), "yes" if sc["complete"] else "**no**",
                    _fmt(u["operator_cpu_s"]) if who == "operator" else "-",
                    _fmt(u["operator_peak_rss_mib"]) if who == "operator" else "-",
                    str(r.get("requests", "n/a")), str(r.get("writes", "n/a")),
                    _fmt(r.get("writes_per_site", math.nan), 2),
                    _fmt(sc["extra"].get("last_child_write_s", math.nan)),
                    _fmt(sc["extra"].get("last_write_s", math.nan)), _fmt(sc["extra"].get("reconciles", math.nan), 0),
                    _fmt(comp.get("kube-apiserver", math.nan)), _fmt(comp.get("etcd", math.nan)),
                    _fmt(comp.get("kube-controller-manager", math.nan)), _fmt(u["machine_busy_pct"]),
                ]) + " |")
    lines += ["", "## Operator API requests by verb and resource", ""]
    for n, size in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"- **N={n}**")
        for name, sc in size.get("operator", {}).items():
            by = sc["requests"].get("by_verb_resource", {})
            lines.append(f"  - {name}: " + (", ".join(f"{k} ×{v}" for k, v in by.items()) or "none"))
    lines += ["", "## What woke the reconciles", "",
              "Watch events the operator received, by kind, and how many of them queued a reconcile "
              "(the rest: re-listings, the echoes of its own writes, conditions that only moved in time, "
              "a rollout's counts moving without changing what the site's status says). "
              "The reconciles also count rechecks (a rollout's quiet window, git refs) and retries.", ""]
    for n, size in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"- **N={n}**")
        for name, sc in size.get("operator", {}).items():
            extra = sc.get("extra", {})
            kinds = sorted(k.removeprefix("events ") for k in extra if k.startswith("events "))
            counts = ", ".join(f"{k} {extra.get(f'queued {k}', 0):.0f} of {extra[f'events {k}']:.0f}" for k in kinds)
            lines.append(f"  - {name}: {counts or 'none'}; reconciles {extra.get('reconciles', 0):.0f}")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    sizes = sorted(int(n) for n in results["sizes"])
    def series(who: str, scenario: str, *key: str) -> list[float]:
        return [float(_get(results["sizes"][str(n)].get(who, {}).get(scenario), *key)) for n in sizes]

    lines = [
        (series("operator", "a_create", "latency", "p50_s"), "o-", "operator p50 (per site)"),
        (series("operator", "a_create", "latency", "p95_s"), "s-", "operator p95 (per site)"),
        (series("operator", "a_create", "seconds"), "^-", "operator total"),
        (series("floor", "a_create", "seconds"), "v--", "floor total (thinnest client)"),
        (series("floor", "a_create", "latency", "p50_s"), ".:", "floor p50"),
    ]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for values, style, label in lines:
        ax.plot(sizes, values, style, label=label, color="black" if "floor" in label else None)
    measured = [v for values, _, _ in lines for v in values if not math.isnan(v)]
    if measured and min(measured) > 0:  # log axes only when there is something to put on them
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("StaticSites created at once (N)")
    ax.set_ylabel("seconds until Ready")
    ax.set_title("Convergence after creating N sites (scenario a)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _clean(value: Any) -> Any:
    """NaN (a figure that could not be measured) becomes null: strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write(results: dict[str, Any], out: Path) -> str:
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["targets"] = targets(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(_clean(results), indent=2, default=str) + "\n")
    table = markdown(results)
    (out / "results.md").write_text(table)
    plot(results, out / "convergence.png")
    return table
