"""Which operator is measured: the working tree (default) or a committed snapshot.

`--git-ref REF` extracts operator/ and crds/ as committed at REF (`git archive`, which
writes nothing to the repository) into a temporary directory. The operator subprocess
and the floor's `render` then import that copy first (PYTHONPATH / sys.path), and its
CRD is installed: a figure can be tied to a commit while the tree keeps changing.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .cluster import ROOT


@dataclass(frozen=True)
class Source:
    root: Path           # the directory holding operator/ and crds/
    ref: str | None      # None: the working tree
    commit: str
    dirty: bool          # the working tree differs from HEAD under operator/ or crds/

    @property
    def python_path(self) -> Path:
        return self.root / "operator"

    @property
    def crd(self) -> Path:
        return self.root / "crds" / "staticsite.dev_staticsites.yaml"

    def describe(self) -> str:
        if self.ref:
            return f"{self.ref} ({self.commit[:12]})" if not self.commit.startswith(self.ref) else self.commit[:12]
        return f"working tree at {self.commit[:12]}{' with uncommitted changes' if self.dirty else ''}"


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=60, check=False)


def resolve(ref: str | None, scratch: Path) -> Source:
    if ref is None:
        head = _git("rev-parse", "HEAD").stdout.decode().strip() or "unknown"
        dirty = _git("diff", "--quiet", "HEAD", "--", "operator", "crds").returncode != 0
        untracked = _git("ls-files", "--others", "--exclude-standard", "--", "operator").stdout.strip()
        return Source(ROOT, None, head, dirty or bool(untracked))
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    if commit.returncode != 0:
        raise SystemExit(f"--git-ref {ref}: not a commit ({commit.stderr.decode().strip()})")
    archive = _git("archive", "--format=tar", ref, "operator", "crds")
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref}: {archive.stderr.decode().strip()}")
    scratch.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(scratch, filter="data")
    return Source(scratch, ref, commit.stdout.decode().strip(), False)
