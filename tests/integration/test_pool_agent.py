"""The pool agent against the real API server: a local process with its own nginx,
given the entries the operator writes, serving many sites by Host.

- many sites: every entry served, by its own Host only, and reported per site;
- atomic switches: under a steady, bounded request loop, 20 revisions of one site go
  live and every response is one whole revision, never an error or a mix;
- debounced: 60 sites updated at once become at most a few reloads;
- isolated: a revision nginx refuses (a host too long for the server names hash) and an
  entry that fails validation are reported as rejected with nginx's reason, the site
  keeps serving its last good revision, and every other site is untouched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.integration.poolkit import (  # noqa: F401 - pytest fixtures
    Agent,
    apply_all,
    entry,
    pool_crd,
    pool_object,
    revision,
    run_agent,
    wait_served,
)

pytestmark = [pytest.mark.cluster, pytest.mark.nginx, pytest.mark.usefixtures("kube_env", "pool_crd")]


@pytest.fixture
def pool(cluster: Cluster, namespace: str) -> Iterator[dict[str, Any]]:
    name = f"p-{namespace}"
    cluster.kubectl("apply", "--server-side", "-f", "-",
                    input=__import__("json").dumps(pool_object(name, namespace, ["*"])))
    yield cluster.kubectl_json("get", "staticsitepool", name)
    cluster.kubectl("delete", "staticsitepool", name, "--wait=false", check=False)


@pytest.fixture
def agent(cluster: Cluster, namespace: str, pool: dict[str, Any]) -> Iterator[Agent]:
    with run_agent(cluster, pool["metadata"]["name"], namespace) as running:
        yield running


def test_many_sites_are_served_by_host_and_reported(cluster: Cluster, pool: dict[str, Any], agent: Agent) -> None:
    objs = [entry(pool, "tenant", f"s{i}", {"index.html": f"site {i}", "about.html": f"about {i}"},
                  (f"s{i}.example.test",), routing={"cleanUrls": True}) for i in range(120)]
    started = time.monotonic()
    apply_all(cluster, objs)
    arriving = time.monotonic() - started
    wait_served(cluster, agent, {f"tenant.s{i}": revision(o) for i, o in enumerate(objs)})
    for i in range(120):
        assert agent.get(f"s{i}.example.test") == (200, f"site {i}".encode())
        assert agent.get(f"s{i}.example.test", "/about") == (200, f"about {i}".encode())
    assert agent.get("unknown.example.test")[0] == 404
    # One batch at least every STATICSITE_POOL_MAX_DELAY_SECONDS (2) while entries keep
    # arriving (a loaded machine takes seconds to create 120), then one for the rest.
    batches = min(12, 2 + int(arriving / 2.0))
    assert agent.generation() <= batches, (f"120 sites arriving over {arriving:.1f} s became "
                                           f"{agent.generation()} reloads, not at most {batches}")


def test_switches_are_atomic_under_a_steady_request_loop(cluster: Cluster, pool: dict[str, Any], agent: Agent) -> None:
    versions = [f"<h1>version {n}</h1>" + "x" * 4000 for n in range(21)]
    first = entry(pool, "tenant", "busy", {"index.html": versions[0]}, ("busy.example.test",))
    apply_all(cluster, [first])
    wait_served(cluster, agent, {"tenant.busy": revision(first)})
    seen: list[tuple[int, bytes]] = []
    stop = threading.Event()

    def load() -> None:  # bounded: at most 20000 requests or 90 s, to 127.0.0.1 only
        deadline = time.monotonic() + 90
        while not stop.is_set() and len(seen) < 20000 and time.monotonic() < deadline:
            try:
                seen.append(agent.get("busy.example.test"))
            except OSError as exc:
                seen.append((0, str(exc).encode()))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        previous = first
        for n in range(1, 21):
            new = entry(pool, "tenant", "busy", {"index.html": versions[n]}, ("busy.example.test",))
            apply_all(cluster, [new])  # as the operator: the new entry, then the old one goes
            cluster.kubectl("-n", agent.namespace, "delete", "configmap", previous["metadata"]["name"])
            wait_served(cluster, agent, {"tenant.busy": revision(new)})
            previous = new
    finally:
        stop.set()
        loader.join()
    bodies = {v.encode() for v in versions}
    bad = [(status, body[:80]) for status, body in seen if status != 200 or body not in bodies]
    assert len(seen) > 100, "the loop ran"
    assert bad == [], f"{len(bad)} of {len(seen)} requests failed or were mixed: {bad[:5]}"
    # Once the report says so, the new revision is what every request gets.
    assert {agent.get("busy.example.test")[1] for _ in range(50)} == {versions[20].encode()}


def test_many_updates_become_few_reloads(cluster: Cluster, pool: dict[str, Any], agent: Agent) -> None:
    objs = [entry(pool, "tenant", f"d{i}", {"index.html": "v1"}, (f"d{i}.example.test",)) for i in range(60)]
    apply_all(cluster, objs)
    wait_served(cluster, agent, {f"tenant.d{i}": revision(o) for i, o in enumerate(objs)})
    before = agent.generation()
    updated = [entry(pool, "tenant", f"d{i}", {"index.html": "v2"}, (f"d{i}.example.test",)) for i in range(60)]
    apply_all(cluster, updated)
    wait_served(cluster, agent, {f"tenant.d{i}": revision(o) for i, o in enumerate(updated)})
    assert agent.generation() - before <= 3, "60 updates in one apply are one or a few reloads"
    assert all(agent.get(f"d{i}.example.test") == (200, b"v2") for i in range(60))


def test_a_refused_revision_keeps_the_last_good_one_and_touches_no_other_site(
        cluster: Cluster, pool: dict[str, Any], agent: Agent) -> None:
    good = entry(pool, "tenant", "fragile", {"index.html": "GOOD"}, ("fragile.example.test",))
    other = entry(pool, "tenant", "other", {"index.html": "OTHER v1"}, ("other.example.test",))
    apply_all(cluster, [good, other])
    wait_served(cluster, agent, {"tenant.fragile": revision(good), "tenant.other": revision(other)})
    # Valid for the API, refused by nginx: a host longer than a hash bucket (the map from
    # hosts to roots is built before the server names: map_hash_bucket_size).
    long_host = "l" * 60 + "." + "o" * 55 + ".example.test"
    bad = entry(pool, "tenant", "fragile", {"index.html": "BAD"}, ("fragile.example.test", long_host))
    other_v2 = entry(pool, "tenant", "other", {"index.html": "OTHER v2"}, ("other.example.test",))
    apply_all(cluster, [bad, other_v2])
    wait_served(cluster, agent, {"tenant.other": revision(other_v2)})
    state = agent.report(cluster)["tenant.fragile"]
    assert state["served"] == revision(good) and state["rejected"] == revision(bad)
    assert "map_hash_bucket_size" in state["error"] and str(agent.data) not in state["error"]
    assert agent.get("fragile.example.test") == (200, b"GOOD")
    assert agent.get("other.example.test") == (200, b"OTHER v2"), "the batch went on for the other site"
    # An entry that fails validation (as a buggy writer might leave one) is refused too.
    broken = entry(pool, "tenant", "broken", {"index.html": "X"}, ("broken.example.test",))
    broken["data"]["site.json"] = broken["data"]["site.json"].replace('"index.html"', '"../../etc/passwd"')
    apply_all(cluster, [broken])
    deadline = time.monotonic() + 30
    while "tenant.broken" not in agent.report(cluster) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "not valid" in agent.report(cluster)["tenant.broken"]["error"]
    assert agent.get("broken.example.test")[0] == 404
    assert agent.get("other.example.test") == (200, b"OTHER v2")
