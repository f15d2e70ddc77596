"""Atomic output files: write to a temporary file in the same folder, flush it to disk, then rename
it into place (and flush the folder, so that the rename itself survives a power loss)."""

import contextlib
import os
import tempfile
from pathlib import Path

TMP_PREFIX = ".tmp-"


def current_umask() -> int:
    """The process's umask: from /proc on Linux (no change to the process state), elsewhere by
    setting it and putting it back at once."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_path(path) -> None:
    """Flush a file's or a folder's data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_beside(path: Path) -> str:
    """A new empty temporary file in ``path``'s folder with the mode a plain ``open(path, "w")``
    would give (mkstemp's own mode is 0600, which would hide the file from other users)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=path.suffix)
    try:
        os.fchmod(handle, 0o666 & ~current_umask())
    finally:
        os.close(handle)
    return tmp


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    Readers see the old file or the complete new one, never a half-written file.
    """
    tmp = _temporary_beside(Path(path))
    try:
        yield Path(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(Path(path).parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def create_text_atomic(path, text: str) -> bool:
    """Write ``text`` to ``path`` only if ``path`` does not exist yet, atomically (a hard link to a
    complete temporary file); return whether this call created it."""
    path = Path(path)
    tmp = _temporary_beside(path)
    try:
        Path(tmp).write_text(text, encoding="utf-8")
        fsync_path(tmp)
        os.link(tmp, path)
        fsync_path(path.parent)
        return True
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
