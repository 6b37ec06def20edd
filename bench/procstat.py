"""CPU and memory of processes, from /proc, per scenario window.

Peak memory is the kernel's own high-water mark (VmHWM), reset at the start of each
window through /proc/<pid>/clear_refs ("5"), so the peak of a window is exact rather
than the best of a sampling loop. CPU is utime+stime of all the process's threads.
The machine's busy share (from /proc/stat) says whether the 2 cores were saturated,
which on a shared host also reveals load that is not ours.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds; 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # comm may contain spaces; fields after it are fixed
    return (int(fields[11]) + int(fields[12])) / TICK


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB (empty if the process is gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class Usage:
    """What one window cost: the operator's CPU and peak memory, the control plane's CPU."""

    seconds: float = 0.0
    operator_cpu_s: float = 0.0
    operator_peak_rss_mib: float = 0.0
    operator_end_rss_mib: float = 0.0
    peak_exact: bool = True          # False when VmHWM could not be reset (lifetime peak)
    machine_busy_pct: float = 0.0    # of all cores
    components_cpu_s: dict[str, float] = field(default_factory=dict)


class Meter:
    """Measures a window; `switch` follows the operator across a restart."""

    def __init__(self, pid: int | None, components: dict[str, int]) -> None:
        self.components = components
        self.usage = Usage()
        self._t0 = time.monotonic()
        self._ticks = machine_ticks()
        self._comp0 = {name: cpu_seconds(p) for name, p in components.items()}
        self._pid: int | None = None
        self._cpu_before = 0.0  # CPU of earlier operator processes in this window
        self.switch(pid)

    def switch(self, pid: int | None) -> None:
        """Count the current operator process so far, then follow `pid` from its current state."""
        if self._pid is not None:
            self._close_process()
        self._pid = pid
        if pid is not None:
            self._cpu0 = cpu_seconds(pid)
            self.usage.peak_exact = reset_peak(pid) and self.usage.peak_exact

    def _close_process(self) -> None:
        assert self._pid is not None
        mem = memory_kib(self._pid)
        self._cpu_before += cpu_seconds(self._pid) - self._cpu0
        self.usage.operator_peak_rss_mib = max(self.usage.operator_peak_rss_mib, mem.get("VmHWM", 0) / 1024)
        self.usage.operator_end_rss_mib = mem.get("VmRSS", 0) / 1024

    def stop(self) -> Usage:
        if self._pid is not None:
            self._close_process()
            self._pid = None
        busy, total = machine_ticks()
        u = self.usage
        u.seconds = time.monotonic() - self._t0
        u.operator_cpu_s = round(self._cpu_before, 2)
        u.operator_peak_rss_mib = round(u.operator_peak_rss_mib, 1)
        u.operator_end_rss_mib = round(u.operator_end_rss_mib, 1)
        u.machine_busy_pct = round(100 * (busy - self._ticks[0]) / max(1, total - self._ticks[1]), 1)
        u.components_cpu_s = {name: round(cpu_seconds(p) - self._comp0[name], 2)
                              for name, p in self.components.items()}
        return u
