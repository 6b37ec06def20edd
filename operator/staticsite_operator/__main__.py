"""`python -m staticsite_operator` / `staticsite-operator`: the operator's one launch command.

The image, the chart, `make dev`, the tests and the bench all start the operator through
`kopf_args`, configured by environment variables (config.Config lists them all). Extra
arguments are passed to `kopf run` unchanged (e.g. --verbose).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import MutableMapping

from kopf.cli import main as kopf_main

from .config import Config, ConfigError

APP = "staticsite_operator.app"


def kopf_args(config: Config, extra: list[str] | None = None) -> list[str]:
    """The `kopf run` command line for `config`."""
    scope = [f"--namespace={ns}" for ns in config.namespaces] or ["--all-namespaces"]
    # No --liveness: the operator serves /healthz and /readyz itself (runtime.health).
    return ["run", "--standalone", "-m", APP, f"--log-format={config.log_format}", *scope, *(extra or [])]


def prepare(env: MutableMapping[str, str]) -> None:
    """Give kopf an identity that needs no passwd entry.

    kopf names itself from POD_ID, else from getpass.getuser(), which raises KeyError for
    a UID that /etc/passwd does not list: the image's 65532, or any runAsUser a platform
    picks. The chart sets POD_ID to the pod's name; this is the fallback (in a pod, the
    host name is the pod's name).
    """
    env.setdefault("POD_ID", socket.gethostname())


def main() -> None:
    try:
        config = Config.from_env(os.environ)
    except ConfigError as exc:
        sys.exit(f"staticsite-operator: bad configuration: {exc}")
    prepare(os.environ)
    kopf_main(args=kopf_args(config, sys.argv[1:]), prog_name="staticsite-operator")


if __name__ == "__main__":
    main()
