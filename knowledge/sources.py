"""Walk docs folders: which files belong to the index, named by their path under the root."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path

from knowledge.documents import DocsRoot


LINK_OUT = "a link to a file outside the docs folder (not followed)"


def iter_source_files(root: DocsRoot, skipped: list[tuple[str, str]] | None = None) -> Iterator[tuple[str, Path]]:
    """Yield (source, path) in a stable order; hidden files and folders are ignored. A file
    that is a link resolving outside the root is never yielded (a stray link to an env file
    or /etc cannot leak into answers); it goes to `skipped` as (source, reason) if given.
    A link to another file of the root is that file under a second name (Debian's FAQ has
    every `X.html` as a link to `X.en.html`): the file is yielded once, under its own name,
    or under the first link's name when the file itself is hidden or excluded. Indexed
    twice, one page filled two of the three passages an answer is built from."""
    if not root.path.is_dir():
        return
    found: list[tuple[str, Path, Path]] = []  # (source, path, what it resolves to)
    for dirpath, dirnames, filenames in os.walk(root.path, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            path = Path(dirpath) / filename
            source = path.relative_to(root.path).as_posix()
            if any(fnmatch.fnmatch(source, pattern) for pattern in root.exclude):
                continue
            target = _inside(root, path)
            if target is None:
                if skipped is not None:
                    skipped.append((source, LINK_OUT))
                continue
            if path.is_file():
                found.append((source, path, target))
    chosen: dict[Path, tuple[str, Path]] = {}
    for source, path, target in found:
        if target not in chosen or (chosen[target][1].is_symlink() and not path.is_symlink()):
            chosen[target] = (source, path)
    keep = {source for source, _ in chosen.values()}
    for source, path, _ in found:
        if source in keep:
            yield source, path


def _inside(root: DocsRoot, path: Path) -> Path | None:
    """What `path` resolves to, or None when that is outside the root (or a link loop)."""
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # a link loop
        return None
    return target if target.is_relative_to(root.path) else None


def source_url(root: DocsRoot, source: str) -> str | None:
    """A public link for a doc when the root has a base URL configured."""
    if not root.url_base:
        return None
    return root.url_base.rstrip("/") + "/" + source
