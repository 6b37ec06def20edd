"""results.json and results.md of `make bench-serve`, and the table printed at the end."""

from __future__ import annotations

import math
from typing import Any

THROUGHPUT_TARGET = 0.9
THROUGHPUT_TARGET_LARGE_RULESETS = {"redirects-1000": 0.5}
P99_TARGET = 1.2


def _f(x: Any, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def target_met(name: str, ratios: dict[str, float]) -> bool:
    floor = THROUGHPUT_TARGET_LARGE_RULESETS.get(name, THROUGHPUT_TARGET)
    return ratios["throughput"] >= floor and ratios["p99"] <= P99_TARGET


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | rendered req/s | baseline req/s | throughput ÷ baseline (rounds) | p50 ÷ | p99 ÷ "
        "| p99 ms | nginx CPU µs/req (÷) | RSS per worker, MiB (baseline) | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in results["scenarios"].items():
        if not s.get("ok"):
            lines.append(f"| {name} | failed: {'; '.join(s.get('problems', []))[:300]} |||||||||")
            continue
        r, b, q = s["rendered"], s["baseline"], s["ratios"]
        rss = max(r["memory"].get("worker_rss_mib") or [math.nan])
        brss = max(b["memory"].get("worker_rss_mib") or [math.nan])
        floor = THROUGHPUT_TARGET_LARGE_RULESETS.get(name, THROUGHPUT_TARGET)
        lines.append(
            f"| {name} | {_f(r['rps'])} | {_f(b['rps'])} | **{_f(q['throughput'], 2)}x** "
            f"({_f(q['throughput_min'], 2)}-{_f(q['throughput_max'], 2)}) | {_f(q['p50'], 2)}x | {_f(q['p99'], 2)}x "
            f"| {_f(r['p99_ms'], 2)} | {_f(r.get('cpu_us_per_request'), 1)} ({_f(q.get('cpu_per_request'), 2)}x) "
            f"| {_f(rss, 1)} ({_f(brss, 1)}) "
            f"| {'met' if target_met(name, q) else 'missed'} (>= {floor}x, p99 <= {P99_TARGET}x) |")
    return lines


def steady_table(results: dict[str, Any]) -> list[str]:
    lines = ["| scenario | rate req/s | nginx CPU, millicores | p99 ms | PSS master+workers, MiB "
             "| peak RSS per worker under saturation, MiB |", "|---|---:|---:|---:|---:|---:|"]
    for name, s in results["scenarios"].items():
        if not s.get("ok") or "steady" not in s:
            continue
        st = s["steady"]
        lines.append(f"| {name} | {_f(st['rps'])} | {_f(st['millicores'], 1)} | {_f(st['p99_ms'], 2)} "
                     f"| {_f(st['memory'].get('total_pss_mib'), 1)} "
                     f"| {_f(s['rendered'].get('worker_peak_rss_mib'), 1)} |")
    return lines


def compare_table(results: dict[str, Any], before: dict[str, Any]) -> list[str]:
    lines = [f"Before: {before['source']}; after: {results['source']}.", "",
             "| scenario | rendered req/s before | after | throughput ÷ baseline before | after "
             "| p99 ÷ baseline before | after |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in results["scenarios"].items():
        old = before["scenarios"].get(name, {})
        if not (s.get("ok") and old.get("ok")):
            continue
        lines.append(f"| {name} | {_f(old['rendered']['rps'])} | {_f(s['rendered']['rps'])} "
                     f"| {_f(old['ratios']['throughput'], 2)}x | {_f(s['ratios']['throughput'], 2)}x "
                     f"| {_f(old['ratios']['p99'], 2)}x | {_f(s['ratios']['p99'], 2)}x |")
    return lines


def markdown(results: dict[str, Any], before: dict[str, Any] | None) -> str:
    m, o = results["machine"], results["options"]
    out = [
        "# Serving benchmark: the rendered nginx.conf against a hand-written one",
        "",
        f"{m['date']}, {results['source']}. {m['nproc']} CPUs, {m['nginx']}, {m['wrk']}; load average "
        f"{m['loadavg_start']} at start, {m['loadavg_end']} at end. wrk: {o['threads']} threads, "
        f"{o['connections']} connections, {o['rounds']} rounds of {o['seconds']:g} s per config, alternating.",
        "",
        "## Throughput and latency",
        "",
        "Figures are medians over rounds; ratios are rendered ÷ baseline, taken round by round "
        "(the two runs of a round are back to back) and then their median. On a shared machine, "
        "nginx's CPU time per request varies far less than throughput does.",
        "",
        *table(results),
        "",
        f"## Steady load: the rendered config at {o['steady_rate']:g} requests/s "
        f"({o['steady_connections']} connections)",
        "",
        *steady_table(results),
    ]
    if before is not None:
        out += ["", "## Before and after", "", *compare_table(results, before)]
    return "\n".join(out) + "\n"
