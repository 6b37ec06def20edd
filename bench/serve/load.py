"""Load from `wrk` (Debian's package), bounded in time, with a Lua script per scenario.

The script sends the scenario's requests in a fixed loop (each connection takes the
next one) and prints wrk's summary as one JSON line: requests, bytes, socket errors,
responses with status >= 400, and latency percentiles in microseconds. With `rate`,
each connection waits `connections / rate` seconds before each request (wrk's `delay`),
which gives a steady load at about `rate` requests per second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .scenarios import Request

WRK_MISSING = ("wrk is required: `make bench-serve` installs Debian's package (apt-get install wrk); "
               "install it and re-run")

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(WRK_MISSING)
    return found


def _lua_string(s: str) -> str:
    return '"' + "".join(c if c.isalnum() or c in "/-_.?=&:;, *'<>" else f"\\{ord(c)}" for c in s) + '"'


def script(requests: list[Request], *, rate: float = 0, connections: int = 1) -> str:
    """The Lua script for wrk: the loop of requests, an optional steady rate, the JSON summary."""
    reqs = []
    for r in requests:
        hdrs = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in r.headers.items())
        reqs.append(f"wrk.format(\"GET\", {_lua_string(r.path)}, {{{hdrs}}})")
    # Formatted in init(): wrk sets the Host header that wrk.format uses only after loading the script.
    lines = ["local reqs = {}", "local i = 0", "init = function(args)", "  reqs = {",
             *(f"    {r}," for r in reqs), "  }", "end",
             "request = function()", "  i = i % #reqs + 1", "  return reqs[i]", "end"]
    if rate:
        lines += [f"delay = function() return {1000 * connections / rate:.3f} end"]
    return "\n".join(lines) + "\n" + _DONE


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    status_4xx_5xx: int
    mib_per_s: float


def run(url: str, requests: list[Request], workdir: Path, *, seconds: float, threads: int, connections: int,
        rate: float = 0) -> Result:
    """One wrk run against `url`; its summary, or SystemExit with wrk's output."""
    lua = workdir / "load.lua"
    lua.write_text(script(requests, rate=rate, connections=connections))
    cmd = [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
           "-s", str(lua), url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    d = json.loads(line)
    secs = d["duration_us"] / 1e6
    return Result(requests=d["requests"], seconds=secs, rps=d["requests"] / secs, p50_ms=d["p50_us"] / 1000,
                  p90_ms=d["p90_us"] / 1000, p99_ms=d["p99_us"] / 1000, max_ms=d["max_us"] / 1000,
                  socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"], status_4xx_5xx=d["status"],
                  mib_per_s=d["bytes"] / secs / (1 << 20))
