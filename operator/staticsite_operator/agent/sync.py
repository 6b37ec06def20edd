"""One batch: every site whose newest entry is not yet served gets a new block
(poolconf.site_block; sites whose blocks are alike share one server block);
`nginx -t` checks the whole new generation; a site that breaks it keeps its last good
block (or stays out) and is reported; then one graceful reload.

Only the sites that changed are checked alone, and only when the whole generation
fails: the common case is one `nginx -t` and one reload per batch, however many sites
changed in it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import pool as pl
from ..core import poolconf
from . import metrics
from .disk import Layout
from .entries import Entry, InvalidEntry, files, parse, site_of, write_revision
from .nginx import Nginx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejection:
    revision: str
    error: str


class Syncer:
    def __init__(self, layout: Layout, nginx: Nginx, listen: str, status_port: int) -> None:
        self.layout = layout
        self.nginx = nginx
        self.listen = listen
        self.status_listen = f"127.0.0.1:{status_port}"
        self.entries: dict[str, Entry] = {}          # entry name -> entry
        self.invalid: dict[str, tuple[str, Rejection]] = {}  # entry name -> its site, and why no agent serves it
        self.live: dict[str, Entry] = {}             # site -> the entry served by the running generation
        self.blocks: dict[str, poolconf.SiteBlock] = {}      # site -> its block, as served
        self.candidates: dict[str, poolconf.SiteBlock] = {}  # the same for this batch's changed sites
        self.rejected: dict[str, Rejection] = {}     # site -> its refused newest revision
        self.generation = 0
        self.started = False

    # --- events ------------------------------------------------------------------------
    def seen(self, body: dict[str, Any]) -> None:
        """An entry was listed, added or modified: validate it and write its files (once)."""
        name = str((body.get("metadata") or {}).get("name"))
        try:
            entry = parse(body)
            target = self.layout.revision(entry.site, entry.revision)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                write_revision(target, files(entry, body))
        except InvalidEntry as exc:
            log.warning("%s", exc)
            revision = ((body.get("metadata") or {}).get("annotations") or {}).get(pl.REVISION_ANNOTATION, "")
            if (site := site_of(body)) is not None:
                self.invalid[name] = (site, Rejection(str(revision), str(exc)))
            self.entries.pop(name, None)
            return
        self.invalid.pop(name, None)
        self.entries[name] = entry

    def gone(self, name: str) -> None:
        self.entries.pop(name, None)
        self.invalid.pop(name, None)

    # --- a batch -----------------------------------------------------------------------
    def desired(self) -> dict[str, Entry]:
        newest: dict[str, Entry] = {}
        for entry in self.entries.values():
            if entry.site not in newest or entry.order > newest[entry.site].order:
                newest[entry.site] = entry
        return newest

    def pending(self) -> bool:
        desired = self.desired()
        return not self.started or set(desired) != set(self.live) or any(
            self.live[s].revision != e.revision and (self.rejected.get(s) or Rejection("", "")).revision != e.revision
            for s, e in desired.items() if s in self.live)

    def run(self) -> bool:
        """Apply what changed; True when nginx serves a new generation."""
        desired = self.desired()
        for site in list(self.rejected):
            if site not in desired or desired[site].revision != self.rejected[site].revision:
                del self.rejected[site]
        changed = {s: e for s, e in desired.items()
                   if (s not in self.live or self.live[s].revision != e.revision) and s not in self.rejected}
        removed = set(self.live) - set(desired)
        if self.started and not changed and not removed:
            return False
        started = time.monotonic()
        n = self.generation + 1
        self._write(n, changed, removed)
        # A running master checks the new configuration itself when it reloads, and keeps
        # the old one if it refuses it: one parse instead of `nginx -t` and then a second.
        # Only before the first start, or when the master refuses, does `nginx -t` run,
        # to find the site at fault.
        if (not self.started or not self._activate(n)) and not self._recover(n, changed, removed):
            metrics.RELOADS.labels("failed").inc()
            return False
        accepted = {s: e for s, e in self.live.items() if s not in removed and s not in changed}
        accepted |= {s: e for s, e in changed.items() if s not in self.rejected}
        # A refused revision leaves the site on its last good one (its block was kept in n).
        accepted |= {s: self.live[s] for s in changed if s in self.rejected and s in self.live}
        self.blocks = self._blocks_of(changed, removed)
        self._commit(n, accepted)
        metrics.RELOAD_SECONDS.observe(time.monotonic() - started)
        log.info("generation %d: %d sites, %d changed, %d removed, %d rejected, in %.2fs", n, len(self.live),
                 len(changed), len(removed), len(self.rejected), time.monotonic() - started)
        return True

    def _write(self, n: int, changed: dict[str, Entry], removed: set[str]) -> None:
        """Generation n: the unchanged sites' blocks as served, the changed ones' new blocks."""
        gen = self.layout.generation(n)
        gen.mkdir(mode=0o755)
        (gen / "_status.conf").write_text(poolconf.status_server(n, self.status_listen))
        self.candidates = {}
        for site, entry in changed.items():
            try:
                self.candidates[site] = poolconf.site_block(
                    entry.spec, key=site, root=str(self.layout.revision(site, entry.revision)), hosts=entry.hosts,
                    listen=self.listen, files=entry.routing_files)
            except ValueError as exc:
                self._reject(site, entry, str(exc))
        self._write_blocks(n, changed, removed)

    def _blocks_of(self, changed: dict[str, Entry], removed: set[str]) -> dict[str, poolconf.SiteBlock]:
        """The block of each site generation n serves: a changed site's new one, unless it was
        refused (then its last good one, if it has any)."""
        out = {s: b for s, b in self.blocks.items() if s not in removed and s not in changed}
        for site in changed:
            if site not in self.rejected:
                out[site] = self.candidates[site]
            elif site in self.blocks:
                out[site] = self.blocks[site]
        return out

    def _write_blocks(self, n: int, changed: dict[str, Entry], removed: set[str]) -> None:
        """Generation n's include files (poolconf.generation_files), in place of any before."""
        self._write_files(self.layout.generation(n), self._blocks_of(changed, removed))

    def _write_files(self, directory: Path, blocks: dict[str, poolconf.SiteBlock]) -> None:
        for old in directory.glob("_[gm]*.conf"):
            old.unlink()
        for name, text in poolconf.generation_files(blocks, fallback_root=str(self.layout.empty)).items():
            (directory / name).write_text(text)

    def _check_generation(self, n: int, changed: dict[str, Entry], removed: set[str]) -> bool:
        """`nginx -t` of generation n; if it fails, the changed sites that fail alone are set
        back to their last good block, and if that is not enough, all of them are."""
        everything = str(self.layout.generation(n) / "*.conf")
        ok, output = self.nginx.test(self._check("all", everything))
        if ok:
            return True
        log.warning("generation %d fails nginx -t; checking the %d changed site(s) alone", n, len(changed))
        for site, entry in changed.items():
            if site not in self.rejected:
                alone_ok, alone_out = self.nginx.test(self._check_alone(site))
                if not alone_ok:
                    self._reject(site, entry, alone_out)
        self._write_blocks(n, changed, removed)
        ok, output = self.nginx.test(self._check("all", everything))
        if ok:
            return True
        log.error("generation %d still fails nginx -t; keeping every site's last good block: %s", n,
                  self._clean(output))
        for site, entry in changed.items():
            if site not in self.rejected:
                self._reject(site, entry, output)
        self._write_blocks(n, changed, removed)
        return self.nginx.test(self._check("all", everything))[0]

    def _activate(self, n: int) -> bool:
        """Point `conf` at generation n and reload (or start) nginx: True once it serves n.
        If the master refuses n, `conf` points back at what it still serves."""
        self.layout.switch(n)
        if self.started:
            self.nginx.reload()
        else:
            self.nginx.start()
        if self.nginx.wait_for(n):
            self.started = True
            return True
        if not self.nginx.alive():
            raise RuntimeError(f"nginx exited loading generation {n}")
        log.warning("nginx refused generation %d: %s", n, self._clean(self.nginx.refused))
        if self.started:
            self.layout.switch(self.generation)
        return False

    def _recover(self, n: int, changed: dict[str, Entry], removed: set[str]) -> bool:
        """`nginx -t` finds the sites that break generation n and sets them back; then load n."""
        if not self._check_generation(n, changed, removed):
            return False
        if not self._activate(n):
            raise RuntimeError(f"nginx refused generation {n}, which passes nginx -t")
        return True

    def _commit(self, n: int, accepted: dict[str, Entry]) -> None:
        # The previous generation's files stay until the next batch: old workers may still
        # be answering requests with them.
        self.layout.keep_only({n, self.generation},
                              {(s, e.revision) for s, e in (*self.live.items(), *accepted.items())})
        self.live, self.generation = accepted, n
        metrics.RELOADS.labels("ok").inc()
        metrics.SITES.set(len(self.live))
        metrics.REJECTED.set(len(self.rejected))
        metrics.DISK_BYTES.set(self.layout.bytes_used())

    def _reject(self, site: str, entry: Entry, error: str) -> None:
        """The site keeps its last good block (or stays out) when the generation is written next."""
        self.rejected[site] = Rejection(entry.revision, self._clean(error))
        log.warning("site %s: revision %s refused: %s", site, entry.revision[:12], self.rejected[site].error)

    def _check_alone(self, site: str) -> Path:
        """A configuration of one changed site (its maps and block) for `nginx -t`."""
        alone = self.layout.check / "alone"
        alone.mkdir(exist_ok=True)
        self._write_files(alone, {site: self.candidates[site]})
        return self._check("one", str(alone / "*.conf"))

    def _check(self, name: str, include: str) -> Path:
        path = self.layout.check / f"{name}.conf"
        path.write_text(poolconf.main_conf(include=include, listen=self.listen, tmp_dir=str(self.layout.tmp),
                                           pid=str(self.layout.tmp / "check.pid")))
        return path

    def _clean(self, output: str) -> str:
        """nginx's complaint, without this pod's paths."""
        lines = [line for line in output.splitlines() if "[emerg]" in line or "[crit]" in line] or output.splitlines()
        return " ".join(lines)[:500].replace(str(self.layout.root) + "/", "")

    # --- what this pod reports -----------------------------------------------------------
    def states(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for site, entry in self.live.items():
            out[site] = {"served": entry.revision}
        for site, why in self.rejected.items():
            out.setdefault(site, {}).update({"rejected": why.revision, "error": why.error})
        for site, why in self.invalid.values():
            if site not in out:
                out[site] = {"rejected": why.revision, "error": why.error}
        return out
