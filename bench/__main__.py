"""`python -m bench` (`make bench BENCH_ARGS=...`): convergence, API requests and memory at N sites.

Starts its own cluster (hack/cluster.sh as "staticsite-bench", never the test cluster),
runs the operator's scenarios and then the floor for each size, and writes
results.json, results.md and convergence.png to --out. See bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from . import report, scenarios, sites, source
from .audit import AuditLog
from .cluster import OPERATOR_USER, BenchCluster
from .kclient import DRIVER_AGENT, FLOOR_AGENT, Client
from .measure import Bench, attach_requests
from .profile import summarize
from .timing import Progress

PODS_PER_NODE = 110  # kwok's fake nodes advertise 110 pods each
KCM_QPS = 200  # the controller-manager's client requests/s in the bench cluster (its own default: 20)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10,100,1000", help="comma-separated site counts (default: %(default)s)")
    p.add_argument("--idle-seconds", type=float, default=60, help="length of the idle scenario (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="output directory (default: %(default)s)")
    p.add_argument("--keep-cluster", action="store_true", help="leave the bench cluster running at the end")
    p.add_argument("--cluster-name", default="staticsite-bench", help="kwokctl cluster name (default: %(default)s)")
    p.add_argument("--nodes", type=int, default=0,
                   help="fake nodes (default: room for every pod of the largest size during a rollout)")
    p.add_argument("--workers", type=int, default=0, help="STATICSITE_WORKERS for the operator (default: its own)")
    p.add_argument("--threads", type=int, default=16, help="concurrent requests of the driver and the floor")
    p.add_argument("--no-floor", action="store_true", help="skip the floor (quicker, for investigations)")
    p.add_argument("--no-floor-delete", action="store_true",
                   help="skip the floor's e_delete at the last size, where nothing runs after it "
                        "(the same garbage collection as the operator's; ~10 min at 1000)")
    p.add_argument("--replicas", type=int, default=1,
                   help="replicas of every site (default: %(default)s; the scale scenario: 0, no pods at all)")
    p.add_argument("--scale", action="store_true",
                   help="the 10,000-site scale run: create, idle and restart only (no update, no delete, "
                        "for the operator and the floor); use with --replicas 0")
    p.add_argument("--no-ingress", action="store_true", help="sites without a domain, so without an Ingress")
    p.add_argument("--kcm-qps", type=int, default=KCM_QPS,
                   help="the controller-manager's client requests/s when the bench starts its cluster "
                        "(default: %(default)s; 0: its own default of 20/s)")
    p.add_argument("--profile", action="store_true",
                   help="record the operator's CPU with py-spy: OUT/profiles/*.speedscope.json and summary.md")
    p.add_argument("--git-ref", default=None,
                   help="measure the operator as committed at this git ref (default: the working tree)")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    if not args.sizes or min(args.sizes) < 1:
        p.error("--sizes needs positive integers")
    # A rollout surges one extra pod per site (maxSurge 1): room for replicas + 1 pods per site.
    pods = (args.replicas + 1) * max(args.sizes) if args.replicas else 0
    args.nodes = args.nodes or max(4, math.ceil(pods / (PODS_PER_NODE - 10)))
    sites.SHAPE.replicas, sites.SHAPE.ingress = args.replicas, not args.no_ingress
    return args


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM, and SIGINT even where a shell started us with it ignored (a background job),
    # unwind through the finally blocks: the operator is stopped and the cluster deleted.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    progress = Progress()
    scratch = Path(tempfile.mkdtemp(prefix="staticsite-bench-src-"))
    try:
        return _run(args, progress, source.resolve(args.git_ref, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _requests(audit_log: AuditLog, mark: Any, operator: bool = True) -> list[Any]:
    """The audited requests since `mark` of the operator (or the floor). The API server writes
    its audit log a little behind: wait (bounded) until the writer's requests are there, since
    its create scenario always makes some."""
    who = OPERATOR_USER.encode() if operator else FLOOR_AGENT.encode()
    requests: list[Any] = []
    for _ in range(20):
        time.sleep(0.5)
        requests = audit_log.read(mark, keep=(who,))
        if any(r.is_write and (r.user == OPERATOR_USER if operator else True) for r in requests):
            break
    return requests


def _run(args: argparse.Namespace, progress: Progress, src: source.Source) -> int:
    # The floor renders in this process: it must import the measured source, not the editable
    # install, so the path goes first before anything imports staticsite_operator.
    sys.path.insert(0, str(src.python_path))
    from . import floor

    progress(f"measuring the operator from the {src.describe()}")
    # The controller-manager's client rate limit is lifted (--kcm-qps): at its default (20/s)
    # the Deployment controller sets the pace of every rollout from a few hundred sites on,
    # for the floor as for us (bench/README.md, "What runs").
    cluster = BenchCluster.named(args.cluster_name, args.nodes, kcm_qps=args.kcm_qps or None)
    if cluster.running():
        progress(f"reusing the running cluster {cluster.name} (with the flags it was started with)")
    else:
        progress(f"starting cluster {cluster.name} with {args.nodes} nodes")
    cluster.up()
    results_nodes = cluster.ensure_nodes()
    if not cluster.logs_every_request_of(OPERATOR_USER):
        progress("WARNING: this cluster's audit policy predates the bench rule; reads will not be counted "
                 "(run hack/cluster.sh down with CLUSTER_NAME set, then re-run)")
    cluster.widen_service_ips()
    cluster.install_crd(src.crd)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": report.machine(cluster.kube_version()),
        "config": {"sizes": args.sizes, "idle_seconds": args.idle_seconds, "workers": args.workers or None,
                   "replicas": args.replicas, "ingress": not args.no_ingress,
                   "threads": args.threads, "nodes": results_nodes, "cluster": cluster.name,
                   "kcm_qps": cluster.running_kcm_qps(),
                   "operator_source": src.describe(), "commit": src.commit, "dirty": src.dirty},
        "sizes": {},
    }
    driver = Client(str(cluster.kubeconfig), DRIVER_AGENT, pool=args.threads + 2)
    floor_client = Client(str(cluster.kubeconfig), FLOOR_AGENT, pool=args.threads + 2)
    bench = Bench(cluster, src, driver, floor_client, out, args.threads, args.workers or None, args.idle_seconds,
                  progress, cluster.component_pids(), profile=args.profile)
    audit_log = AuditLog(cluster.audit_log)
    status = 0
    t_start = time.monotonic()
    try:
        for n in args.sizes:
            mark = audit_log.mark()
            progress(f"=== N={n}: operator scenarios")
            ops = scenarios.run(bench, n, scale=args.scale)
            attach_requests(ops, _requests(audit_log, mark), user=OPERATOR_USER, sites=n)
            if ops and ops[1].requests.get("requests", 0) == 0:  # a_create always makes requests
                progress(f"WARNING: N={n}: the audit log shows no operator request; request counts are missing")
                results.setdefault("warnings", []).append(f"N={n}: no operator request in the audit log")
            size: dict[str, Any] = {"operator": {s.name: s.to_json() for s in ops}, "floor": {},
                                    "ratio_a": math.nan, "ratio_b": math.nan}
            results["sizes"][str(n)] = size
            report.write(results, out)  # the operator's figures are kept whatever the floor does
            if args.no_floor:
                continue
            progress(f"=== N={n}: floor")
            mark = audit_log.mark()
            try:
                # No delete in the scale run, as for the operator: a DELETE of the collection of
                # 10,000 StaticSites outlasts the API server's 60 s (504), and it is not a target.
                fls = floor.run(bench, n, delete=not args.scale and not (args.no_floor_delete and n == args.sizes[-1]),
                                update=not args.scale)
            except Exception:
                progress("floor FAILED:\n" + traceback.format_exc())
                results.setdefault("warnings", []).append(f"N={n}: the floor failed: {traceback.format_exc()}")
                status = 1
                continue
            attach_requests(fls, _requests(audit_log, mark, operator=False), agent_prefix=FLOOR_AGENT, sites=n)
            size["floor"] = {s.name: s.to_json() for s in fls}
            op, fl = size["operator"], size["floor"]
            for key, scenario in (("ratio_a", "a_create"), ("ratio_b", "b_update")):
                if scenario in op and scenario in fl and fl[scenario]["seconds"]:
                    size[key] = op[scenario]["seconds"] / fl[scenario]["seconds"]
            report.write(results, out)  # after every size: an interrupted run keeps what it measured
    except KeyboardInterrupt:
        progress("interrupted")
        status = 130
    except Exception:
        progress("FAILED:\n" + traceback.format_exc())
        results["error"] = traceback.format_exc()
        status = 1
    finally:
        driver.close()
        floor_client.close()
        if args.keep_cluster:
            progress(f"cluster kept: KUBECONFIG={cluster.kubeconfig}")
        else:
            cluster.down()
    results["config"]["wall_seconds"] = round(time.monotonic() - t_start, 1)
    if args.profile and (profiles := sorted((out / "profiles").glob("*.speedscope.json"))):
        (out / "profiles" / "summary.md").write_text(summarize(profiles))
    table = report.write(results, out)
    progress(f"done in {results['config']['wall_seconds']:.0f}s; results in {out}/")
    print(table)
    return status


if __name__ == "__main__":
    sys.exit(main())
