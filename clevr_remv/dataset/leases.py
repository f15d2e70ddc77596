"""Which runs are still at work: each run holds a lease, a small file it keeps locked and touches.

A lease names its run by a random id, so no two runs share one whatever their host names and
pids (containers often all run as PID 1 and may share a host name). The file holds the id, the
host name, the pid and the machine key: the kernel's boot id, which all containers of one
machine share and no other machine has. Whether the run is alive is then decided

- on the same machine, by the lock: the holder keeps an exclusive ``flock`` on the file until it
  ends, and the kernel drops it when the process dies, however it dies;
- elsewhere (a lock taken over a network filesystem may be local to one client), by the heartbeat:
  the holder touches the file every HEARTBEAT_S seconds, and a lease untouched for longer than the
  caller's ``stale_after`` belongs to a dead run.

A command that allows one run per folder (``pack``) holds an exclusive lock file instead
(`exclusive`), whose lock the kernel also drops however its holder dies.
"""

import contextlib
import fcntl
import json
import os
import re
import secrets
import socket
import threading
import time
from pathlib import Path

HOST_ENV = "CLEVR_REMV_HOSTNAME"  # overrides the host name (tests simulate several hosts with it)
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
HEARTBEAT_S = 60.0
# A lease touched this recently belongs to a run at work (used where guessing wrong costs only time).
RECENT_S = 5 * HEARTBEAT_S

# (device, inode) of the leases this process holds: never probed, whatever path names them (closing a
# probe of one's own file would drop the lock where flock is emulated by POSIX locks, as on NFS).
_held = set()


def host_name() -> str:
    """This machine's name as written into leases (``CLEVR_REMV_HOSTNAME`` overrides it)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", os.environ.get(HOST_ENV) or socket.gethostname())


def machine_key() -> str:
    """What identifies this machine: its boot id (plus the ``CLEVR_REMV_HOSTNAME`` override, with
    which tests make one machine look like several); the host name where there is no boot id."""
    try:
        boot = Path(BOOT_ID_PATH).read_text().strip()
    except OSError:
        boot = ""
    override = os.environ.get(HOST_ENV)
    return "/".join(part for part in (boot or socket.gethostname(), override) if part)


def held_here(path) -> bool:
    """Whether this process holds the lease at ``path``."""
    try:
        found = os.stat(path)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) in _held


def new_run_id() -> str:
    """A random run id: 16 hex digits."""
    return secrets.token_hex(8)


class Lease:
    """A lease at ``path`` held by this process from creation until `release`.

    The file is created exclusively and locked before its content is written, so a reader that
    finds the content also finds the lock taken. With ``heartbeat_s``, a thread touches it that often.
    """

    def __init__(self, path, run_id: str, heartbeat_s=HEARTBEAT_S):
        self.path, self.run_id = Path(path), run_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.write(
            self._fd,
            json.dumps({"run": run_id, "host": host_name(), "pid": os.getpid(), "machine": machine_key()}).encode(),
        )
        found = os.fstat(self._fd)
        self._key = (found.st_dev, found.st_ino)
        _held.add(self._key)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if heartbeat_s:
            threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True).start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock, contextlib.suppress(OSError):
                if self._fd is not None:
                    os.utime(self._fd)

    def release(self) -> None:
        """End the lease: the file goes first, then the lock (idempotent)."""
        with self._lock:
            if self._fd is None:
                return
            self._stop.set()
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            _held.discard(self._key)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lease_alive(path, stale_after: float):
    """Whether the run of the lease at ``path`` may still be running: True, False, or None when
    there is no lease there (never made, or released)."""
    if held_here(path):
        return True  # checked without opening it: closing any descriptor of it may drop a POSIX lock
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        found = os.fstat(fd)
        try:
            owner = json.loads(os.read(fd, 4096) or b"null")
        except ValueError:
            owner = None
        if isinstance(owner, dict) and owner.get("machine") == machine_key():
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False  # nobody holds it: the run ended without releasing it
        return time.time() - found.st_mtime <= stale_after
    finally:
        os.close(fd)


class LockHeld(Exception):
    """Another live process holds the lock file ``path``; ``owner`` is what it wrote there (run,
    host, pid, started) or {} when it has not written it yet."""

    def __init__(self, path, owner: dict):
        super().__init__(f"{path} is held by {owner or 'another process'}")
        self.path, self.owner = Path(path), owner


@contextlib.contextmanager
def exclusive(path):
    """Hold the lock file at ``path`` while the body runs, or raise LockHeld at once.

    The lock is an exclusive ``flock``, which the kernel drops when its holder ends however it
    ends (an error, a crash, SIGKILL), so a dead holder never blocks the next run; the file names
    its holder and is removed at the end.
    """
    path = Path(path)
    fd = _take(path)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # the file first, then the lock: whoever opened it meanwhile retries
        os.close(fd)


def _take(path: Path) -> int:
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(fd)
            os.close(fd)
            raise LockHeld(path, owner) from None
        if _names_file(path, fd):
            break
        os.close(fd)  # its holder removed the file after it was opened here: lock the one there now
    os.ftruncate(fd, 0)
    record = {"run": new_run_id(), "host": host_name(), "pid": os.getpid(), "started": time.time()}
    os.write(fd, json.dumps(record).encode())
    return fd


def _names_file(path: Path, fd: int) -> bool:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (found.st_dev, found.st_ino) == (opened.st_dev, opened.st_ino)


def _owner(fd: int) -> dict:
    try:
        owner = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def lock_holder(path):
    """What the live holder of the lock file ``path`` wrote there (a dict, {} when not yet), or None
    when nobody holds it (no file, or one left by a holder that died)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _owner(fd)
    finally:
        os.close(fd)
    return None
