"""Headless Chromium driven over the Chrome DevTools Protocol, for tests marked `browser`.

Debian's `chromium` (installed by `make chromium`), run as its docs say for a root user in a
container: --no-sandbox, a fresh --user-data-dir, no background networking, and a host
resolver that knows 127.0.0.1 only, so the browser reaches nothing but the test's nginx.
The protocol goes over one WebSocket (websocket-client, already a dependency of the
Kubernetes client) with flattened sessions: one page, its console and its network log.
A missing chromium is a test failure, never a skip.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket

from .nginx_harness import stop

CHROMIUM_MISSING = ("chromium is required for the tests marked `browser` and was not found on PATH. "
                    "Run `make chromium` (or `apt-get install chromium`).")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-dev-shm-usage", "--remote-debugging-port=0", "--window-size=1024,768",
         # Every name but 127.0.0.1 fails to resolve: no traffic leaves this machine.
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
ARTIFACTS = Path(os.environ.get("STATICSITE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "build"
                                / "test-artifacts"))


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    return found


def artifacts_dir(test_name: str) -> Path:
    """Where a test leaves what a person may want to look at (screenshots, logs)."""
    path = ARTIFACTS / test_name
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Page:
    """One tab: send commands, and keep the events it reports."""

    ws: websocket.WebSocket
    session: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 15) -> dict[str, Any]:
        return _call(self.ws, method, params, self.events, session=self.session, timeout=timeout)

    def wait(self, method: str, timeout: float = 15, after: int = 0) -> dict[str, Any]:
        """The first event `method` received after the `after`-th event, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[after:]:
                if event.get("method") == method:
                    return event
            if time.monotonic() > deadline:
                pytest.fail(f"no {method} within {timeout} s")
            _receive(self.ws, self.events, deadline)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        """Poll `expression` until it is truthy (bounded in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := self.evaluate(expression):
                return value
            time.sleep(0.05)
        pytest.fail(f"{expression} stayed falsy for {timeout} s")

    def poll(self, found: Callable[[], list[str]], timeout: float = 15) -> list[str]:
        """Receive events until `found()` is not empty (bounded in time); its last value."""
        deadline = time.monotonic() + timeout
        while not (result := found()) and time.monotonic() < deadline:
            _receive(self.ws, self.events, deadline)
        return result

    def navigate(self, url: str, *, reload: bool = False) -> None:
        mark = len(self.events)
        if reload:
            self.call("Page.reload", {"ignoreCache": True})
        else:
            self.call("Page.navigate", {"url": url})
        self.wait("Page.loadEventFired", after=mark)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def named(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e.get("method") == method]


_ids = iter(range(1, 1 << 30))


def _call(ws: websocket.WebSocket, method: str, params: dict[str, Any] | None, events: list[dict[str, Any]],
          *, session: str | None = None, timeout: float = 15) -> dict[str, Any]:
    msg_id = next(_ids)
    message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    ws.send(json.dumps(message))
    deadline = time.monotonic() + timeout
    while True:
        for i, reply in enumerate(events):
            if reply.get("id") == msg_id:
                del events[i]
                if "error" in reply:
                    pytest.fail(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
        if time.monotonic() > deadline:
            pytest.fail(f"no reply to {method} within {timeout} s")
        _receive(ws, events, deadline)


def _receive(ws: websocket.WebSocket, events: list[dict[str, Any]], deadline: float) -> None:
    ws.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
    with contextlib.suppress(websocket.WebSocketTimeoutException):
        events.append(json.loads(ws.recv()))


@contextmanager
def chromium() -> Iterator[Page]:
    """A fresh headless Chromium with one blank page, stopped (by its PID) afterwards."""
    binary = chromium_binary()
    profile = Path(tempfile.mkdtemp(prefix="staticsite-chromium-"))
    log = (profile.parent / (profile.name + ".log")).open("wb")
    proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start: {Path(log.name).read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=15, suppress_origin=True)
        try:
            browser_events: list[dict[str, Any]] = []
            target = _call(ws, "Target.createTarget", {"url": "about:blank"}, browser_events)["targetId"]
            session = _call(ws, "Target.attachToTarget", {"targetId": target, "flatten": True},
                            browser_events)["sessionId"]
            page = Page(ws, session, events=[e for e in browser_events if e.get("sessionId") == session])
            for domain in ("Page", "Runtime", "Log", "Network"):
                page.call(f"{domain}.enable")
            yield page
        finally:
            ws.close()
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)
        Path(log.name).unlink(missing_ok=True)
