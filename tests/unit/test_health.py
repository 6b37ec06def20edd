"""The probes' endpoints (runtime.health) and what they read of kopf (runtime.kopfwatch).

- /readyz waits for kopf's index barrier (its private ToggleSet), then follows the role:
  leader and standby are ready; stopping, and a candidate that cannot see the Lease, are not;
- /healthz fails when a watch kopf started has ended (kopf #1276) or was dropped from its
  ensemble, and never while stepping down;
- the wrapper records kopf's ensemble through the function kopf really calls, once.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kopf._cogs.aiokits import aiotoggles
from kopf._core.reactor import orchestration

from staticsite_operator.runtime import kopfwatch
from staticsite_operator.runtime.health import Health
from staticsite_operator.runtime.kopfwatch import Watches
from staticsite_operator.runtime.leader import Election


class Resource(NamedTuple):
    plural: str


class Key(NamedTuple):
    resource: Resource
    namespace: str | None


@dataclass
class FakeEnsemble:
    operator_indexed: aiotoggles.ToggleSet
    watcher_tasks: dict[Any, Any] = field(default_factory=dict)


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # 127.0.0.1 only
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_readiness_waits_for_the_index_barrier_then_follows_the_role() -> None:
    async def scenario() -> None:
        watches = Watches()
        election = Election.create(None, "solo", drain=1)
        health = Health(election, watches)
        assert health.readiness()[0] is False  # kopf has not spawned its watches yet
        indexed = aiotoggles.ToggleSet(all)
        listing = await indexed.make_toggle(False, name="staticsites@ns")
        pending = asyncio.get_running_loop().create_future()
        watches.seen(FakeEnsemble(indexed, {Key(Resource("staticsites"), "ns"): pending}))
        assert health.readiness() == (False, {"synced": False, "role": "leader", "identity": "solo"})
        await indexed.drop_toggle(listing)
        assert health.readiness()[0] is True
        await election.step_down()
        assert health.readiness() == (False, {"synced": True, "role": "stopping", "identity": "solo"})
        pending.cancel()
    asyncio.run(scenario())


def test_liveness_fails_for_a_watch_that_ended_or_was_dropped_but_not_while_stopping() -> None:
    async def scenario() -> None:
        watches = Watches()
        election = Election.create(None, "solo", drain=1)
        health = Health(election, watches)
        loop = asyncio.get_running_loop()
        sites, pods = Key(Resource("staticsites"), None), Key(Resource("pods"), "ns")
        tasks = {sites: loop.create_future(), pods: loop.create_future()}
        ensemble = FakeEnsemble(aiotoggles.ToggleSet(all), dict(tasks))
        watches.seen(ensemble)
        assert health.liveness() == (True, {})
        tasks[pods].set_result(None)  # the watch task returned: kopf drops it and never restarts it
        assert health.liveness() == (False, {"deadWatches": ["pods@ns"]})
        del ensemble.watcher_tasks[pods]
        assert health.liveness() == (False, {"deadWatches": ["pods@ns"]})
        await election.step_down()
        assert health.liveness() == (True, {})
        tasks[sites].cancel()
    asyncio.run(scenario())


def test_the_endpoints_answer_over_http() -> None:
    async def scenario() -> None:
        watches = Watches()
        indexed = aiotoggles.ToggleSet(all)
        sites = Key(Resource("staticsites"), None)
        watches.seen(FakeEnsemble(indexed, {sites: asyncio.get_running_loop().create_future()}))
        health = Health(Election.create(None, "solo", drain=1), watches)
        runner = await health.serve("127.0.0.1", 0)
        port = runner.addresses[0][1]
        try:
            ready = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/readyz")
            live = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
        finally:
            await runner.cleanup()
        assert ready == (200, {"synced": True, "role": "leader", "identity": "solo"})
        assert live == (200, {})
    asyncio.run(scenario())


def test_the_wrapper_sees_the_ensemble_kopf_spawns_watchers_for() -> None:
    assert kopfwatch.apply()
    assert kopfwatch.apply()  # idempotent: never wrapped twice
    wrapped = orchestration.spawn_missing_watchers
    assert wrapped.__wrapped__ is not None  # type: ignore[attr-defined]
    assert not hasattr(wrapped.__wrapped__, "__wrapped__")  # type: ignore[attr-defined]

    async def scenario() -> None:
        ensemble = FakeEnsemble(aiotoggles.ToggleSet(all))
        # kopf's own function, with no resources to watch: it returns and the wrapper records.
        await wrapped(ensemble=ensemble, processor=None, settings=None, indexed_resources=(),
                      watched_resources=(), watched_namespaces=())
        assert kopfwatch.WATCHES.ensemble is ensemble
    asyncio.run(scenario())
