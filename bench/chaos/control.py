"""Kill and restart control-plane components of the chaos cluster (kube-apiserver, etcd), and revive the rest.

kwokctl's binary runtime starts each component as a daemon and writes its pid to
`<cluster dir>/pids/<component>.pid`; it has no command to stop or start one
component, and nothing restarts one that exits. So the suite does what a supervisor
would: it records every component's command line, working directory and environment
from /proc when it starts, SIGKILLs a component, starts the same command again at
once in a new session (logging where kwokctl's did) and updates its pid file (so
`kwokctl delete cluster` still stops it). kube-controller-manager and kube-scheduler
exit by design when they cannot renew their own leases while the API server is away;
`revive` starts them again.

This machine is shared: a component's port, once freed by the kill, could be taken by
another cluster before the restarted process binds it. The port is checked free before
the start (the restart is immediate, so the window is the component's start-up), and
the API server is only ever reached with the cluster's own CA and credentials, so a
stranger on the port is a failed scenario, never a conversation. Only pids read from
this cluster's own pid files, whose command line runs this cluster's binaries, are
ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PORT_FLAGS = re.compile(r"^--(?:secure-port=|listen-client-urls=|listen-peer-urls=)(?:\S*:)?(\d+)$")


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: str
    env: dict[str, str]

    def ports(self) -> list[int]:
        return [int(m.group(1)) for arg in self.argv if (m := PORT_FLAGS.match(arg))]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _listening(port: int) -> bool:
    """Whether some socket LISTENs on `port` (/proc/net/tcp*; state 0A). A bind test would also trip
    over the killed process's closing connections, which do not stop its successor from binding."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


@dataclass
class ControlPlane:
    cluster_dir: Path
    commands: dict[str, Command] = field(default_factory=dict)
    revived: list[tuple[float, str]] = field(default_factory=list)   # (wall time, component) by the supervisor
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pid_file(self, name: str) -> Path:
        return self.cluster_dir / "pids" / f"{name}.pid"

    def _pid(self, name: str) -> int | None:
        """The component's pid, if that process is alive and runs this cluster's binary."""
        try:
            pid = int(self.pid_file(name).read_text().strip())
            argv0 = (Path(f"/proc/{pid}") / "cmdline").read_bytes().split(b"\0")[0].decode()
            status = (Path(f"/proc/{pid}") / "status").read_text()
        except (OSError, ValueError):
            return None
        if "State:\tZ" in status:  # exited; reap it if it is ours (restarted earlier), else init will
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return None
        return pid if argv0.startswith(str(self.cluster_dir)) else None

    def record(self) -> None:
        """Remember how every running component was started."""
        for pid_file in sorted((self.cluster_dir / "pids").glob("*.pid")):
            name = pid_file.stem
            pid = self._pid(name)
            if pid is None:
                continue
            proc = Path(f"/proc/{pid}")
            argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            env = dict(line.split("=", 1) for line in (proc / "environ").read_bytes().decode().split("\0")
                       if "=" in line)
            self.commands[name] = Command(argv, os.readlink(proc / "cwd"), env)

    def kill(self, name: str) -> None:
        pid = self._pid(name)
        if pid is None:
            raise RuntimeError(f"{name} is not running")
        os.kill(pid, signal.SIGKILL)
        # Dead means its ports are released: a multi-threaded process shows as a zombie (and loses
        # its command line) while its other threads still hold its sockets.
        ports = self.commands[name].ports() if name in self.commands else []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or (
                    "State:\tZ" in _read(f"/proc/{pid}/status") and not any(_listening(p) for p in ports)):
                break
            time.sleep(0.02)

    def start(self, name: str) -> int:
        command = self.commands[name]
        deadline = time.monotonic() + 10  # the previous process may still be releasing them
        while (taken := [p for p in command.ports() if _listening(p)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if taken:
            raise RuntimeError(f"cannot restart {name}: port {taken} was taken by another process meanwhile")
        log = self.cluster_dir / "logs" / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(command.argv, cwd=command.cwd, env=command.env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid_file(name).write_text(str(proc.pid))
        return proc.pid

    def revive(self) -> list[str]:
        """Start again every recorded component that is no longer running; returns their names."""
        dead = [name for name in self.commands if self._pid(name) is None]
        for name in dead:
            self.start(name)
        return dead

    def supervise(self, stop: threading.Event, say: Callable[[str], None], every: float = 2.0) -> threading.Thread:
        """Revive dead components every `every` s until `stop`; a fault restarting one holds `lock`."""
        def loop() -> None:
            while not stop.wait(every):
                try:
                    with self.lock:
                        t0 = time.monotonic()
                        for name in self.revive():
                            self.revived.append((time.time(), name))
                            say(f"supervisor: {name} had exited; started again ({time.monotonic() - t0:.1f}s)")
                except Exception as exc:  # a dead supervisor would hide every later death
                    self.revived.append((time.time(), f"revive failed: {exc}"))
                    say(f"supervisor: {exc}")
        thread = threading.Thread(target=loop, name="supervisor", daemon=True)
        thread.start()
        return thread
