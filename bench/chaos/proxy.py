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

It counts what it forwarded and answered, per second, so backoff can be judged
(`Stats`). It runs its own event loop in a thread; the methods are thread-safe.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
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
        self.started = time.monotonic()
        self.stats = Stats()
        self._rng = random.Random(seed)  # the fault schedule is replayable; the traffic is not
        self._dead: set[int] = set()     # id() of stalled connections (transports)
        self._stall_until = 0.0          # monotonic; new connections before then are stalled too
        self._error_until = 0.0
        self._error_rate = 0.0
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

    def second(self, at: float | None = None) -> int:
        """The stats' second for a monotonic time (now by default)."""
        return int((time.monotonic() if at is None else at) - self.started)

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
        if (error := self._injected()) is not None:
            return error
        self.stats.forwarded[self.second()] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
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
            return response


def kubeconfig_through(proxy_port: int, token: str) -> dict[str, Any]:
    """A kubeconfig for the operator that goes through the proxy (loopback, plain HTTP)."""
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "chaos",
        "clusters": [{"name": "proxy", "cluster": {"server": f"http://127.0.0.1:{proxy_port}"}}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "chaos", "context": {"cluster": "proxy", "user": "operator"}}],
    }
