"""Run and supervise render worker processes (blender_scripts/render_scene.py).

A worker is a separate process (Python with the bpy module, or a Blender binary) that serves
JSON-line jobs. Crashes and hangs stay in that process: the supervisor restarts it and retries
the job a bounded number of times. Closing a worker asks it to stop after its current view, kills
it after a grace period, and removes every file it made outside the dataset.
"""

import collections
import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from clevr_remv.dataset.leases import Lease, lease_alive, new_run_id
from clevr_remv.errors import ClevrRemvError
from clevr_remv.resources import resource_dir
from clevr_remv.wording import plural

EVENT_PREFIX = "@@clevr-remv "  # must match blender_scripts/render_scene.py
TERMINAL_EVENTS = {"probe", "done"}
STARTUP_TIMEOUT_S = 300.0
GRACE_S = 5.0  # how long a closing worker may take to finish its view and exit before it is killed
SCRATCH_PREFIX = "clevr-remv-worker-"


class WorkerFailure(Exception):
    """The worker process died or stopped answering; the job may succeed on a fresh worker."""


class WorkerStopped(ClevrRemvError):
    """The worker was closed (the run is stopping): no job runs on it any more."""


def worker_script() -> str:
    return str(resource_dir("blender_scripts") / "render_scene.py")


def worker_command(blender=None, script=None) -> list:
    """The command line that starts a worker: the bpy module, or a Blender binary in background."""
    script = script or worker_script()
    if blender is None:
        return [sys.executable, "-u", script]
    if shutil.which(blender) is None:
        raise ClevrRemvError(f"--blender {blender}: not an executable file; pass the path of a Blender binary")
    return [blender, "--background", "--factory-startup", "--python", script, "--"]


def remove_stale_scratch(stale_after: float) -> list:
    """Delete the scratch folders in the temporary folder that no live driver holds (left by a
    driver that was killed); return their paths. Folders without a lease go when older than
    ``stale_after`` seconds."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*"):
        try:
            alive = lease_alive(folder / "lease", stale_after)
            changed = max([folder.stat().st_mtime] + [entry.stat().st_mtime for entry in folder.iterdir()])
            if alive is False or (alive is None and time.time() - changed > stale_after):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:
            continue  # removed meanwhile, or not ours to read
    return removed


class RenderWorker:
    """One worker process and its event stream.

    Each process gets a scratch folder of its own in the temporary folder, held by a lease of
    this process: the worker's own files and Blender's temporary folder go there (its TMPDIR), and
    the folder is removed when the process ends, however it ends.
    """

    def __init__(self, command: list, device: str = "cpu", threads: int = 0, view_timeout: float = 600.0):
        self.command = command
        self.env = dict(os.environ, CLEVR_REMV_DEVICE=device, CLEVR_REMV_THREADS=str(threads))
        self.view_timeout = view_timeout
        self.process = self.events = self.scratch = self._lease = None
        self.closed = False
        self._lock = threading.Lock()
        self.log_tail = collections.deque(maxlen=15)

    def start(self):
        with self._lock:
            if self.closed:
                raise WorkerStopped("the render worker is closed: the run is stopping")
            self.scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
            self._lease = Lease(self.scratch / "lease", new_run_id(), heartbeat_s=None)
            (self.scratch / "tmp").mkdir()
            try:
                self.process = subprocess.Popen(
                    self.command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env=dict(self.env, TMPDIR=str(self.scratch / "tmp")),
                )
            except OSError as error:
                self._remove_scratch()
                raise ClevrRemvError(
                    f"cannot start the render worker {self.command[0]}: "
                    f"{error.strerror or error}; --blender must name a Blender binary "
                    "(without it the bpy module renders)"
                ) from None
            self.events = queue.Queue()
            process, events = self.process, self.events
        threading.Thread(target=self._read_events, args=(process, events), daemon=True).start()
        self._next_event(process, events, STARTUP_TIMEOUT_S)  # "ready"

    def _read_events(self, process, events):
        for line in process.stdout:
            if line.startswith(EVENT_PREFIX):
                events.put(json.loads(line[len(EVENT_PREFIX) :]))
            elif line.strip():
                self.log_tail.append(line.rstrip())
        events.put(None)  # end of stream: the process exited

    def _next_event(self, process, events, timeout):
        try:
            event = events.get(timeout=timeout)
        except queue.Empty:
            raise WorkerFailure(f"no answer from the render worker in {timeout:.0f} s") from None
        if event is None:
            code = process.wait()
            raise WorkerFailure(f"the render worker exited (code {code}); last output: " + " | ".join(self.log_tail))
        return event

    def request(self, job: dict, on_event=None) -> dict:
        """Send a job; call ``on_event`` for each progress event; return the final event."""
        if self.process is None:
            self.start()
        process, events = self.process, self.events
        if process is None:
            raise WorkerFailure("the render worker was stopped")
        try:
            process.stdin.write(json.dumps(job) + "\n")
            process.stdin.flush()
        except (OSError, ValueError) as error:  # ValueError: the pipe was closed by stop()
            raise WorkerFailure(f"cannot send a job to the render worker: {error}") from error
        while True:
            event = self._next_event(process, events, self.view_timeout)
            if event["event"] == "error":
                raise ClevrRemvError(f"render worker: {event['message']}")
            if event["event"] in TERMINAL_EVENTS:
                return event
            if on_event is not None:
                on_event(event)

    def stop(self, grace: float = 0.0):
        """End the process: with ``grace``, ask it first (SIGTERM: stop after the current view; stdin
        closed: no more jobs) and wait that many seconds; then kill it. Its scratch folder goes."""
        with self._lock:
            process, self.process = self.process, None
        if process is not None:
            if grace > 0 and process.poll() is None:
                with contextlib.suppress(OSError):
                    process.send_signal(signal.SIGTERM)
                with contextlib.suppress(OSError):
                    process.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(grace)
            if process.poll() is None:
                process.kill()
            process.wait()
            with contextlib.suppress(OSError):
                process.stdin.close()
        with self._lock:
            self._remove_scratch()

    def _remove_scratch(self):
        if self._lease is not None:
            self._lease.release()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch = self._lease = None

    def close(self, grace: float = GRACE_S):
        """Stop the process for good (see `stop`): no job starts on this worker afterwards."""
        with self._lock:
            self.closed = True
        self.stop(grace)


class SupervisedWorker:
    """A RenderWorker that is restarted after a crash or hang and retried ``retries`` times."""

    def __init__(
        self, command: list, device: str = "cpu", threads: int = 0, view_timeout: float = 600.0, retries: int = 2
    ):
        self.worker = RenderWorker(command, device, threads, view_timeout)
        self.retries = retries

    def run(self, job: dict, what: str, on_event=None, on_retry=None) -> dict:
        """Run ``job``; ``what`` names it in errors; ``on_retry`` is called before each retry.
        Once the worker is closed, this raises WorkerStopped instead of starting a process."""
        for attempt in range(self.retries + 1):
            if self.worker.closed:
                raise WorkerStopped(f"{what}: stopped (the run is ending)")
            try:
                return self.worker.request(job, on_event)
            except WorkerFailure as failure:
                if self.worker.closed:
                    raise WorkerStopped(f"{what}: stopped (the run is ending)") from None
                self.worker.stop()
                if attempt == self.retries:
                    raise ClevrRemvError(
                        f"{what}: rendering failed {plural(self.retries + 1, 'time')}; last failure: {failure}"
                    ) from failure
                if on_retry is not None:
                    on_retry()

    def close(self, grace: float = GRACE_S):
        self.worker.close(grace)
