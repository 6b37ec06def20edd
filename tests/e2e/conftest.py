"""Fixtures of the end-to-end tier: the chart and sites on the local cluster's real node.

Every test here is marked `e2e`. The node (`staticsite-node`) runs real containers with
containerd and runc; the images are the local ones that hack/images.sh builds (`make
test` builds them before pytest starts). Without the real node, every test fails with
a message saying what to do: it is never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Cluster
from tests.e2e import kit

HERE = Path(__file__).resolve().parent
NODE = "staticsite-node"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs the local cluster's real node and the local images")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def node(cluster: Cluster) -> str:
    """The real node, Ready; a loud failure otherwise."""
    res = cluster.kubectl("get", "node", NODE, "-o", "json", check=False)
    if res.returncode != 0:
        pytest.fail(f"no node {NODE}: the e2e tests need the local cluster's real node "
                    "(hack/cluster.sh up starts it; REAL_NODE=0 leaves it out)", pytrace=False)
    conds = json.loads(res.stdout)["status"]["conditions"]
    if not any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
        pytest.fail(f"node {NODE} is not Ready: see ~/.cache/staticsite-operator/node/logs/kubelet.log",
                    pytrace=False)
    return NODE


@pytest.fixture(scope="session")
def images(node: str) -> kit.Images:
    return kit.images()


@pytest.fixture(scope="package")
def operator(cluster: Cluster, crd: None, images: kit.Images) -> Iterator[kit.OperatorRelease]:
    """The chart, installed for this package's tests (cluster-wide unless a test asks otherwise),
    and uninstalled after them: a cluster-wide operator left running would also reconcile
    the sites of the integration tests, which run their own operator."""
    release = kit.OperatorRelease(cluster)
    yield release
    release.uninstall()


@pytest.fixture
def real_namespace(cluster: Cluster, node: str) -> Iterator[Callable[[str], str]]:
    """Make namespaces on the real node (restricted PSS enforced); deleted after the test."""
    made: list[str] = []

    def make(prefix: str = "e2e") -> str:
        made.append(kit.real_node_namespace(cluster, prefix))
        return made[-1]

    yield make
    for name in made:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
