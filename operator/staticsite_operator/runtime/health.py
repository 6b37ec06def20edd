"""The probes' endpoints: GET /healthz (liveness) and GET /readyz (readiness), on one port.

- **/healthz** answers 200 while the event loop runs and every reflector (runtime.reflector)
  is still running, 503 otherwise, so the kubelet restarts a pod whose cache stopped
  moving (kopf #1276 was that, for kopf's own watchers). A reflector retries a failing
  stream forever, so an API server that is away does not fail liveness: restarting the
  pod would only throw its cache away. Waiting for the Lease is healthy too: a standby is
  never restarted for standing by.
- **/readyz** answers 200 once every watched kind has been listed into the cache, while
  this replica leads or stands by with a view of the Lease (it heard from the API server
  within a lease duration), and 503 while it lists, steps down or cannot see the Lease.
  A rolling update waits for it before it stops an old pod, so the new pod takes over
  with a warm cache; a PodDisruptionBudget counts it.

Both return a small JSON document saying why. This replaces kopf's `--liveness`
server, which has one path and no notion of readiness.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp.web

from .leader import Election


class Reflectors(Protocol):
    def is_synced(self) -> bool: ...

    def dead(self) -> list[str]: ...


class Health:
    def __init__(self, election: Election, reflectors: Reflectors) -> None:
        self.election = election
        self.reflectors = reflectors

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        # While stepping down, the reflectors are stopped on purpose: that is not a failure,
        # and a restart now would cut the drain short.
        dead = [] if self.election.leadership.stopping else self.reflectors.dead()
        return not dead, {"deadWatches": dead} if dead else {}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        synced, role = self.reflectors.is_synced(), self.election.role()
        return synced and role in ("leader", "standby"), {"synced": synced, "role": role,
                                                          "identity": self.election.identity}

    async def _healthz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        ok, body = self.liveness()
        return aiohttp.web.json_response(body, status=200 if ok else 503)

    async def _readyz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        ok, body = self.readiness()
        return aiohttp.web.json_response(body, status=200 if ok else 503)

    async def serve(self, host: str, port: int) -> aiohttp.web.AppRunner:
        app = aiohttp.web.Application()
        app.add_routes([aiohttp.web.get("/healthz", self._healthz), aiohttp.web.get("/readyz", self._readyz)])
        runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await aiohttp.web.TCPSite(runner, host, port).start()
        return runner
