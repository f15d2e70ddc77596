"""Run and supervise render worker processes (blender_scripts/render_scene.py).

A worker is a separate process (Python with the bpy module, or a Blender binary) that serves
JSON-line jobs. Crashes and hangs stay in that process: the supervisor restarts it and retries
the job a bounded number of times.
"""
import collections
import json
import os
import queue
import shutil
import subprocess
import sys
import threading

from clevr_remv.errors import ClevrRemvError
from clevr_remv.resources import resource_dir

EVENT_PREFIX = "@@clevr-remv "  # must match blender_scripts/render_scene.py
TERMINAL_EVENTS = {"probe", "done"}
STARTUP_TIMEOUT_S = 300.0


class WorkerFailure(Exception):
    """The worker process died or stopped answering; the job may succeed on a fresh worker."""


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


class RenderWorker:
    """One worker process and its event stream."""

    def __init__(self, command: list, device: str = "cpu", threads: int = 0, view_timeout: float = 600.0):
        self.command = command
        self.env = dict(os.environ, CLEVR_REMV_DEVICE=device, CLEVR_REMV_THREADS=str(threads))
        self.view_timeout = view_timeout
        self.process = None
        self.events = None
        self.log_tail = collections.deque(maxlen=15)

    def start(self):
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=self.env)
        self.events = queue.Queue()
        threading.Thread(target=self._read_events, args=(self.process, self.events), daemon=True).start()
        self._next_event(STARTUP_TIMEOUT_S)  # "ready"

    def _read_events(self, process, events):
        for line in process.stdout:
            if line.startswith(EVENT_PREFIX):
                events.put(json.loads(line[len(EVENT_PREFIX):]))
            elif line.strip():
                self.log_tail.append(line.rstrip())
        events.put(None)  # end of stream: the process exited

    def _next_event(self, timeout):
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise WorkerFailure(f"no answer from the render worker in {timeout:.0f} s") from None
        if event is None:
            code = self.process.wait()
            raise WorkerFailure(f"the render worker exited (code {code}); last output: "
                                + " | ".join(self.log_tail))
        return event

    def request(self, job: dict, on_event=None) -> dict:
        """Send a job; call ``on_event`` for each progress event; return the final event."""
        if self.process is None:
            self.start()
        try:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise WorkerFailure(f"cannot send a job to the render worker: {error}") from error
        while True:
            event = self._next_event(self.view_timeout)
            if event["event"] == "error":
                raise ClevrRemvError(f"render worker: {event['message']}")
            if event["event"] in TERMINAL_EVENTS:
                return event
            if on_event is not None:
                on_event(event)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


class SupervisedWorker:
    """A RenderWorker that is restarted after a crash or hang and retried ``retries`` times."""

    def __init__(self, command: list, device: str = "cpu", threads: int = 0,
                 view_timeout: float = 600.0, retries: int = 2):
        self.worker = RenderWorker(command, device, threads, view_timeout)
        self.retries = retries

    def run(self, job: dict, what: str, on_event=None, on_retry=None) -> dict:
        """Run ``job``; ``what`` names it in errors; ``on_retry`` is called before each retry."""
        for attempt in range(self.retries + 1):
            try:
                return self.worker.request(job, on_event)
            except WorkerFailure as failure:
                self.worker.stop()
                if attempt == self.retries:
                    raise ClevrRemvError(f"{what}: rendering failed {self.retries + 1} times; "
                                         f"last failure: {failure}") from failure
                if on_retry is not None:
                    on_retry()

    def close(self):
        self.worker.stop()
