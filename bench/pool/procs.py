"""Memory of a pool pod's processes on this machine: the agent and its nginx (master and
workers), as RSS and as PSS (shared pages split between the processes that map them)."""

from __future__ import annotations

from pathlib import Path


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += children(p)
    return pids


def _kib(pid: int, path: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mib(pid: int) -> dict[str, float]:
    """The process tree of one agent: RSS and PSS of the agent, of nginx, and in all."""
    pids = tree(pid)
    nginx = [p for p in pids if p != pid]
    out = {"agent_rss": _kib(pid, "status", "VmRSS"), "agent_pss": _kib(pid, "smaps_rollup", "Pss"),
           "nginx_rss": sum(_kib(p, "status", "VmRSS") for p in nginx),
           "nginx_pss": sum(_kib(p, "smaps_rollup", "Pss") for p in nginx), "nginx_processes": len(nginx)}
    result = {k: round(v / 1024, 1) if k != "nginx_processes" else v for k, v in out.items()}
    result["total_rss"] = round(result["agent_rss"] + result["nginx_rss"], 1)
    result["total_pss"] = round(result["agent_pss"] + result["nginx_pss"], 1)
    return result
