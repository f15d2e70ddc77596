"""The local executor: supervised render worker processes on this machine, one scene each at a time."""
import concurrent.futures
import os
import threading

from clevr_remv.dataset.store import host_name
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.render import SupervisedWorker
from clevr_remv.generate.scene_job import Progress, SceneJob, make_scene


def run_local(job: SceneJob, todo: list, progress: Progress, workers: int, worker_cpus, command, device: str,
              view_timeout: float) -> dict:
    """Make the scenes ``todo`` with ``workers`` render processes here, each reused for many
    scenes and given ``worker_cpus`` threads (default: an even share of the cores; one worker
    gets Blender's default). Returns {host: scenes rendered}."""
    threads = worker_cpus or ((os.cpu_count() or 1) // workers if workers > 1 else 0)
    local = threading.local()
    started, lock = [], threading.Lock()
    stopping = threading.Event()

    def thread_worker():
        if not hasattr(local, "worker"):
            local.worker = SupervisedWorker(command, device, threads, view_timeout)
            with lock:
                started.append(local.worker)
        return local.worker

    def one_scene(index):
        def on_retry():
            if stopping.is_set():
                raise ClevrRemvError(f"scene {index}: stopped")
            progress.restart(index)

        rendered = make_scene(thread_worker(), job, index, lambda event: progress.view(index, event["seconds"]),
                              on_retry)
        progress.finish(index, rendered)

    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        for future in concurrent.futures.as_completed([pool.submit(one_scene, i) for i in todo]):
            future.result()
    except BaseException:
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        for worker in started:
            worker.close()
        pool.shutdown(wait=True)
    return {host_name(): progress.rendered}
