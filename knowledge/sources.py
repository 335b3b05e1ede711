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
    or /etc cannot leak into answers); it goes to `skipped` as (source, reason) if given."""
    if not root.path.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root.path, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            path = Path(dirpath) / filename
            source = path.relative_to(root.path).as_posix()
            if any(fnmatch.fnmatch(source, pattern) for pattern in root.exclude):
                continue
            if _outside(root, path):
                if skipped is not None:
                    skipped.append((source, LINK_OUT))
                continue
            if path.is_file():
                yield source, path


def _outside(root: DocsRoot, path: Path) -> bool:
    try:
        return not path.resolve().is_relative_to(root.path)
    except (OSError, RuntimeError):  # a link loop
        return True


def source_url(root: DocsRoot, source: str) -> str | None:
    """A public link for a doc when the root has a base URL configured."""
    if not root.url_base:
        return None
    return root.url_base.rstrip("/") + "/" + source
