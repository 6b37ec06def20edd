"""results.json and results.md: each fault, its recovery time, its extra writes, and what was lost."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..timing import percentile


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p50_max(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    return f"{_fmt(percentile(values, 50))} / {_fmt(max(values))}" if values else "–"


def _lost(runs: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for run in runs:
        for key, value in run["invariants"]["counts"].items():
            counts[key] += value
        counts["not converged"] += not run["converged"]
    found = [f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v]
    return "nothing" if not found else "**" + ", ".join(found) + "**"


def markdown(results: dict[str, Any]) -> str:
    runs: list[dict[str, Any]] = results["runs"]
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by[run["scenario"]].append(run)
    lines = [f"# Chaos results: {results['config']['sites']} sites", "",
             f"{results['machine']}; kube {results['config']['kube_version']}; operator at "
             f"{results['config']['commit']}{' (dirty)' if results['config']['dirty'] else ''}; "
             f"seeds {results['config']['seeds']}; {results['config']['wall_s']:.0f} s in all.", "",
             "| scenario | runs | fault | recovery p50 / max (s) | converge p50 / max (s) | excess writes p50 / max "
             "| lost |", "|---|---:|---|---:|---:|---:|---|"]
    for name, group in by.items():
        fault = group[0]["fault"] if len(group) == 1 else group[0]["fault"].split(" (")[0]
        excess = [float(r["excess_writes"]) for r in group if r["excess_writes"] is not None]
        lines.append(f"| {name} | {len(group)} | {fault} | {_p50_max([r['recovery_s'] for r in group])} | "
                     f"{_p50_max([r['converge_s'] for r in group])} | "
                     f"{_p50_max(excess) if excess else '–'} | {_lost(group)} |")
    lines += ["", "Every run, with its seed (replay one with `--scenarios NAME --seed-list SEED`):", "",
              "| scenario | seed | fault at (s) | fault end (s) | recovery (s) | writes | excess | notes |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for run in runs:
        notes = {k: v for k, v in run["extra"].items() if k not in ("flood",)}
        if "flood" in run["extra"]:
            notes |= {k: v for k, v in run["extra"]["flood"].items() if not k.endswith("_wall")}
        lines.append(f"| {run['scenario']} | {run['seed'] if run['seed'] is not None else '–'} | "
                     f"{_fmt(run['fault_at_s'])} | {_fmt(run['fault_end_s'])} | {_fmt(run['recovery_s'])} | "
                     f"{run['writes']} | {run['excess_writes'] if run['excess_writes'] is not None else '–'} | "
                     f"{', '.join(f'{k}={v}' for k, v in notes.items()) or ''} |")
    if (ha := results.get("ha")) is not None:
        kill, term = ha["sigkill_takeover"], ha["graceful_takeover"]
        fence = ha["fencing"]
        lines += ["", "## Leader failover (2 replicas)", "",
                  "| | runs | p50 (s) | max (s) |", "|---|---:|---:|---:|",
                  f"| SIGKILL of the leader → the standby leads | {kill['count']} | {_fmt(kill['p50_s'], 2)} | "
                  f"{_fmt(kill['max_s'], 2)} |",
                  f"| SIGTERM of the leader → the standby leads | {term['count']} | {_fmt(term['p50_s'], 2)} | "
                  f"{_fmt(term['max_s'], 2)} |",
                  *([f"| leader cut off from the API server → the standby leads | {part['count']} | "
                     f"{_fmt(part['p50_s'], 2)} | {_fmt(part['max_s'], 2)} |",
                     f"| partition over → the old leader stands by again | {back['count']} | "
                     f"{_fmt(back['p50_s'], 2)} | {_fmt(back['max_s'], 2)} |"]
                    if (part := ha.get("partition_takeover") or {}).get("count")
                    and (back := ha.get("partition_rejoin") or {}) else []), "",
                  f"Double writers: **{fence['double_writes']}** among {fence['writes_checked']} writes checked "
                  f"against {fence['leaders']} successive Lease holders ({ha['changes_during_failovers']} spec "
                  f"changes during the failovers); writes with no identity: {fence['unattributed_writes']}. "
                  f"After the failovers: {_lost([{'invariants': ha['invariants'], 'converged': ha['converged']}])} "
                  "lost."]
        cost = ha["standby_cost"]
        lines += ["", f"What each replica costs, over {cost.get('window_s', 0):.0f} s idle at the end:", "",
                  "| replica | RSS (MiB) | API requests / min |", "|---|---:|---:|"]
        lines += [f"| {role} | {v['rss_mib']} | {v['requests_per_min']} |" for role, v in cost.items()
                  if isinstance(v, dict)]
    if (fencing := results.get("fencing_all")) is not None:
        lines += ["", f"Over the whole run (every scenario, every operator process): "
                      f"{fencing['double_writes']} double writes among {fencing['writes_checked']} writes, "
                      f"{fencing['leaders']} successive Lease holders."]
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = markdown(results)
    (out / "results.md").write_text(table)
    return table
