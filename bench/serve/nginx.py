"""Real nginx on 127.0.0.1: a config rendered by the operator under test, started and measured.

The rendered config comes from a subprocess that imports the operator from the measured
source (the working tree, or `--git-ref`'s `git archive`), so a figure is tied to a
commit. nginx writes its access log to stdout as in a pod, where the container runtime
reads it from a pipe: here a `cat` drains that pipe, so the log costs what it costs.
As root, nginx's workers drop to `nobody`: files and directories are made world-readable.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import procstat

_RENDER = """
import json, sys
import staticsite_operator
from staticsite_operator.api import models
from staticsite_operator.core.nginxconf import render_nginx_conf
a = json.load(sys.stdin)
sys.stderr.write(staticsite_operator.__file__ + "\\n")
spec = models.StaticSiteSpec.model_validate(a["spec"])
sys.stdout.write(render_nginx_conf(spec, root=a["root"], listen=a["listen"], tmp_dir=a["tmp_dir"]))
"""


def binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        raise SystemExit("nginx is required: run `make nginx` (Debian's nginx-light)")
    return found


def render(python_path: Path, spec: dict[str, Any], *, root: Path, listen: str, tmp: Path) -> str:
    """nginx.conf as the operator at `python_path` renders it (fails loudly if that import is not it)."""
    env = {**os.environ, "PYTHONPATH": str(python_path)}
    args = json.dumps({"spec": spec, "root": str(root), "listen": listen, "tmp_dir": str(tmp)})
    proc = subprocess.run([sys.executable, "-c", _RENDER], input=args, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"rendering the config failed:\n{proc.stderr}")
    imported = Path(proc.stderr.splitlines()[0]).resolve()
    if not imported.is_relative_to(python_path.resolve()):
        raise SystemExit(f"rendered with {imported}, not the operator under {python_path}")
    return proc.stdout


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for dirpath, _dirs, names in os.walk(root):
        Path(dirpath).chmod(0o755)
        for name in names:
            (Path(dirpath) / name).chmod(0o644)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Nginx:
    """A running nginx: its master, and where it listens."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """The master's children (its workers), from /proc."""
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    out.append(int(entry.name))
        return sorted(out)

    def pids(self) -> list[int]:
        return [self.proc.pid, *self.workers()]

    def cpu_seconds(self) -> float:
        return sum(procstat.cpu_seconds(p) for p in self.pids())


def memory(pid: int) -> dict[str, float]:
    """RSS, its peak (VmHWM) and PSS (shared pages divided among their users), in MiB."""
    status = procstat.memory_kib(pid)
    out = {"rss": status.get("VmRSS", 0) / 1024, "hwm": status.get("VmHWM", 0) / 1024}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["pss"] = int(line.split()[1]) / 1024
    except OSError:
        out["pss"] = float("nan")
    return out


def _healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    host, port = url.removeprefix("http://").split(":")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


@contextmanager
def running(name: str, workdir: Path, conf_for_port: Any) -> Iterator[Nginx]:
    """Start nginx with `conf_for_port(port) -> str`, in `workdir` (its tmp and logs); stop it after."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    log = workdir / "nginx.log"
    drain = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert drain.stdin is not None
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = free_port()
            conf = workdir / "nginx.conf"
            conf.write_text(conf_for_port(port))
            with log.open("ab") as err:
                proc = subprocess.Popen([binary(), "-e", "stderr", "-c", str(conf)], stdout=drain.stdin,
                                        stderr=err, stdin=subprocess.DEVNULL)
            if _healthy(f"http://127.0.0.1:{port}", proc):
                break
            _stop(proc)
            proc = None
        if proc is None:
            raise SystemExit(f"nginx ({name}) did not start:\n{log.read_text(errors='replace')[-3000:]}")
        yield Nginx(name, port, proc, log)
    finally:
        if proc is not None:
            _stop(proc)
        drain.stdin.close()
        drain.wait(timeout=10)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
