"""`python -m bench.pool`: the shared tier at N sites against N dedicated sites.

1. Requests: CPU, memory, pods and ClusterIPs that N dedicated sites and one pool of R
   replicas ask of the cluster, from the manifests the operator renders.
2. Live, on a kwok cluster (its own, "staticsite-bench-pool", unless --kubeconfig): the
   operator (a subprocess) reconciles a StaticSitePool and N shared StaticSites, and R
   pool agents (local processes, each with its nginx, on 127.0.0.1) serve them. Measured:
   the memory of each agent and its nginx (RSS and PSS), bytes on disk, the time of a
   reload with N server blocks, the time from a content change (a StaticSite patch) to
   every replica serving it, and failed requests of a steady, bounded request loop during
   rolling content updates.

Writes results.json and results.md to --out (bench/README.md quotes them).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes as _kubernetes

from staticsite_operator.core import pool as pl

from ..watcher import site_ready
from . import procs, requests

k8s: Any = _kubernetes  # untyped
ROOT = Path(__file__).resolve().parents[2]
TENANT, POOL_NS, POOL = "bench-tenant", "bench-pools", "bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pool", description=__doc__.split("\n\n")[0])
    p.add_argument("--sites", type=int, default=1000)
    p.add_argument("--replicas", type=int, default=2, help="pool replicas (agents run here)")
    p.add_argument("--latency-samples", type=int, default=30)
    p.add_argument("--updates", type=int, default=100, help="rolling updates under the request loop")
    p.add_argument("--kubeconfig", default="", help="an existing cluster (default: start one)")
    p.add_argument("--keep-cluster", action="store_true")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="keep the agents' data and the logs here (default: a temporary directory, removed)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pool")
    return p.parse_args(argv)


def run(cmd: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    result = subprocess.run(cmd, input=stdin, env=env, text=True, capture_output=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {result.stderr[-2000:]}")
    return result.stdout


class Agent:
    def __init__(self, index: int, env: dict[str, str], work: Path) -> None:
        self.port, self.status_port = _free_port(), _free_port()
        self.pod = f"agent-{index}"
        self.data = work / f"agent-{index}"
        self.log = work / f"agent-{index}.log"
        agent_env = {**env, "STATICSITE_POOL": POOL, "STATICSITE_POOL_NAMESPACE": POOL_NS,
                     "STATICSITE_POD_NAME": self.pod, "STATICSITE_POOL_DATA_DIR": str(self.data),
                     "STATICSITE_POOL_LISTEN": f"127.0.0.1:{self.port}",
                     "STATICSITE_POOL_STATUS_PORT": str(self.status_port), "STATICSITE_POOL_METRICS_PORT": "0",
                     "STATICSITE_NGINX": _nginx()}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "staticsite_operator.agent"], env=agent_env,
                                         stdout=out, stderr=out, stdin=subprocess.DEVNULL)

    def get(self, host: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/", headers={"Host": host})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def try_get(self, host: str) -> tuple[int, bytes] | None:
        try:
            return self.get(host)
        except OSError:
            return None

    def reload_seconds(self) -> list[float]:
        """Batches that changed one site: the reload of the whole pool's configuration."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if m := re.search(r"generation \d+: (\d+) sites, 1 changed, .* in ([0-9.]+)s", line):
                out.append(float(m.group(2)))
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nginx() -> str:
    import shutil

    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        raise SystemExit("nginx is required (make nginx)")
    return found


def site(i: int, version: int) -> dict[str, Any]:
    return {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
            "metadata": {"name": f"s{i}", "namespace": TENANT},
            "spec": requests.site_spec(i, "shared", POOL, version)}


def reports(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = json.loads(run(["kubectl", "-n", POOL_NS, "get", "configmaps", "-l",
                          f"app.kubernetes.io/component={pl.REPORT}", "-o", "json"], env))
    return {item["metadata"]["name"]: item.get("data") or {} for item in out["items"]}


def ready_count(env: dict[str, str]) -> int:
    """Sites whose status says Ready at their current generation (what a user sees)."""
    out = json.loads(run(["kubectl", "-n", TENANT, "get", "staticsites", "-o", "json"], env))
    return sum(1 for item in out["items"] if site_ready(0)(item))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def wait_content(agents: list[Agent], i: int, version: int, timeout: float = 120) -> float:
    want, t0 = f"site {i} v{version}".encode(), time.monotonic()
    pending = list(agents)
    while pending and time.monotonic() - t0 < timeout:
        for agent in pending:
            if agent.proc.poll() is not None:
                raise RuntimeError(f"{agent.pod} exited; see {agent.log}")
        pending = [a for a in pending if a.try_get(f"s{i}.bench.example.test") != (200, want)]
        if pending:
            time.sleep(0.02)
    if pending:
        raise TimeoutError(f"s{i} v{version} not served after {timeout}s")
    return time.monotonic() - t0


def live(args: argparse.Namespace, env: dict[str, str], work: Path) -> dict[str, Any]:
    k8s.config.load_kube_config(config_file=env["KUBECONFIG"])
    custom = k8s.client.CustomObjectsApi()
    run(["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")], env)
    for ns in (TENANT, POOL_NS):
        run(["kubectl", "create", "namespace", ns], env)
    run(["kubectl", "-n", POOL_NS, "create", "serviceaccount", "staticsite-pool-agent"], env)
    pool = {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSitePool", "metadata": {"name": POOL},
            "spec": {"namespace": POOL_NS, "replicas": args.replicas, "namespaces": [TENANT],
                     "maxSites": max(args.sites, 1)}}
    run(["kubectl", "apply", "--server-side", "-f", "-"], env, json.dumps(pool))
    op_env = {**env, "STATICSITE_NAMESPACES": f"{TENANT},{POOL_NS}", "STATICSITE_HEALTH_PORT": "0",
              "STATICSITE_METRICS_PORT": "0", "STATICSITE_TIER_MOVE_GRACE_SECONDS": "5"}
    with (work / "operator.log").open("ab") as out:
        operator = subprocess.Popen([sys.executable, "-m", "staticsite_operator"], env=op_env, stdout=out,
                                    stderr=out, stdin=subprocess.DEVNULL)
    agents = [Agent(i, env, work) for i in range(args.replicas)]
    try:
        t0 = time.monotonic()
        for start in range(0, args.sites, 100):
            batch = [site(i, 1) for i in range(start, min(args.sites, start + 100))]
            run(["kubectl", "apply", "--server-side", "-f", "-"], env,
                json.dumps({"apiVersion": "v1", "kind": "List", "items": batch}))
        while True:
            found = reports(env)
            if len(found) == args.replicas and all(len(d) == args.sites for d in found.values()):
                break
            if time.monotonic() - t0 > 1800:
                raise TimeoutError("the pool did not serve every site in 30 minutes")
            time.sleep(2)
        converged = time.monotonic() - t0
        # Every site's status Ready too: until then the operator is still writing 1000
        # statuses, and a change measured meanwhile waits behind them (9 s, not 0.8 s).
        while ready_count(env) < args.sites:
            if time.monotonic() - t0 > 1800:
                raise TimeoutError("not every site was Ready in 30 minutes")
            time.sleep(2)
        ready = time.monotonic() - t0
        time.sleep(5)  # the agents settle (the first reloads' old workers exit)
        memory = [procs.memory_mib(a.proc.pid) for a in agents]
        disk = [sum(f.stat().st_size for f in (a.data / "sites").rglob("*") if f.is_file()) for a in agents]
        versions = dict.fromkeys(range(args.sites), 1)

        def update(i: int) -> None:
            versions[i] += 1
            custom.patch_namespaced_custom_object("staticsite.dev", "v1alpha1", TENANT, "staticsites", f"s{i}",
                                                  {"spec": requests.site_spec(i, "shared", POOL, versions[i])})

        latencies = []
        for _ in range(args.latency_samples):
            i = random.randrange(args.sites)
            t = time.monotonic()
            update(i)
            wait_content(agents, i, versions[i])
            latencies.append(time.monotonic() - t)
            time.sleep(0.5)

        seen: list[bool] = []
        stop = threading.Event()

        def load() -> None:  # bounded: 200000 requests or 600 s, to 127.0.0.1 only
            deadline = time.monotonic() + 600
            while not stop.is_set() and len(seen) < 200000 and time.monotonic() < deadline:
                i = random.randrange(args.sites)
                try:
                    status, body = agents[len(seen) % len(agents)].get(f"s{i}.bench.example.test")
                    seen.append(status == 200 and body.startswith(f"site {i} v".encode()))
                except OSError:
                    seen.append(False)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            updated = random.sample(range(args.sites), min(args.updates, args.sites))
            t = time.monotonic()
            for i in updated:
                update(i)
                time.sleep(0.1)
            for i in updated:
                wait_content(agents, i, versions[i])
            rolling = time.monotonic() - t
        finally:
            stop.set()
            loader.join()
        nginx_t = []
        for _ in range(3):
            t = time.monotonic()
            subprocess.run([_nginx(), "-t", "-q", "-c", str(agents[0].data / "nginx.conf")], check=True,
                           capture_output=True)
            nginx_t.append(time.monotonic() - t)
        reloads = [s for a in agents for s in a.reload_seconds()]
        return {
            "sites": args.sites, "replicas": args.replicas, "converged_s": round(converged, 1),
            "ready_s": round(ready, 1),
            "memory_mib": memory, "disk_bytes": disk,
            "change_to_served_s": {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
                                   "max": round(max(latencies), 3), "samples": len(latencies),
                                   "each": [round(x, 3) for x in latencies]},
            "rolling": {"updates": len(updated), "seconds": round(rolling, 1), "requests": len(seen),
                        "failed": seen.count(False)},
            "reload_s": {"median": round(statistics.median(reloads), 3) if reloads else None,
                         "p95": percentile(reloads, 0.95) if reloads else None, "batches": len(reloads)},
            "nginx_t_s": round(statistics.median(nginx_t), 3),
        }
    finally:
        for a in agents:
            a.stop()
        operator.terminate()
        operator.wait(timeout=60)
        args.out.mkdir(parents=True, exist_ok=True)
        for log in [*(a.log for a in agents), work / "operator.log"]:
            (args.out / log.name).write_bytes(log.read_bytes())
        for ns in (TENANT, POOL_NS):
            subprocess.run(["kubectl", "delete", "namespace", ns, "--wait=false"], env=env, capture_output=True,
                           check=False)
        subprocess.run(["kubectl", "delete", "staticsitepool", POOL, "--wait=false"], env=env, capture_output=True,
                       check=False)


def markdown(result: dict[str, Any]) -> str:
    d, s, lv = result["requests"]["dedicated"], result["requests"]["shared"], result.get("live") or {}
    rows = [
        "| | dedicated | shared (one pool) |", "|---|---|---|",
        f"| pods | {d['pods']} | {s['pods']} |",
        f"| CPU requested | {d['cpu_cores']} cores | {s['cpu_cores']} cores |",
        f"| memory requested | {d['memory_mib']} MiB | {s['memory_mib']} MiB |",
        f"| ClusterIPs | {d['cluster_ips']} | {s['cluster_ips']} |",
        f"| objects | {d['objects']} | {s['objects']} |",
    ]
    if lv:
        mem = lv["memory_mib"]
        rows += ["", "| live pool (per replica) | |", "|---|---|",
                 *[f"| replica {i}: agent + nginx RSS (PSS) | {m['total_rss']} MiB ({m['total_pss']} MiB); "
                   f"agent {m['agent_rss']}, nginx {m['nginx_rss']} in {m['nginx_processes']} processes |"
                   for i, m in enumerate(mem)],
                 f"| whole pool RSS | {round(sum(m['total_rss'] for m in mem), 1)} MiB |",
                 f"| bytes on disk per replica | {lv['disk_bytes']} |",
                 f"| first sync of {lv['sites']} sites: served by every replica / every site Ready | "
                 f"{lv['converged_s']} s / {lv['ready_s']} s |",
                 f"| content change to served by every replica | p50 {lv['change_to_served_s']['p50']} s, "
                 f"p95 {lv['change_to_served_s']['p95']} s ({lv['change_to_served_s']['samples']} changes) |",
                 f"| failed requests during {lv['rolling']['updates']} rolling updates | "
                 f"{lv['rolling']['failed']} of {lv['rolling']['requests']} |",
                 f"| reload with {lv['sites']} server blocks (batch of one change) | median {lv['reload_s']['median']}"
                 f" s, p95 {lv['reload_s']['p95']} s; nginx -t alone {lv['nginx_t_s']} s |"]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result: dict[str, Any] = {"requests": {"dedicated": requests.dedicated(args.sites),
                                           "shared": requests.shared(args.sites, args.replicas)}}
    tools = Path(run(["bash", "-c", f"source {ROOT}/hack/versions.env; echo $KUBE_VERSION"], dict(os.environ)).strip())
    path = f"{Path.home()}/.cache/staticsite-operator/{tools}/bin:{os.environ['PATH']}"
    env = {**os.environ, "PATH": path}
    started = False
    if not args.kubeconfig:
        cache = Path.home() / ".cache" / "staticsite-bench-pool"
        env |= {"CLUSTER_NAME": "staticsite-bench-pool", "KWOK_WORKDIR": str(cache),
                "KUBECONFIG_PATH": str(cache / "kubeconfig")}
        args.kubeconfig = run([str(ROOT / "hack" / "cluster.sh"), "up"], env).strip().splitlines()[-1]
        started = True
    env["KUBECONFIG"] = args.kubeconfig
    try:
        if args.work_dir:
            args.work_dir.mkdir(parents=True, exist_ok=True)
            args.work_dir.chmod(0o755)
            result["live"] = live(args, env, args.work_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="staticsite-bench-pool-") as tmp:
                Path(tmp).chmod(0o755)
                result["live"] = live(args, env, Path(tmp))
    finally:
        if started and not args.keep_cluster:
            subprocess.run([str(ROOT / "hack" / "cluster.sh"), "down"], env=env, check=False, capture_output=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(result))
    sys.stdout.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
