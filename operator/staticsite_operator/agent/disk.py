"""The agent's data directory.

    sites/<site>/<revision>/   a revision's files, complete before anything names them
    gen/<n>/_g<hash>.conf      configuration generation n: one server block per group of
                               alike sites, and a map from each host to its site's revision
    gen/<n>/_maps.conf         the maps the sites share
    gen/<n>/_status.conf       the loopback server that answers the generation number
    conf -> gen/<n>            what nginx includes; swapped by one rename (atomic)
    nginx.conf                 the main configuration (includes conf/*.conf)
    check/                     scratch configurations for `nginx -t`
    tmp/                       nginx's pid and temporary files
    empty/                     the root of a Host no map names (none reaches it)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class Layout:
    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.sites = self.root / "sites"
        self.gens = self.root / "gen"
        self.conf = self.root / "conf"
        self.main = self.root / "nginx.conf"
        self.check = self.root / "check"
        self.tmp = self.root / "tmp"
        self.empty = self.root / "empty"
        for path in (self.root, self.sites, self.gens, self.check, self.tmp, self.empty):
            path.mkdir(parents=True, exist_ok=True)
            # nginx's workers may run as another user (tests run as root). A mount point
            # that is not ours (the pool pod's emptyDir, root's, open to its fsGroup) is
            # left as the kubelet made it: only its owner may chmod it.
            if path.stat().st_uid == os.getuid():
                path.chmod(0o755)

    def revision(self, site: str, revision: str) -> Path:
        return self.sites / site / revision

    def generation(self, n: int) -> Path:
        return self.gens / str(n)

    def switch(self, n: int) -> None:
        """Point `conf` at generation n in one rename."""
        link = self.root / f".conf-{n}"
        link.unlink(missing_ok=True)
        link.symlink_to(self.generation(n).relative_to(self.root))
        link.replace(self.conf)

    def keep_only(self, generations: set[int], revisions: set[tuple[str, str]]) -> None:
        """Remove other generations, and revision directories no kept generation names."""
        for path in self.gens.iterdir():
            if not path.name.isdigit() or int(path.name) not in generations:
                shutil.rmtree(path, ignore_errors=True)
        for site_dir in self.sites.iterdir():
            for rev in site_dir.iterdir():
                if (site_dir.name, rev.name) not in revisions:
                    shutil.rmtree(rev, ignore_errors=True)
            if not any(site_dir.iterdir()):
                site_dir.rmdir()

    def bytes_used(self) -> int:
        total = 0
        for dirpath, _dirs, names in os.walk(self.sites):
            for name in names:
                try:
                    total += (Path(dirpath) / name).stat().st_size
                except OSError:
                    continue
        return total
