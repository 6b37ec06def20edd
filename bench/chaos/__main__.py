"""`python -m bench.chaos` (`make chaos`): faults while the operator converges real work.

Starts its own cluster (hack/cluster.sh as "chaos", never the test or bench cluster),
runs the operator as the chart does (leader election on) behind a fault proxy, and
for each scenario: real work (N sites created or all their content changed), one
fault in the middle of it, convergence, the invariants. Writes results.json and
results.md to --out. docs/reliability.md explains the scenarios and the figures.
"""

from __future__ import annotations

import argparse
import math
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import report as bench_report
from .. import source
from ..cluster import OPERATOR_USER, BenchCluster
from ..kclient import DRIVER_AGENT, ApiError, Client
from ..timing import Progress
from . import ha, report, scenarios
from .decoys import Decoys
from .fencing import check
from .harness import LEASE, LEASE_DURATION, Harness
from .scenarios import Fault, Result
from .workload import Workload

SCENARIOS = ("kill-create", "kill-update", "apiserver-restart", "etcd-restart", "watch-stall", "watch-expiry",
             "partition", "api-errors", "slow-api", "flood", "delete-in-flight", "ha")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--sites", type=int, default=300, help="sites converging during every fault (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=5, help="runs of each SIGKILL scenario (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="the first seed; runs use seed, seed+1, ... (default: 1)")
    p.add_argument("--seed-list", default="", help="exact seeds to run (replays a run), e.g. 3,7")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma-separated subset of {','.join(SCENARIOS)} (the clean runs always run)")
    p.add_argument("--failovers", type=int, default=10, help="SIGKILLs of the leader in the ha scenario")
    p.add_argument("--handovers", type=int, default=5, help="SIGTERMs of the leader in the ha scenario")
    p.add_argument("--stall-seconds", type=float, default=30, help="how long new connections stay stalled")
    p.add_argument("--error-rate", type=float, default=0.3, help="share of requests answered 429/500/503")
    p.add_argument("--error-seconds", type=float, default=30, help="how long API errors are injected")
    p.add_argument("--partition-seconds", type=float, default=20, help="how long the operator is cut off")
    p.add_argument("--expiry-seconds", type=float, default=5, help="how long resumed watches get 410 Gone")
    p.add_argument("--slow-delay", type=float, default=1.0, help="seconds added to every request (slow-api)")
    p.add_argument("--slow-seconds", type=float, default=30, help="how long requests are slow")
    p.add_argument("--partitions", type=int, default=2, help="partitions of the leader in the ha scenario")
    p.add_argument("--threads", type=int, default=16, help="concurrent requests of the driver")
    p.add_argument("--nodes", type=int, default=0, help="kwok nodes (default: room for the pods of every site)")
    p.add_argument("--out", type=Path, default=Path("bench/results/chaos"), help="output (default: %(default)s)")
    p.add_argument("--cluster-name", default="chaos", help="kwokctl cluster name (default: %(default)s)")
    p.add_argument("--keep-cluster", action="store_true", help="leave the cluster running at the end")
    args = p.parse_args(argv)
    if not 1 <= args.sites <= 1000:
        p.error("--sites must be 1..1000")
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS) - {""}
    if unknown:
        p.error(f"unknown scenarios: {sorted(unknown)}")
    args.scenarios = [s for s in SCENARIOS if s in args.scenarios.split(",")]
    args.seed_list = ([int(s) for s in args.seed_list.split(",") if s.strip()]
                      or [args.seed + i for i in range(args.seeds)])
    # The sites' pods, a create namespace's at the same time, and a surge pod each during rollouts.
    args.nodes = args.nodes or max(4, math.ceil(3 * args.sites / 100))
    return args


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    progress = Progress()
    cluster = BenchCluster.named(args.cluster_name, args.nodes)
    progress(f"cluster {cluster.name}: {'reusing it' if cluster.running() else f'starting, {args.nodes} nodes'}")
    cluster.up()
    cluster.ensure_nodes()
    cluster.widen_service_ips()
    cluster.install_crd()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "logs").mkdir(exist_ok=True)
    driver = Client(str(cluster.kubeconfig), DRIVER_AGENT, pool=args.threads + 4)
    h = Harness(cluster, driver, args.out, progress, args.sites, args.threads)
    src = source.resolve(None, args.out)
    m = bench_report.machine(cluster.kube_version())
    results: dict[str, Any] = {
        "machine": f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}, {m['date']}",
        "config": {"sites": args.sites, "seeds": args.seed_list, "scenarios": args.scenarios,
                   "kube_version": cluster.kube_version(), "commit": src.commit[:12], "dirty": src.dirty,
                   "cluster": cluster.name, "nodes": args.nodes, "wall_s": 0.0},
        "runs": [],
    }
    status, t0, mark = 0, time.monotonic(), h.audit.mark()
    try:
        status = _run(args, h, results)
    except KeyboardInterrupt:
        progress("interrupted")
        status = 130
    except Exception:
        progress("FAILED:\n" + traceback.format_exc())
        results["error"] = traceback.format_exc()
        status = 1
    finally:
        h.close()
        results["fencing_all"] = check(h.operator_requests(mark), OPERATOR_USER, LEASE, LEASE_DURATION).as_dict()
        driver.close()
        try:  # a component a fault left dead is started again: its pid file must name a live process
            h.control.revive()
        except Exception as exc:
            progress(f"WARNING: could not restore the control plane: {exc}")
        if args.keep_cluster:
            progress(f"cluster kept: KUBECONFIG={cluster.kubeconfig}")
        else:
            cluster.down()
    results["config"]["wall_s"] = round(time.monotonic() - t0, 1)
    table = report.write(results, args.out)
    print(table)
    failed = [r["scenario"] for r in results["runs"] if not r["ok"]]
    failed += ["ha"] if "ha" in results and not results["ha"]["ok"] else []
    failed += ["fencing"] if results["fencing_all"]["double_writes"] else []
    progress(f"done; {len(failed)} failed; results in {args.out}/")
    return status or (1 if failed else 0)


def _run(args: argparse.Namespace, h: Harness, results: dict[str, Any]) -> int:
    tag = time.strftime("%H%M%S")
    # A kept cluster may hold an earlier run's sites; the operator watches every namespace,
    # and their reconciles would be counted as this run's writes.
    for ns in h.driver.request("GET", "/api/v1/namespaces").get("items") or []:
        if ns["metadata"]["name"].startswith("chaos-"):
            _delete_namespace(h, ns["metadata"]["name"])
    h.start_operator(h.proxy())
    h.wait_role(h.replicas[0][0], ("leader",), timeout=180)

    def record(result: Result, baseline: Result | None) -> None:
        if baseline is not None:
            result.excess_writes = result.writes - baseline.writes
        results["runs"].append(result.as_dict())
        report.write(results, args.out)  # after every run: an interrupted suite keeps what it measured

    main = Workload.create_namespace(h.driver, f"chaos-main-{tag}", args.sites, args.threads)
    main.decoys = Decoys(h.driver, main.namespace)
    main.decoys.create(main.names[0])
    base_create = scenarios.run(h, main, "clean-create")
    record(base_create, None)
    base_update = scenarios.run(h, main, "clean-update")
    record(base_update, None)
    clean = {"create": base_create.converge_s or 60.0, "update": base_update.converge_s or 60.0}

    def delay(seed: int, kind: str, low: float = 0.1, high: float = 0.8) -> float:
        return random.Random(seed).uniform(low, high) * clean[kind]

    def once(name: str, inject: Callable[[int], Fault], *, side: Any = None) -> None:
        if name in args.scenarios:
            seed = args.seed_list[0]
            record(scenarios.run(h, main, name, seed=seed, fault=inject(seed), side=side), base_update)

    if "kill-create" in args.scenarios:
        for seed in args.seed_list:
            work = Workload.create_namespace(h.driver, f"chaos-kc-{tag}-{seed}", args.sites, args.threads)
            work.decoys = Decoys(h.driver, work.namespace)
            work.decoys.create(work.names[0])
            fault = Fault(delay(seed, "create"), scenarios.sigkill_operator())
            h.progress(f"kill-create[{seed}]: SIGKILL at {fault.delay:.1f}s")
            record(scenarios.run(h, work, "kill-create", seed=seed, fault=fault), base_create)
            work.stop()
            _delete_namespace(h, work.namespace)
    if "kill-update" in args.scenarios:
        for seed in args.seed_list:
            fault = Fault(delay(seed, "update"), scenarios.sigkill_operator())
            h.progress(f"kill-update[{seed}]: SIGKILL at {fault.delay:.1f}s")
            record(scenarios.run(h, main, "kill-update", seed=seed, fault=fault), base_update)
    once("apiserver-restart", lambda s: Fault(delay(s, "update", 0.2, 0.5),
                                              scenarios.restart_component("kube-apiserver")))
    once("etcd-restart", lambda s: Fault(delay(s, "update", 0.2, 0.5),
                                         scenarios.restart_component("etcd", restart_kwok=True)))
    once("watch-stall", lambda s: Fault(delay(s, "update", 0.1, 0.3), scenarios.stall(args.stall_seconds)))
    once("watch-expiry", lambda s: Fault(delay(s, "update", 0.1, 0.3), scenarios.watch_expiry(args.expiry_seconds)))
    once("partition", lambda s: Fault(delay(s, "update", 0.1, 0.3), scenarios.partition(args.partition_seconds)))
    once("slow-api", lambda s: Fault(delay(s, "update", 0.1, 0.3),
                                     scenarios.slow_api(args.slow_delay, args.slow_seconds)))
    once("api-errors", lambda s: Fault(delay(s, "update", 0.1, 0.3),
                                       scenarios.api_errors(args.error_rate, args.error_seconds)))
    if "flood" in args.scenarios:
        record(scenarios.run(h, main, "flood", side=scenarios.flood()), base_update)
    if "delete-in-flight" in args.scenarios:
        seed = args.seed_list[0]
        record(scenarios.run(h, main, "delete-in-flight", seed=seed,
                             side=scenarios.delete_in_flight(20, seed)), base_update)
    if "ha" in args.scenarios:
        outcome = ha.run(h, main, kills=args.failovers, handovers=args.handovers, partitions=args.partitions,
                         partition_s=args.partition_seconds, seed=args.seed_list[0])
        results["ha"] = outcome.as_dict()
        h.progress(f"ha: {'ok' if outcome.ok() else 'FAILED'}: {outcome.as_dict()['fencing']}")
    main.stop()
    h.stop_all()
    _delete_namespace(h, main.namespace)
    return 0


def _delete_namespace(h: Harness, namespace: str, timeout: float = 300) -> None:
    """Delete a create scenario's namespace and wait until it is gone: the next run starts small."""
    try:
        h.driver.request("DELETE", f"/api/v1/namespaces/{namespace}")
    except ApiError as exc:
        if exc.status != 409:  # 409: already terminating
            raise
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            h.driver.request("GET", f"/api/v1/namespaces/{namespace}", timeout=10)
        except ApiError as exc:
            if exc.status == 404:
                h.progress(f"{namespace} deleted in {time.monotonic() - t0:.0f}s")
                return
        time.sleep(2)
    h.progress(f"WARNING: {namespace} still terminating after {timeout:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
