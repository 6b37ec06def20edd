"""The probes' endpoints (runtime.health), read from the reflectors (runtime.reflector) and the election.

- /readyz waits until every reflector has listed its kind, then follows the role: leader
  and standby are ready; stopping, and a candidate that cannot see the Lease, are not;
- /healthz fails when a reflector's task has ended (its kind's cache would be frozen,
  as kopf #1276 left kopf's watchers), and never while stepping down.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from staticsite_operator.core import kinds
from staticsite_operator.runtime.health import Health
from staticsite_operator.runtime.leader import Election
from staticsite_operator.runtime.reflector import Informers


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # 127.0.0.1 only
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def informers(stop: asyncio.Event) -> Informers:
    """Reflectors for sites and pods in "ns" whose streams are stand-ins: each runs until `stop` or its own end."""
    found = Informers(None, [kinds.STATICSITE, kinds.POD], ("ns",), observe=lambda *_: None, sweep=lambda *_: None)
    for reflector in found.reflectors:
        reflector.ended = asyncio.Event()  # type: ignore[attr-defined]

        async def run(ended: asyncio.Event = reflector.ended) -> None:  # type: ignore[attr-defined]
            await asyncio.wait([asyncio.ensure_future(stop.wait()), asyncio.ensure_future(ended.wait())],
                               return_when=asyncio.FIRST_COMPLETED)

        reflector.run = run  # type: ignore[method-assign]
    return found


def test_readiness_waits_for_every_listing_then_follows_the_role() -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        watched = informers(stop)
        watched.start()
        election = Election.create(None, "solo", drain=1)
        health = Health(election, watched)
        assert health.readiness() == (False, {"synced": False, "role": "leader", "identity": "solo"})
        watched.reflectors[0].listed.set()
        assert health.readiness()[0] is False  # pods are not listed yet
        watched.reflectors[1].listed.set()
        assert health.readiness() == (True, {"synced": True, "role": "leader", "identity": "solo"})
        await election.step_down()
        assert health.readiness() == (False, {"synced": True, "role": "stopping", "identity": "solo"})
        stop.set()
        await watched.stop()
    asyncio.run(scenario())


def test_liveness_fails_for_a_reflector_that_ended_but_not_while_stopping() -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        watched = informers(stop)
        watched.start()
        election = Election.create(None, "solo", drain=1)
        health = Health(election, watched)
        await asyncio.sleep(0)
        assert health.liveness() == (True, {})
        watched.reflectors[1].ended.set()  # type: ignore[attr-defined]
        for _ in range(5):
            await asyncio.sleep(0)
        assert health.liveness() == (False, {"deadWatches": ["pods in ns"]})
        await election.step_down()
        assert health.liveness() == (True, {})
        stop.set()
        await watched.stop()
    asyncio.run(scenario())


def test_the_endpoints_answer_over_http() -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        watched = informers(stop)
        watched.start()
        for reflector in watched.reflectors:
            reflector.listed.set()
        health = Health(Election.create(None, "solo", drain=1), watched)
        runner = await health.serve("127.0.0.1", 0)
        port = runner.addresses[0][1]
        try:
            ready = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/readyz")
            live = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
        finally:
            await runner.cleanup()
            stop.set()
            await watched.stop()
        assert ready == (200, {"synced": True, "role": "leader", "identity": "solo"})
        assert live == (200, {})
    asyncio.run(scenario())
