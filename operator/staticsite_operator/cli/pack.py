"""Pack a build folder into a StaticSite's inline content, as the operator will store it. Pure
but for reading the folder.

What is packed follows what the hosts' CLIs upload: every file, but for hidden ones (a name
starting with '.', except `.well-known`), `node_modules` and `__MACOSX`. `_redirects` and
`_headers` are packed like any file: the operator reads them (docs/compat.md). A symbolic link
is packed as the file it points to when that file is inside the folder; one that leaves the
folder is an error (the pod would not have its target either).

The size is measured the way the operator measures it (core/render.py: ConfigMap keys, text,
base64 of binary files and the rendered nginx.conf), so a folder that packs here is not
refused later as ContentTooLarge.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydantic

from ..api import models
from ..core import hostfiles
from ..core.nginxconf import render_nginx_conf
from ..core.render import config_key

SKIPPED_NAMES = frozenset({"node_modules", "__MACOSX"})
KEPT_HIDDEN = frozenset({".well-known"})
MAX_FILES = 5000  # models.InlineContent.files max_length
PROGRESS_EVERY = 500


class PackError(Exception):
    """The folder cannot become inline content; the message says what to do instead."""


@dataclass(frozen=True)
class Packed:
    """The folder as inline files, and what it weighs in the site's ConfigMap."""

    files: tuple[models.File, ...]
    size: int              # bytes the operator's ConfigMap will hold (files and nginx.conf)
    skipped: tuple[str, ...]  # relative paths left out (hidden, node_modules)

    def content(self) -> dict[str, object]:
        """spec.content, as JSON for the API."""
        return {"inline": {"files": [f.model_dump(mode="json", by_alias=True, exclude_none=True)
                                     for f in self.files]}}

    def host_files(self) -> dict[str, str | bytes]:
        """The `_redirects` and `_headers` at the root, as the operator reads them."""
        names = (hostfiles.REDIRECTS_FILE, hostfiles.HEADERS_FILE)
        return {f.path: (f.content if f.content is not None else f.data()) for f in self.files if f.path in names}


def _skipped(name: str) -> bool:
    return name in SKIPPED_NAMES or (name.startswith(".") and name not in KEPT_HIDDEN)


def walk(root: Path) -> Iterator[tuple[str, Path | None]]:
    """(relative path, file to read) in a stable order; the file is None for a skipped path."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        for name in sorted(dirnames):
            if _skipped(name):
                yield (rel_dir / name).as_posix() + "/", None
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        # A symlink to a directory is listed in dirnames and not followed: refuse it below.
        for name in sorted(filenames) + sorted(d for d in dirnames if (here / d).is_symlink()):
            rel = (rel_dir / name).as_posix()
            yield rel, (None if _skipped(name) else here / name)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]


def _read(root: Path, rel: str, path: Path) -> bytes:
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(root.resolve()):
            raise PackError(f"{rel}: a symbolic link to {target}, outside the folder: copy the file into it")
        if not target.is_file():
            raise PackError(f"{rel}: a symbolic link to a directory: copy the files instead")
        path = target
    elif not path.is_file():
        raise PackError(f"{rel}: not a regular file")
    return path.read_bytes()


def to_file(rel: str, data: bytes) -> models.File:
    """One file of the site: text when it is UTF-8 without NUL bytes, base64 otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        fields: dict[str, str] = {"path": rel, "content": text}
    else:
        fields = {"path": rel, "binaryContent": base64.b64encode(data).decode()}
    try:
        return models.File.model_validate(fields)
    except pydantic.ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise PackError(f"{rel}: this file name cannot be served ({reasons}); rename it") from None


def weight(files: tuple[models.File, ...], routing: models.Routing) -> int:
    """Bytes the site's ConfigMap will hold: keys and values of every file, and nginx.conf
    (as core/render.py counts them)."""
    size = 0
    for f in files:
        value = f.content if f.content is not None else base64.b64encode(f.data()).decode()
        size += len(config_key(f.path)) + len(value)
    packed = Packed(files, 0, ())
    host = hostfiles.parse_site(packed.host_files(), routing.semantics).host_rules()
    spec = models.StaticSiteSpec.model_validate({"content": packed.content(),
                                                 "routing": routing.model_dump(by_alias=True, exclude_unset=True)})
    return size + len("nginx.conf") + len(render_nginx_conf(spec, host=host))


def too_large(folder: Path, size: int, files: tuple[models.File, ...]) -> str:
    """The message for a folder over the inline limit: the largest files, and what to use."""
    largest = sorted(files, key=lambda f: len(f.content or f.binary_content or ""), reverse=True)[:3]
    names = ", ".join(f"{f.path} ({len(f.content or f.binary_content or '') // 1024} KiB)" for f in largest)
    return (f"{folder} is too large for inline content: {size:,} bytes once packed, over the "
            f"{models.MAX_CONTENT_BYTES:,}-byte limit of one ConfigMap (largest: {names}).\n"
            f"Serve it from an archive instead:\n"
            f"  staticsite pack {folder} -o site.tar.gz     # prints its sha256\n"
            f"  # upload site.tar.gz where the cluster can fetch it over http(s), then:\n"
            f"  staticsite deploy --archive-url URL --sha256 SHA256 --name NAME\n"
            f"or from git (spec.content.git: docs/api.md).")


def pack(folder: Path, routing: models.Routing | None = None, *, limit: bool = True,
         progress: Callable[[int, int], None] | None = None) -> Packed:
    """The folder as inline content; PackError when it cannot be one (the message says why
    and what to do). `progress(files, bytes)` is told every PROGRESS_EVERY files."""
    if not folder.is_dir():
        raise PackError(f"{folder}: not a directory: give the folder your site generator builds (dist, public, build)")
    routing = routing or models.Routing()
    files: list[models.File] = []
    skipped: list[str] = []
    read = 0
    for rel, path in walk(folder):
        if path is None:
            skipped.append(rel)
            continue
        if rel == models.HEALTH_PATH:
            raise PackError(f"{rel}: the path /{models.HEALTH_PATH} is the health probe's; rename the file")
        data = _read(folder, rel, path)
        files.append(to_file(rel, data))
        read += len(data)
        if progress is not None and len(files) % PROGRESS_EVERY == 0:
            progress(len(files), read)
        if limit and len(files) > MAX_FILES:
            raise PackError(f"{folder} holds more than {MAX_FILES} files, the most inline content can hold: "
                            "serve it from an archive (staticsite pack) or git")
    if not files:
        raise PackError(f"{folder} holds no files to serve (hidden files are not packed)")
    result = tuple(files)
    size = weight(result, routing) if len(result) <= MAX_FILES else 0
    if limit and size > models.MAX_CONTENT_BYTES:
        raise PackError(too_large(folder, size, result))
    return Packed(result, size, tuple(skipped))


def archive(packed: Packed, out: Path) -> str:
    """The packed files as a reproducible .tar.gz (sorted, no owners or times), for
    spec.content.archive; its SHA-256 (hex)."""
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in sorted(packed.files, key=lambda f: f.path):
            data = f.data()
            info = tarfile.TarInfo(f.path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(out.read_bytes()).hexdigest()
