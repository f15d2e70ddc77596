"""The local executor: supervised render worker processes on this machine, one scene each at a time."""

import concurrent.futures
import os
import threading

from clevr_remv.dataset.store import host_name
from clevr_remv.generate.render import SupervisedWorker
from clevr_remv.generate.scene_job import Progress, SceneJob, make_scene


def local_threads(workers: int, worker_cpus=None) -> int:
    """Render threads per worker: ``worker_cpus``, else an even share of the CPUs this process may
    use (at least 1: Blender reads 0 as "all cores"); 0 (Blender's own default) for one worker."""
    if worker_cpus:
        return worker_cpus
    if workers == 1:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers)


def run_local(
    job: SceneJob,
    todo: list,
    progress: Progress,
    workers: int,
    worker_cpus,
    command,
    device: str,
    view_timeout: float,
    lease,
) -> dict:
    """Make the scenes ``todo`` with ``workers`` render processes here, each reused for many
    scenes and given `local_threads` threads; ``lease`` is the run's. On any error or
    interrupt every worker is closed at once: no new job starts, the processes end within the
    grace period, and their files go. Returns {host: scenes rendered}."""
    threads = local_threads(workers, worker_cpus)
    local = threading.local()
    started, lock = [], threading.Lock()
    closing = threading.Event()

    def thread_worker():
        if not hasattr(local, "worker"):
            with lock:
                local.worker = SupervisedWorker(command, device, threads, view_timeout)
                started.append(local.worker)
                if closing.is_set():
                    local.worker.close()
        return local.worker

    def one_scene(index):
        rendered = make_scene(
            thread_worker(),
            job,
            index,
            lease,
            lambda event: progress.view(index, event["seconds"]),
            lambda: progress.restart(index),
        )
        progress.finish(index, rendered)

    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        for future in concurrent.futures.as_completed([pool.submit(one_scene, i) for i in todo]):
            future.result()
    finally:
        with lock:
            closing.set()
        pool.shutdown(wait=False, cancel_futures=True)
        _close_all(started)
        pool.shutdown(wait=True)
    return {host_name(): progress.rendered}


def _close_all(workers: list) -> None:
    """Close ``workers`` side by side (each may wait out its grace period)."""
    closers = [threading.Thread(target=worker.close) for worker in workers]
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join()
