"""nginx as the agent's child: test a configuration, start, reload, and learn what it runs."""

from __future__ import annotations

import http.client
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..core.poolconf import STATUS_PATH

log = logging.getLogger(__name__)

SETTLE = 0.4


class Nginx:
    def __init__(self, binary: str, main: Path, status_port: int) -> None:
        self.binary = binary
        self.main = main
        self.status_port = status_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.refused = ""
        self._refusal = threading.Event()

    def test(self, conf: Path) -> tuple[bool, str]:
        """`nginx -t` of a configuration: (passed, its output)."""
        proc = subprocess.run([self.binary, "-t", "-q", "-e", "stderr", "-c", str(conf)],
                              check=False, capture_output=True, text=True, timeout=120)
        return proc.returncode == 0, (proc.stdout + proc.stderr).strip()

    def start(self) -> None:
        # nginx builds its configuration in 16 KiB pool blocks; with glibc's default they come
        # from the heap, which a reload's freed configuration leaves fragmented, and the
        # master doubled its memory at the first reload (1000 sites: 92 -> 177 MiB). Blocks
        # mmap-ed one by one go back to the system when freed (110 MiB, reload after reload).
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "8192"}
        self.proc = subprocess.Popen([self.binary, "-e", "stderr", "-c", str(self.main)],
                                     stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        threading.Thread(target=self._read_errors, name="nginx-stderr", daemon=True).start()

    def _read_errors(self) -> None:
        """Pass nginx's log on, and notice the master refusing a configuration ([emerg])."""
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            sys.stderr.write(line)
            if "[emerg]" in line:
                self.refused = line.strip()
                self._refusal.set()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reload(self) -> None:
        """A graceful reload: new workers take the new configuration, old ones finish their requests.
        The master parses the configuration first and, if it is refused, keeps the old one
        (`wait_for` then answers False, and `refused` says why)."""
        assert self.proc is not None
        self._refusal.clear()
        self.refused = ""
        self.proc.send_signal(signal.SIGHUP)

    def generation(self) -> int | None:
        """The configuration generation the running workers serve (None: not answering)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.status_port, timeout=2)
        try:
            conn.request("GET", STATUS_PATH)
            resp = conn.getresponse()
            body = resp.read()
            return int(body) if resp.status == 200 else None
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def wait_for(self, generation: int, timeout: float = 600) -> bool:
        """Until nginx serves `generation` only. New workers answer first; the master tells
        the old ones to stop accepting about 100 ms after starting the new ones (its
        "allow new processes to start" pause), so `SETTLE` seconds more pass before this
        pod says it serves the new revisions. False when the master refused the
        configuration (an [emerg] line), or died; a slow reload (a busy node) is waited for."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive() or self._refusal.is_set():
                return False
            if self.generation() == generation:
                time.sleep(SETTLE)
                return self.alive()
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        """SIGQUIT: finish the requests in flight, then exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
