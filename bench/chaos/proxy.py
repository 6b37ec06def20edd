"""A fault-injecting proxy on 127.0.0.1 between an operator and the API server.

The operator's kubeconfig points at `http://127.0.0.1:<port>` (loopback only, plain
HTTP, its bearer token passed through); the proxy forwards every request to the real
API server over TLS, verified with the cluster's CA, and streams responses back chunk
by chunk, so watches work through it. Its faults:

- **stall**: every connection open at that moment, and every one opened during the
  stall, stops forwarding in both directions, for good, and yet stays open: a load
  balancer that forgot its connection table (kopf #585). Connections opened after
  the stall ends work. Only the client's own timeouts get it out.
- **errors**: for a while, a seeded fraction of requests is answered by the proxy
  itself with 429 (with Retry-After) or 500/503, as the API server's priority and
  fairness or a failing etcd would answer; the rest is forwarded.
- **partition**: every open connection is reset at once, and every request that
  arrives while the partition lasts has its connection reset too: the API server is
  unreachable from this client only (other replicas, the driver and the control plane
  still reach it).
- **slow**: for a while, every request waits a fixed delay before it is forwarded: an
  API server slow under load (answers take seconds, nothing fails).
- **expire**: every open watch is cut, and for a while the first watch of each
  collection that resumes from a resourceVersion is answered with the API server's
  `ERROR 410 Expired` event (its watch cache no longer holds that version, as after
  etcd compaction): the client must list again. Once per collection, as compaction
  would: a watch from the fresh listing's version is served.

It counts what it forwarded and answered, per second, so backoff can be judged
(`Stats`). It runs in a process of its own (`ProxyProcess`, commanded over a pipe):
in the harness's process it would share an interpreter lock with the driver's and
the watches' threads, and a slow proxy is a fault of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                        "proxy-authorization", "proxy-authenticate", "host", "content-length"})


@dataclass
class Stats:
    forwarded: Counter[int] = field(default_factory=Counter)   # second (since start) -> requests forwarded
    injected: Counter[int] = field(default_factory=Counter)    # second -> requests answered with an error
    frozen: int = 0                                            # requests that hit a stalled connection

    def rate(self, start: int, end: int) -> float:
        """Requests per second that reached the proxy (forwarded or answered) in [start, end)."""
        total = sum(self.forwarded[s] + self.injected[s] for s in range(start, end))
        return total / max(1, end - start)

    def peak(self, start: int, end: int) -> int:
        return max((self.forwarded[s] + self.injected[s] for s in range(start, end)), default=0)


class FaultProxy:
    def __init__(self, upstream: str, ca_file: str, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self.port = 0
        self.started = time.time()
        self.stats = Stats()
        self._rng = random.Random(seed)  # the fault schedule is replayable; the traffic is not
        self._dead: set[int] = set()     # id() of stalled connections (transports)
        self._stall_until = 0.0          # monotonic; new connections before then are stalled too
        self._error_until = 0.0
        self._error_rate = 0.0
        self._cut_until = 0.0            # partition
        self._slow_until, self._slow_delay = 0.0, 0.0
        self._expire_until = 0.0
        self._expired_paths: set[str] = set()   # collections answered 410 during this expiry
        self._transports: dict[int, Any] = {}   # id -> transport of every open connection
        self._watching: set[int] = set()        # ids of connections carrying a watch now
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)

    # --- control (any thread) ----------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)

    def stall(self, seconds: float) -> None:
        """Freeze every open connection for good, and every new one for `seconds`."""
        def begin() -> None:
            self._stall_until = time.monotonic() + seconds
            self._dead.update(self._open)
        self._loop.call_soon_threadsafe(begin)

    def errors(self, rate: float, seconds: float) -> None:
        """Answer a fraction `rate` of requests with 429/500/503 for `seconds`."""
        def begin() -> None:
            self._error_rate, self._error_until = rate, time.monotonic() + seconds
        self._loop.call_soon_threadsafe(begin)

    def partition(self, seconds: float) -> None:
        """Reset every open connection, and every new one for `seconds`."""
        def begin() -> None:
            self._cut_until = time.monotonic() + seconds
            self._abort(list(self._transports))
        self._loop.call_soon_threadsafe(begin)

    def slow(self, delay: float, seconds: float) -> None:
        """Delay every request by `delay` s before forwarding it, for `seconds`."""
        def begin() -> None:
            self._slow_delay, self._slow_until = delay, time.monotonic() + seconds
        self._loop.call_soon_threadsafe(begin)

    def expire(self, seconds: float) -> None:
        """Cut every open watch; answer resumed watches with ERROR 410 for `seconds`."""
        def begin() -> None:
            self._expire_until = time.monotonic() + seconds
            self._expired_paths.clear()
            self._abort(list(self._watching))
        self._loop.call_soon_threadsafe(begin)

    def _abort(self, keys: list[int]) -> None:
        for key in keys:
            transport = self._transports.pop(key, None)
            self._watching.discard(key)
            if transport is not None and not transport.is_closing():
                transport.abort()

    def second(self) -> int:
        """The stats' current second."""
        return int(time.time() - self.started)

    # --- the server (its own thread and loop) -----------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._open: set[int] = set()
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=0)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                              timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        app = aiohttp.web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = aiohttp.web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await self._session.close()
            await runner.cleanup()

    def _connection(self, request: aiohttp.web.Request) -> int:
        transport = request.transport
        key = id(transport)
        if len(self._transports) > 512:  # forget closed connections now and then
            self._transports = {k: t for k, t in self._transports.items() if not t.is_closing()}
        self._transports[key] = transport
        if key not in self._open:
            self._open.add(key)
            if time.monotonic() < self._stall_until:
                self._dead.add(key)  # opened during the stall: it never works either
        return key

    async def _freeze(self) -> None:
        """A stalled connection: nothing moves until the client gives up (or the proxy stops)."""
        self.stats.frozen += 1
        assert self._stopping is not None
        await self._stopping.wait()
        raise aiohttp.web.HTTPServiceUnavailable

    def _injected(self) -> aiohttp.web.Response | None:
        if time.monotonic() >= self._error_until or self._rng.random() >= self._error_rate:
            return None
        code = self._rng.choice((429, 429, 500, 503))
        reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}[code]
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
                "message": f"injected by the chaos proxy ({code})"}
        headers = {"Retry-After": "1"} if code == 429 else {}
        self.stats.injected[self.second()] += 1
        return aiohttp.web.Response(status=code, text=json.dumps(body), content_type="application/json",
                                    headers=headers)

    async def _handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        conn = self._connection(request)
        if conn in self._dead:
            await self._freeze()
        now = time.monotonic()
        if now < self._cut_until:
            self.stats.injected[self.second()] += 1
            self._abort([conn])
            raise aiohttp.web.HTTPServiceUnavailable  # never sent: the connection is gone
        if (error := self._injected()) is not None:
            return error
        if now < self._slow_until:
            await asyncio.sleep(self._slow_delay)
        watch = request.query.get("watch") in ("true", "1")
        if (watch and now < self._expire_until and request.query.get("resourceVersion")
                and request.path not in self._expired_paths):
            self._expired_paths.add(request.path)
            self.stats.injected[self.second()] += 1
            return self._expired()
        self.stats.forwarded[self.second()] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        if watch:
            self._watching.add(conn)
        try:
            return await self._forward(request, conn, headers, body)
        except aiohttp.ClientConnectorError:
            # The API server is down (being restarted): what a load balancer in front of it answers.
            return aiohttp.web.Response(status=503, text="upstream unavailable")
        finally:
            self._watching.discard(conn)

    @staticmethod
    def _expired() -> aiohttp.web.Response:
        """What the API server streams when a watch asks for a version it no longer has."""
        event = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                             "reason": "Expired", "code": 410,
                                             "message": "too old resource version (injected by the chaos proxy)"}}
        return aiohttp.web.Response(status=200, text=json.dumps(event) + "\n", content_type="application/json")

    async def _forward(self, request: aiohttp.web.Request, conn: int, headers: dict[str, str],
                       body: bytes) -> aiohttp.web.StreamResponse:
        async with self._session.request(request.method, self.upstream + request.rel_url.raw_path_qs,
                                         headers=headers, data=body or None, allow_redirects=False) as upstream:
            response = aiohttp.web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    if conn in self._dead:
                        await self._freeze()
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                pass  # the client went away (a killed operator, a closed watch): nothing to forward to
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                # The API server went away mid-response (a restart): the client must see its connection
                # break, as it would without the proxy, not a response that never ends.
                if request.transport is not None:
                    request.transport.close()
            return response


def kubeconfig_through(proxy_port: int, token: str) -> dict[str, Any]:
    """A kubeconfig for the operator that goes through the proxy (loopback, plain HTTP)."""
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "chaos",
        "clusters": [{"name": "proxy", "cluster": {"server": f"http://127.0.0.1:{proxy_port}"}}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "chaos", "context": {"cluster": "proxy", "user": "operator"}}],
    }


def serve(argv: list[str] | None = None) -> None:
    """`python -m bench.chaos.proxy UPSTREAM CA SEED`: one line of JSON ({port, started}), then commands
    on stdin, one per line, each answered by one line of JSON: `stall S`, `errors RATE S`, `partition S`,
    `slow DELAY S`, `expire S`, `stats`."""
    upstream, ca_file, seed = argv or sys.argv[1:4]
    proxy = FaultProxy(upstream, ca_file, int(seed)).start()
    print(json.dumps({"port": proxy.port, "started": proxy.started}), flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "stall":
            proxy.stall(float(args[0]))
        elif command == "errors":
            proxy.errors(float(args[0]), float(args[1]))
        elif command == "partition":
            proxy.partition(float(args[0]))
        elif command == "slow":
            proxy.slow(float(args[0]), float(args[1]))
        elif command == "expire":
            proxy.expire(float(args[0]))
        elif command == "stop":
            break
        stats = proxy.stats
        print(json.dumps({"forwarded": dict(stats.forwarded), "injected": dict(stats.injected),
                          "frozen": stats.frozen}), flush=True)
    proxy.stop()


class ProxyProcess:
    """A FaultProxy in a child process, with the same controls."""

    def __init__(self, upstream: str, ca_file: str, seed: int, log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as err:
            self._proc = subprocess.Popen([sys.executable, "-m", "bench.chaos.proxy", upstream, ca_file, str(seed)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                          cwd=Path(__file__).resolve().parents[2])
        self._lock = threading.Lock()
        assert self._proc.stdout is not None
        hello = json.loads(self._proc.stdout.readline() or "{}")
        if "port" not in hello:
            raise RuntimeError("the fault proxy did not start")
        self.port, self.started = int(hello["port"]), float(hello["started"])

    def _command(self, line: str) -> dict[str, Any]:
        with self._lock:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
            answer: dict[str, Any] = json.loads(self._proc.stdout.readline() or "{}")
            return answer

    def stall(self, seconds: float) -> None:
        self._command(f"stall {seconds}")

    def errors(self, rate: float, seconds: float) -> None:
        self._command(f"errors {rate} {seconds}")

    def partition(self, seconds: float) -> None:
        self._command(f"partition {seconds}")

    def slow(self, delay: float, seconds: float) -> None:
        self._command(f"slow {delay} {seconds}")

    def expire(self, seconds: float) -> None:
        self._command(f"expire {seconds}")

    def stats(self) -> Stats:
        raw = self._command("stats")
        return Stats(Counter({int(k): v for k, v in raw.get("forwarded", {}).items()}),
                     Counter({int(k): v for k, v in raw.get("injected", {}).items()}), int(raw.get("frozen", 0)))

    def second(self) -> int:
        return int(time.time() - self.started)

    def stop(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self._command("stop")
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)


if __name__ == "__main__":
    serve()
