"""The Ray executor: one actor per render worker on a Ray cluster, scenes handed out by the driver.

Each actor owns one supervised render process (reused for many scenes) with its own CPUs or one
GPU, holds a run lease of its own, and writes straight into the dataset folder, which every node
must see at the same path. The driver keeps every actor busy, feeds its progress bar with the
actors' per-view events, and gives the scene of an actor (or node) that is lost to another actor,
a bounded number of times. It never deletes a lost actor's temporary folder itself: an actor that
is only unreachable may still finish and rename it (the first rename makes the scene, a later one
is discarded); the folder goes once its lease says the actor is dead.
``ray`` is imported only when this executor runs (the ``cluster`` extra).
"""

import collections
import os
import socket
import time
import uuid
from pathlib import Path

from clevr_remv.dataset.store import TMP_PREFIX, host_name, remove_stale_temporaries, start_run
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.render import GRACE_S, SupervisedWorker, remove_stale_scratch
from clevr_remv.generate.scene_job import Progress, SceneJob, make_scene
from clevr_remv.wording import plural

MAX_SCENE_ATTEMPTS = 3  # a scene whose actor died this often stops the run
MAX_START_FAILURES = 5  # actors that died before their first scene, before the run gives up
ACTOR_START_TIMEOUT_S = 300.0  # how long work may wait for a replacement actor to start
POLL_S = 0.2


def import_ray():
    """The ray module, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError as error:
        raise ClevrRemvError(
            "--executor ray: the ray package is not installed; pip install clevr-remv[cluster]"
        ) from error
    return ray


def check_reachable(address) -> None:
    """Fail fast, with a clear message, when nothing listens at a ``HOST:PORT`` or
    ``ray://HOST:PORT`` address (ray.init itself would wait for minutes)."""
    if address in (None, "auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not (host and port.isdigit()):
        raise ClevrRemvError(
            f"--ray-address {address}: write HOST:PORT of the head node (e.g. 10.0.0.1:6379), ray://HOST:10001, or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise ClevrRemvError(
            f"--ray-address {address}: nothing answers there ({error.strerror or error}); "
            "start the cluster with `ray start --head` on the head node, or fix the address"
        ) from error


class RenderActor:
    """A Ray actor owning one supervised render worker; makes the scenes the driver hands it."""

    def __init__(
        self, job: SceneJob, command, device: str, threads: int, view_timeout: float, events, stale_after: float
    ):
        self.job, self.events, self.stale_after = job, events, stale_after
        self.worker = SupervisedWorker(command, device, threads, view_timeout)
        self.lease = None

    def identity(self, check_file: str) -> dict:
        """Who this actor is (host, pid, Ray node, run id) and what it reads in the driver's check
        file (None when the dataset folder is not visible here). Clears this node's leftovers."""
        import ray

        try:
            token = Path(check_file).read_text()
        except OSError:
            token = None
        else:
            self.lease = start_run(Path(self.job.root) / "scenes")
            remove_stale_temporaries(Path(self.job.root) / "scenes", self.stale_after)
            remove_stale_scratch(self.stale_after)
        return {
            "host": host_name(),
            "pid": os.getpid(),
            "token": token,
            "run": self.lease.run_id if self.lease else None,
            "node": ray.get_runtime_context().get_node_id(),
        }

    def make(self, index: int) -> bool:
        """Make scene ``index``; report each view (and each restart) to the driver's event queue."""
        return make_scene(
            self.worker,
            self.job,
            index,
            self.lease,
            on_view=lambda event: self.events.put((index, event["seconds"])),
            on_retry=lambda: self.events.put((index, None)),
        )

    def close(self) -> None:
        self.worker.close()
        if self.lease is not None:
            self.lease.release()


def _fitting(node_cpus: list, cpus: int) -> int:
    """How many actors of ``cpus`` CPUs the nodes hold."""
    return sum(int(n // cpus) for n in node_cpus)


def _cluster_shape(ray, device: str, workers, worker_cpus) -> list:
    """The actors to start, as a list of (CPUs, GPUs, node id or None), from the live nodes.

    With --device gpu: one actor per GPU (or ``workers``), each with one GPU and ``worker_cpus``
    (default 1) CPUs. On CPUs, by default one actor per node with all of that node's CPUs, so nodes
    of mixed sizes are all used; with ``workers`` alone, the most CPUs per actor at which that many
    fit on the nodes; with ``worker_cpus`` alone, as many actors as fit.
    """
    nodes = [node for node in ray.nodes() if node["Alive"]]
    node_cpus = [int(node["Resources"].get("CPU", 0)) for node in nodes]
    largest = max(node_cpus, default=0)
    if worker_cpus is not None and worker_cpus > largest:
        raise ClevrRemvError(
            f"--worker-cpus: {worker_cpus} is more than the largest node has ({largest:g}); ask for fewer"
        )
    if device == "gpu":
        gpus = int(sum(node["Resources"].get("GPU", 0) for node in nodes))
        if gpus == 0:
            raise ClevrRemvError(
                "--device gpu: the Ray cluster has no GPU; start its nodes with GPUs or use --device cpu"
            )
        return [(worker_cpus or 1, 1, None)] * (workers or gpus)
    if workers is None and worker_cpus is None:
        shapes = [(cpus, 0, node["NodeID"]) for node, cpus in zip(nodes, node_cpus, strict=True) if cpus > 0]
        return shapes or [(1, 0, None)]
    if worker_cpus is None:
        worker_cpus = max([1] + [c for c in range(1, largest + 1) if _fitting(node_cpus, c) >= workers])
    return [(worker_cpus, 0, None)] * (workers or max(1, _fitting(node_cpus, worker_cpus)))


class _ActorPool:
    """The driver's actors: starting (identity pending), idle, or busy with one scene."""

    def __init__(self, ray, make_actor, check_file: str, token: str, root: str, stale_after: float):
        self.ray, self.make_actor = ray, make_actor
        self.check_file, self.token, self.root, self.stale_after = check_file, token, root, stale_after
        self.starting, self.busy, self.idle, self.identity, self.everyone, self.shape = {}, {}, [], {}, [], {}
        self.failed_starts = 0

    def start(self, shape) -> None:
        """Start an actor of ``shape`` (CPUs, GPUs, node id or None; see _cluster_shape)."""
        actor = self.make_actor(shape)
        self.everyone.append(actor)
        self.shape[actor] = shape
        self.starting[actor.identity.remote(self.check_file)] = actor

    def started(self, ref) -> None:
        actor = self.starting.pop(ref)
        try:
            identity = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as error:
            self.failed_starts += 1
            if self.failed_starts > MAX_START_FAILURES:
                raise ClevrRemvError(
                    f"Ray actors keep failing to start ({self.failed_starts} times; last: "
                    f"{str(error).splitlines()[0]}); install the same clevr-remv environment "
                    "(with the render and cluster extras) on every node"
                ) from None
            self.start(self.shape[actor])
            return
        if identity["token"] != self.token:
            raise ClevrRemvError(
                f"--out {self.root}: a node ({identity['host']}, Ray node {identity['node'][:8]}) "
                "cannot read the dataset folder; --out must be a shared folder that every node "
                "mounts at the same path (NFS, Lustre, ...)"
            )
        self.identity[actor] = identity
        self.idle.append(actor)

    def lost(self, actor, error) -> None:
        """Replace an actor whose call failed with ``error`` (a RayActorError) by a new one of its
        shape. One that is only unreachable (ActorUnavailableError: "may be available later") is
        killed, so that it takes no more work. Its temporary folder is not touched here: the actor may
        still rename it. Leftovers go by their leases, once the actor is known to be dead."""
        self.identity.pop(actor, None)
        if isinstance(error, self.ray.exceptions.ActorUnavailableError):
            self.ray.kill(actor, no_restart=True)
        remove_stale_temporaries(Path(self.root) / "scenes", self.stale_after)
        self.start(self.shape[actor])

    def close(self) -> None:
        """Close every actor (its render process ends and its files go), killing those that do
        not finish within the grace period."""
        closing = [actor.close.remote() for actor in self.identity]
        if closing:
            self.ray.wait(closing, num_returns=len(closing), timeout=GRACE_S + 5.0)
        for actor in self.everyone:
            self.ray.kill(actor, no_restart=True)


def run_on_ray(
    job: SceneJob,
    todo: list,
    progress: Progress,
    workers,
    worker_cpus,
    command,
    device: str,
    view_timeout: float,
    address,
    stale_after: float,
) -> dict:
    """Make the scenes ``todo`` on a Ray cluster (joined at ``address``; default: a running one,
    else a new local instance) with ``workers`` actors; return {node: scenes rendered}."""
    ray = import_ray()
    check_reachable(address)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    check_file = Path(job.root) / f"{TMP_PREFIX}ray-check-{uuid.uuid4().hex}"  # a leftover if killed
    token = uuid.uuid4().hex
    check_file.write_text(token)
    pool = None
    try:
        shapes = _cluster_shape(ray, device, workers, worker_cpus)
        # The event queue lives on the driver's node: it must outlive any other node.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        events = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
        # Two threads: close() runs beside a scene in progress and stops it (the driver sends one
        # scene at a time).
        actor_class = ray.remote(RenderActor)

        def make_actor(shape):
            cpus, gpus, node = shape
            placement = NodeAffinitySchedulingStrategy(node, soft=True) if node else "SPREAD"
            return actor_class.options(
                num_cpus=cpus, num_gpus=gpus, scheduling_strategy=placement, max_restarts=0, max_concurrency=2
            ).remote(job, command, device, cpus, view_timeout, events, stale_after)

        pool = _ActorPool(ray, make_actor, str(check_file), token, job.root, stale_after)
        for shape in shapes[: len(todo)]:
            pool.start(shape)
        return _drive(ray, pool, todo, progress, events)
    finally:
        if pool is not None:
            pool.close()
        check_file.unlink(missing_ok=True)
        if started_here:
            ray.shutdown()


def _drive(ray, pool: _ActorPool, todo: list, progress: Progress, events) -> dict:
    """Hand scenes to idle actors until all are made; replace actors that die."""
    waiting = collections.deque(todo)
    attempts = collections.Counter()
    per_node = collections.Counter()
    stalled_since = time.monotonic()
    while waiting or pool.busy:
        while pool.idle and waiting:
            actor, index = pool.idle.pop(), waiting.popleft()
            pool.busy[actor.make.remote(index)] = (actor, index)
        ready, _ = ray.wait(list(pool.busy) + list(pool.starting), num_returns=1, timeout=POLL_S)
        _drain(events, progress)  # actors queue a scene's views before returning it, so all are here
        for ref in ready:
            if ref in pool.starting:
                pool.started(ref)
                continue
            actor, index = pool.busy.pop(ref)
            try:
                rendered = ray.get(ref)
            except ray.exceptions.RayTaskError as error:
                if isinstance(error.cause, ClevrRemvError):
                    raise ClevrRemvError(str(error.cause)) from None
                raise
            except ray.exceptions.RayActorError as error:  # dead, or unreachable (ActorUnavailableError)
                attempts[index] += 1
                progress.restart(index)
                if attempts[index] >= MAX_SCENE_ATTEMPTS:
                    raise ClevrRemvError(
                        f"scene {index}: its Ray actor was lost {attempts[index]} times (last: "
                        f"{str(error).splitlines()[0]}); check the nodes' logs, then run the "
                        "same command again to resume"
                    ) from None
                waiting.appendleft(index)
                pool.lost(actor, error)
                continue
            identity = pool.identity[actor]
            per_node[f"{identity['host']}/{identity['node'][:8]}"] += int(rendered)
            progress.finish(index, rendered)
            pool.idle.append(actor)
        if ready or pool.busy:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > ACTOR_START_TIMEOUT_S:
            raise ClevrRemvError(
                f"no Ray actor could start in {ACTOR_START_TIMEOUT_S:.0f} s for the "
                f"{plural(len(waiting), 'scene')} left (not enough free CPUs or GPUs on the cluster?); "
                "run the same command again when nodes are back"
            )
    return dict(per_node)


def _drain(events, progress: Progress) -> None:
    """Pass the actors' queued view events (index, seconds) and restarts (index, None) on."""
    size = events.qsize()
    for index, seconds in events.get_nowait_batch(size) if size else []:
        if seconds is None:
            progress.restart(index)
        else:
            progress.view(index, seconds)
