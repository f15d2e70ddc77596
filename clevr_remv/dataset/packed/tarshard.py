"""One tar shard: written deterministically with its SHA-256 and member index, read by offset.

Members are plain ustar entries (one 512-byte header, the file's own bytes, zero padding to 512),
mode 0644, owner 0, the source file's modification time. The index records, for every sample in
order, its key and the (offset, size) of each field's bytes, so a reader fetches one member with a
single positioned read and never scans the archive.
"""

import hashlib
import io
import os
import tarfile
from pathlib import Path

from clevr_remv.dataset.atomic import atomic_path
from clevr_remv.errors import ClevrRemvError

BLOCK = tarfile.BLOCKSIZE
HASH_CHUNK = 1 << 20


def member_bytes(size: int) -> int:
    """Bytes one member of ``size`` bytes takes in a shard (header and padding included)."""
    return BLOCK + -(-size // BLOCK) * BLOCK


def archive_bytes(members: int) -> int:
    """Bytes of a shard whose members take ``members`` bytes (end blocks and record padding added)."""
    ended = members + 2 * BLOCK
    return -(-ended // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


class _HashingWriter:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, file):
        self.file, self.sha256, self.size = file, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)

    def tell(self) -> int:
        return self.size


def write_shard(path, samples, fields) -> dict:
    """Write the tar shard ``path`` atomically from ``samples``: (key, [source file per field])
    pairs, the files in the order of ``fields``. Returns {"bytes", "sha256", "index"} where the
    index is {"fields", "samples": [{"key", "members": [[offset, size] per field]}, ...]}.
    """
    rows = []
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        writer = _HashingWriter(file)
        with tarfile.open(fileobj=writer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for key, sources in samples:
                members = []
                for field, source in zip(fields, sources, strict=True):
                    data = Path(source).read_bytes()
                    info = tarfile.TarInfo(f"{key}.{field}")
                    info.size, info.mode, info.mtime = len(data), 0o644, int(os.stat(source).st_mtime)
                    tar.addfile(info, io.BytesIO(data))
                    members.append([tar.offset - member_bytes(len(data)) + BLOCK, len(data)])
                rows.append({"key": key, "members": members})
    index = {"fields": list(fields), "samples": rows}
    return {"bytes": writer.size, "sha256": writer.sha256.hexdigest(), "index": index}


def file_sha256(path, progress=None) -> str:
    """SHA-256 of the file at ``path`` (hex); ``progress(n)`` is called with each chunk's size."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(HASH_CHUNK), b""):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def read_member(fd: int, offset: int, size: int, name: str) -> bytes:
    """``size`` bytes at ``offset`` of the open shard ``fd``; ``name`` (shard:member) is named
    in the error when the shard ends early."""
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise ClevrRemvError(
            f"{name}: the shard ends inside this member (truncated: {len(data)} of {size} bytes); "
            f"run `clevr-remv validate --data <packed folder>` and rerun the same `clevr-remv pack` "
            "command to rewrite the damaged shard"
        )
    return data


def member_headers(path) -> list:
    """(name, data offset, size) of every member of the tar at ``path``, from its headers.
    Raises tarfile.TarError (or OSError) on an archive that cannot be read."""
    with tarfile.open(path, mode="r:") as tar:
        return [(member.name, member.offset_data, member.size) for member in tar]
