"""`python -m bench.serve` (`make bench-serve BENCH_SERVE_ARGS=...`): serving speed against hand-tuned nginx.

For each scenario (bench/serve/scenarios.py), real nginx serves the same files with the
config the operator renders and with a hand-written one (bench/serve/baselines.py), on
127.0.0.1; both are checked request by request, then loaded with wrk in alternating
rounds. Writes results.json and results.md to --out and prints the tables. See
bench/README.md, "Serving".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import source
from . import load, measure, nginx, report
from .scenarios import all_scenarios


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [s.name for s in all_scenarios()]
    p = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", default=",".join(names), help="comma-separated, from: %(default)s")
    p.add_argument("--seconds", type=float, default=5, help="length of each wrk run (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="runs per config and scenario (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default: %(default)s)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default: %(default)s)")
    p.add_argument("--steady-rate", type=float, default=100,
                   help="requests/s of the steady phase, for the resource figures (default: %(default)s)")
    p.add_argument("--steady-seconds", type=float, default=10, help="length of the steady phase (default: %(default)s)")
    p.add_argument("--git-ref", default=None, help="render with the operator as committed at this ref")
    p.add_argument("--compare", type=Path, default=None, help="an earlier results.json: adds a before/after table")
    p.add_argument("--out", type=Path, default=Path("bench/results/serve"), help="output directory (%(default)s)")
    args = p.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - set(names)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if max(args.seconds, args.steady_seconds) > 60 or args.rounds > 10:
        p.error("--seconds and --steady-seconds are at most 60, --rounds at most 10: the run must stay bounded")
    return args


def _version(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    return (proc.stdout + proc.stderr).splitlines()[0].strip()


def machine() -> dict[str, Any]:
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "nproc": os.cpu_count(), "kernel": platform.release(),
            "nginx": _version([nginx.binary(), "-v"]), "wrk": _version([load.wrk_binary(), "--version"]),
            "loadavg_start": ", ".join(f"{x:.2f}" for x in os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    opts = measure.Options(seconds=args.seconds, rounds=args.rounds, threads=args.threads,
                           connections=args.connections, steady_rate=args.steady_rate,
                           steady_seconds=args.steady_seconds)
    info = machine()
    scratch = Path(tempfile.mkdtemp(prefix="staticsite-serve-"))
    scratch.chmod(0o755)  # nginx's workers (nobody, under root) must reach the files
    try:
        src = source.resolve(args.git_ref, scratch / "source")
        results: dict[str, Any] = {"source": src.describe(), "commit": src.commit, "machine": info,
                                   "options": vars(opts), "scenarios": {}}
        for s in all_scenarios():
            if s.name not in args.scenarios:
                continue
            print(f"{s.name}: {s.summary}", file=sys.stderr, flush=True)
            results["scenarios"][s.name] = measure.scenario(s, scratch / "run", opts, python_path=src.python_path)
            for conf in ("rendered", "baseline"):  # kept for reading, next to the figures
                made = scratch / "run" / s.name / conf / "nginx.conf"
                if made.exists():
                    (args.out / "configs").mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(made, args.out / "configs" / f"{s.name}.{conf}.conf")
        info["loadavg_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    before = json.loads(args.compare.read_text()) if args.compare else None
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    md = report.markdown(results, before)
    (args.out / "results.md").write_text(md)
    print(md)
    return 0 if all(s.get("ok") for s in results["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
