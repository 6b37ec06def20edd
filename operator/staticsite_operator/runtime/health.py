"""The probes' endpoints: GET /healthz (liveness) and GET /readyz (readiness), on one port.

- **/healthz** answers 200 while the event loop runs and every watch kopf started is
  still running (kopfwatch: kopf #1276 leaves a dead watch dead), 503 otherwise, so
  the kubelet restarts a pod whose cache stopped moving. Waiting for the Lease is
  healthy: a standby is never restarted for standing by.
- **/readyz** answers 200 once kopf has listed and indexed every watched kind, while
  this replica leads or stands by with a view of the Lease (it heard from the API
  server within a lease duration), and 503 while it starts, steps down or cannot see
  the Lease. A rolling update waits for it before it stops an old pod, so the new pod
  takes over with warm caches; a PodDisruptionBudget counts it.

Both return a small JSON document saying why. This replaces kopf's `--liveness`
server, which has one path and no notion of readiness.
"""

from __future__ import annotations

from typing import Any

import aiohttp.web

from .kopfwatch import Watches
from .leader import Election


class Health:
    def __init__(self, election: Election, watches: Watches) -> None:
        self.election = election
        self.watches = watches

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        # While stepping down, kopf is stopping its watches on purpose: that is not a failure,
        # and a restart now would cut the drain short.
        dead = [] if self.election.leadership.stopping else self.watches.dead()
        return not dead, {"deadWatches": dead} if dead else {}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        synced, role = self.watches.synced(), self.election.role()
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
