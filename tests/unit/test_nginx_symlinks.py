"""Symlinks in fetched content cannot reach outside it (nginx `disable_symlinks if_not_owner`).

Content from git or an archive is written by the fetch container's user, so a link a
repository smuggles in (say to /etc/passwd) is owned by that user while its target is
not: nginx refuses it. A link whose owner matches its target's, like the links of a
ConfigMap volume, keeps working.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .nginx_harness import make_spec, serve, workdir

pytestmark = pytest.mark.nginx
NOBODY = 65534


def test_foreign_symlink_is_refused_and_own_symlink_served() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test chowns a symlink: run it as root (CI does)")
    with workdir() as tmp:
        root = tmp / "fetched"
        root.mkdir(mode=0o755)
        (root / "index.html").write_text("<h1>home</h1>")
        (root / "index.html").chmod(0o644)
        (root / "alias.html").symlink_to("index.html")         # owner root -> target owned by root
        evil = root / "passwd"
        evil.symlink_to(Path("/etc/passwd"))
        os.lchown(evil, NOBODY, NOBODY)                         # as the fetch container would own it
        with serve(make_spec({"index.html": "unused"}), root=root) as server:
            assert server.get("/alias.html").body == b"<h1>home</h1>"
            refused = server.get("/passwd")
            assert refused.status in (403, 404)
            assert b"root:" not in refused.body
