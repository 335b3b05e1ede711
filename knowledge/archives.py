"""A docs source given as a zip file (a Confluence or Notion export as downloaded): unpacked
into a folder supportbot owns, again only when the zip changes, then indexed as a folder.

Unpacking is defensive: members with absolute paths or `..` (zip slip), links and device
files are never written, and the total size is bounded, so a hostile or broken archive
cannot write outside its folder or fill the disk. A failed unpack leaves the last good
folder in place (the new one is built in a scratch folder and renamed over it).
"""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_UNPACKED_BYTES = 2_000_000_000
MARK = ".unpacked-from.json"


@dataclass(frozen=True)
class Unpacked:
    ok: bool
    folder: Path
    message: str
    unsafe: int = 0  # entries refused (absolute paths, '..', links)


def unpack(archive: Path, folder: Path, max_bytes: int = MAX_UNPACKED_BYTES) -> Unpacked:
    """Bring `folder` to the contents of `archive` (a no-op when it is unchanged)."""
    try:
        info = archive.stat()
    except OSError as err:
        return _kept(folder, f"{archive} cannot be read ({err.strerror or err})")
    stamp = {"archive": str(archive), "size": info.st_size, "mtime": info.st_mtime}
    try:
        if json.loads((folder / MARK).read_text("utf-8")) == stamp:
            return Unpacked(True, folder, f"{archive.name} unchanged")
    except (OSError, ValueError):
        pass
    scratch = folder.with_name(folder.name + ".unpacking")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        skipped = _extract(archive, scratch, max_bytes)
        (scratch / MARK).write_text(json.dumps(stamp), "utf-8")
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        shutil.rmtree(scratch, ignore_errors=True)
        return _kept(folder, f"{archive.name} could not be unpacked ({err})")
    shutil.rmtree(folder, ignore_errors=True)
    scratch.rename(folder)
    note = f"; {skipped} unsafe entries (absolute paths, '..', links) not unpacked" if skipped else ""
    return Unpacked(True, folder, f"unpacked {archive.name}{note}", skipped)


def _extract(archive: Path, target: Path, max_bytes: int) -> int:
    skipped = 0
    total = 0
    target.mkdir(parents=True)
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            name = PurePosixPath(member.filename.replace("\\", "/"))
            kind = stat.S_IFMT(member.external_attr >> 16)  # 0: the writer gave no Unix file type
            if name.is_absolute() or ".." in name.parts or kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                skipped += 1
                continue
            if member.is_dir():
                continue
            total += member.file_size
            if total > max_bytes:
                raise ValueError(f"more than {max_bytes / 1e9:.1f} GB unpacked")
            out = target.joinpath(*name.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(member) as source, open(out, "wb") as sink:
                shutil.copyfileobj(source, sink)
    return skipped


def _kept(folder: Path, why: str) -> Unpacked:
    if (folder / MARK).is_file():
        return Unpacked(False, folder, f"{why}; indexed the last unpacked copy")
    return Unpacked(False, folder, f"{why}; nothing to index from it yet")
