"""Guard and preflight for the kind end-to-end tests (`make e2e-kind`).

- Collected only with --cluster=kind: `make test` (`pytest tests`) never sees them, and
  `pytest tests/e2e_kind` without the flag is a usage error rather than "0 tests ran".
- With the flag, a missing Docker engine, image, helm or kubectl is a test *failure*
  with a message saying what to do: never a skip that could pass CI by doing nothing.
- kind and its node image are pinned here (pytest-kind-ng defaults to kind v0.17 and
  Kubernetes 1.25, too old for the CRD's CEL rules); KIND_VERSION and --kind-image override.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import pytest_kind.cluster

from tests.conftest import _cluster_env_value

HERE = Path(__file__).resolve().parent
IMAGE = os.environ.get("IMAGE", "staticsite-operator:dev")  # the Makefile's IMAGE, exported to recipes
# kind v0.33.0 and its Kubernetes 1.36 node image (the local cluster's minor), by digest.
KIND_VERSION = "v0.33.0"
KIND_NODE_IMAGE = "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed"

pytest_kind.cluster.KIND_VERSION = os.environ.get("KIND_VERSION", KIND_VERSION)


def _kind_mode(config: pytest.Config) -> bool:
    return bool(config.getoption("--cluster") == "kind")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not _kind_mode(config) and HERE in collection_path.resolve().parents:
        return True
    return None


def pytest_configure(config: pytest.Config) -> None:
    if _kind_mode(config):
        if config.option.kind_image is None:
            config.option.kind_image = KIND_NODE_IMAGE
        return
    base = config.invocation_params.dir
    asked = [(base / arg.split("::")[0]).resolve() for arg in config.args]
    if any(path == HERE or HERE in path.parents for path in asked):
        raise pytest.UsageError("tests/e2e_kind runs only with --cluster=kind on a host with Docker: `make e2e-kind`")


def _tool(name: str) -> str | None:
    tools_bin = Path(_cluster_env_value("PATH"))
    if (tools_bin / name).is_file():
        return str(tools_bin)
    found = shutil.which(name)
    return str(Path(found).parent) if found else None


@pytest.fixture(scope="session", autouse=True)
def e2e_preflight() -> None:
    """Fail loudly, before kind starts, when this host cannot run the test."""
    if shutil.which("docker") is None:
        pytest.fail("the kind end-to-end test needs Docker, and there is no `docker` on PATH. "
                    "Install Docker (or run `make test`, which needs none).", pytrace=False)
    info = subprocess.run(["docker", "info"], check=False, capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.fail(f"`docker info` failed: is the Docker engine running?\n{info.stderr.strip()}", pytrace=False)
    image = subprocess.run(["docker", "image", "inspect", IMAGE], check=False, capture_output=True, timeout=60)
    if image.returncode != 0:
        pytest.fail(f"no local image {IMAGE}: build it first with `make image` (or `make e2e-kind`, which does).",
                    pytrace=False)
    for tool in ("helm", "kubectl"):
        if _tool(tool) is None:
            pytest.fail(f"`{tool}` not found on PATH nor in the pinned tools: run `make tools`.", pytrace=False)


@pytest.fixture(scope="session")
def tools_bin() -> str:
    """The directories holding helm and kubectl (the pinned tools when built), for Cluster's PATH."""
    dirs = [d for d in (_tool("helm"), _tool("kubectl")) if d]
    return ":".join(dict.fromkeys(dirs))
