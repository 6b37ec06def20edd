"""CPU profiles of the operator under test, with py-spy (sampling; it attaches to the process).

`python -m bench --profile` records each operator process of the run into
`<out>/profiles/operator-<N>-<run>.speedscope.json` (open them in speedscope.app) and
writes `<out>/profiles/summary.md`: the functions where the operator spent its time,
by samples that had them on the stack (inclusive) and at the top (self).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


class Profiler:
    def __init__(self, pid: int, output: Path, rate: int = 50) -> None:
        beside = Path(sys.executable).with_name("py-spy")  # the venv's, when the venv is not on PATH
        binary = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
        if binary is None:
            raise RuntimeError("py-spy is needed for --profile: `.venv/bin/pip install py-spy` (bench group)")
        output.parent.mkdir(parents=True, exist_ok=True)
        self.output = output
        # --nonblocking: never pause the operator to sample it (the figures stay honest).
        # --gil: only the thread holding the GIL, i.e. CPU spent in Python, not threads waiting on I/O.
        self.proc = subprocess.Popen([binary, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking",
                                      "--gil", "--format", "speedscope", "--output", str(output)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def summarize(profiles: list[Path], top: int = 25) -> str:
    """The functions that took the most samples, inclusive and self, over every profile."""
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for path in profiles:
        doc = json.loads(path.read_text())
        frames = [f"{f['name']} ({Path(f.get('file', '?')).name}:{f.get('line', '?')})"
                  for f in doc["shared"]["frames"]]
        for profile in doc["profiles"]:
            for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
                total += weight
                for name in {frames[i] for i in stack}:
                    inclusive[name] += weight
                if stack:
                    self_time[frames[stack[-1]]] += weight
    lines = [f"# Operator CPU profile ({total} samples over {len(profiles)} processes)", "",
             "| inclusive % | self % | function |", "|---:|---:|---|"]
    for name, count in inclusive.most_common(top):
        lines.append(f"| {100 * count / max(total, 1):.1f} | {100 * self_time[name] / max(total, 1):.1f} | `{name}` |")
    lines += ["", "Self time, top:", ""]
    lines += [f"- {100 * count / max(total, 1):.1f}% `{name}`" for name, count in self_time.most_common(top)]
    return "\n".join(lines) + "\n"
