"""`staticsite deploy` of a folder, served by real nginx pods on the real node.

The site author's whole loop as the chart's operator runs it: deploy a folder, open the
site, change a file, deploy again, and the new content (and only it) is what every Ready
pod serves; the folder's `_redirects` file becomes real redirects. On kwok only the stored
ConfigMap could be checked (tests/integration/test_cli.py); here nginx answers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import Cluster, wait_for
from tests.e2e import kit

BIN = Path(sys.executable).parent  # the venv's bin, where `staticsite` is installed


def deploy(cluster: Cluster, folder: Path, name: str, namespace: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "staticsite"), "deploy", str(folder), "--name", name, "-n", namespace,
                           "--timeout", "150"], env=cluster.env(), text=True, capture_output=True,
                          timeout=200, check=False)


def test_a_deployed_folder_is_served_and_a_redeploy_replaces_it(cluster: Cluster, operator: kit.OperatorRelease,
                                                                node: str, tmp_path: Path) -> None:
    operator.ensure()
    dist = tmp_path / "dist"
    (dist / "docs").mkdir(parents=True)
    (dist / "index.html").write_text("<h1>first build</h1>\n")
    (dist / "docs" / "intro.html").write_text("<p>intro</p>\n")
    (dist / "_redirects").write_text("/start  /docs/intro  301\n")
    with kit.namespace(cluster, "e2e-cli") as ns:
        first = deploy(cluster, dist, "blog", ns)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == f"http://blog.{ns}.svc"
        with kit.port_forward(cluster, ns, "service/blog", 80) as port:
            assert "first build" in kit.request("127.0.0.1", port, "/").body
            moved = kit.request("127.0.0.1", port, "/start")
            assert moved.status == 301 and moved.headers["location"].endswith("/docs/intro"), moved

        (dist / "index.html").write_text("<h1>second build</h1>\n")
        second = deploy(cluster, dist, "blog", ns)
        assert second.returncode == 0, second.stderr
        # deploy returns at Ready for the new generation: the rollout is done, old pods drain.
        wait_for(lambda: len(kit.pods(cluster, ns, kit.site_selector("blog"))) == 1, timeout=60,
                 what="the old pod to go")
        with kit.port_forward(cluster, ns, "service/blog", 80) as port:
            bodies = {kit.request("127.0.0.1", port, "/").body for _ in range(6)}
        assert bodies == {"<h1>second build</h1>\n"}, bodies
