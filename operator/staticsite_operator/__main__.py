"""`python -m staticsite_operator` / `staticsite-operator`: the container's entrypoint.

A thin shell over `kopf run` so the image and the chart configure the operator with
environment variables instead of a long, easy-to-get-wrong command line:

    STATICSITE_NAMESPACES   comma-separated namespaces to watch; empty = all namespaces
    STATICSITE_LOG_FORMAT   plain | full | json (kopf's formats; json for log pipelines)
    STATICSITE_HEALTH_PORT  liveness endpoint port (GET /healthz), default 8080
    STATICSITE_METRICS_PORT Prometheus endpoint port, default 9090 (0 disables)
    STATICSITE_WORKERS      concurrent reconciles, default 8

Extra arguments are passed to `kopf run` unchanged (e.g. --verbose).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import MutableMapping

from kopf.cli import main as kopf_main


def kopf_args(env: dict[str, str], extra: list[str]) -> list[str]:
    namespaces = [ns.strip() for ns in env.get("STATICSITE_NAMESPACES", "").split(",") if ns.strip()]
    scope = [f"--namespace={ns}" for ns in namespaces] or ["--all-namespaces"]
    port = env.get("STATICSITE_HEALTH_PORT", "8080")
    return [
        "run", "--standalone", "-m", "staticsite_operator.handlers",
        f"--liveness=http://0.0.0.0:{port}/healthz",
        f"--log-format={env.get('STATICSITE_LOG_FORMAT', 'plain')}",
        *scope, *extra,
    ]


def prepare(env: MutableMapping[str, str]) -> None:
    """Give kopf an identity that needs no passwd entry.

    kopf names itself from POD_ID, else from getpass.getuser(), which raises KeyError for
    a UID that /etc/passwd does not list: the image's 65532, or any runAsUser a platform
    picks. The chart sets POD_ID to the pod's name; this is the fallback (in a pod, the
    host name is the pod's name).
    """
    env.setdefault("POD_ID", socket.gethostname())


def main() -> None:
    prepare(os.environ)
    kopf_main(args=kopf_args(dict(os.environ), sys.argv[1:]), prog_name="staticsite-operator")


if __name__ == "__main__":
    main()
