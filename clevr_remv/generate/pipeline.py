"""The generate pipeline: layout, probe, render, annotate, write each scene atomically."""
import concurrent.futures
import os
import shutil
import threading
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

from clevr_remv.dataset.store import TMP_PREFIX, atomic_scene_dir
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.render import SupervisedWorker
from clevr_remv.generate.scene import scene_spec
from clevr_remv.generate.writer import open_dataset, write_annotations
from clevr_remv.geometry import grid_center, view_name
from clevr_remv.refexp import refexp_settings

MAX_LAYOUT_ATTEMPTS = 100


def choose_layout(worker: SupervisedWorker, config: GenerateConfig, index: int) -> dict:
    """The first layout attempt of scene ``index`` whose objects all show at least
    ``config.min_pixels`` pixels in the centre view (checked by a 1-sample index render)."""
    centre = view_name(*grid_center(config.grid))
    for attempt in range(MAX_LAYOUT_ATTEMPTS):
        spec = scene_spec(config, index, attempt)
        if config.min_pixels == 0:
            return spec
        job = {"op": "probe", "spec": spec, "properties": config.properties, "view": centre}
        counts = worker.run(job, f"scene {index} (visibility check)")["counts"]
        if min(counts[1:]) >= config.min_pixels:
            return spec
    raise ClevrRemvError(f"scene {index}: no layout in {MAX_LAYOUT_ATTEMPTS} attempts shows every object "
                         f"with >= {config.min_pixels} pixels; lower --min-pixels or --max-objects")


def _save_index_masks(scene_dir, spec) -> dict:
    """Turn the worker's index arrays (.npy) into PNGs; return view name -> mask."""
    masks = {}
    for view in spec["views"]:
        raw = scene_dir / "index" / f"{view['name']}.npy"
        mask = np.load(raw)
        Image.fromarray(mask).save(scene_dir / "index" / f"{view['name']}.png", compress_level=9)
        raw.unlink()
        masks[view["name"]] = mask
    return masks


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(scenes_dir):
    """Delete the temporary scene folders (``.tmp-NNNNNN-<pid>``) of runs that are gone, so a
    run on the same machine into the same dataset (e.g. another --start range) is left alone."""
    if scenes_dir.is_dir():
        for path in scenes_dir.glob(TMP_PREFIX + "*"):
            pid = path.name.rsplit("-", 1)[-1]
            if not (pid.isdigit() and int(pid) != os.getpid() and _process_alive(int(pid))):
                shutil.rmtree(path, ignore_errors=True)


def generate(out, scenes: int, config: GenerateConfig, start: int = 0, workers: int = 1,
             command=None, device: str = "cpu", refexps=None, view_timeout: float = 600.0,
             progress: bool = True) -> dict:
    """Generate scenes ``start`` .. ``start + scenes - 1`` into ``out``; skip complete ones.

    ``command`` starts a render worker (see clevr_remv.generate.render.worker_command); ``refexps`` are the
    expression settings (clevr_remv.refexp.refexp_settings; default: the defaults with the
    config's seed). Returns a summary.
    """
    if scenes < 1:
        raise ClevrRemvError(f"--scenes: {scenes} must be >= 1")
    if start < 0:
        raise ClevrRemvError(f"--start: {start} must be >= 0")
    if workers < 1:
        raise ClevrRemvError(f"--workers: {workers} must be >= 1")
    refexps = refexps or refexp_settings(config.seed)
    store = open_dataset(out, config, refexps)
    _remove_stale_temporaries(store.scenes_dir)
    done = set(store.scene_ids())
    todo = [index for index in range(start, start + scenes) if index not in done]
    views_per_scene = config.grid ** 2
    bar = tqdm(total=len(todo) * views_per_scene, unit="view", disable=not progress,
               desc="generate", dynamic_ncols=True)
    threads = max(1, (os.cpu_count() or 1) // workers)
    local = threading.local()
    workers_made, lock = [], threading.Lock()
    render_seconds = []

    def thread_worker():
        if not hasattr(local, "worker"):
            local.worker = SupervisedWorker(command, device, threads if workers > 1 else 0, view_timeout)
            with lock:
                workers_made.append(local.worker)
        return local.worker

    def make_scene(index):
        worker = thread_worker()
        spec = choose_layout(worker, config, index)
        counted, seconds = [0], []

        def on_view(event):
            counted[0] += 1
            seconds.append(event["seconds"])
            bar.update(1)

        def on_retry():
            if stopping.is_set():
                raise ClevrRemvError(f"scene {index}: stopped")
            bar.update(-counted[0])
            counted[0] = 0
            seconds.clear()

        with atomic_scene_dir(store.scenes_dir, index) as tmp:
            job = {"op": "render", "spec": spec, "properties": config.properties, "out": str(tmp)}
            worker.run(job, f"scene {index}", on_view, on_retry)
            masks = _save_index_masks(tmp, spec)
            expressions = write_annotations(tmp, spec, config.properties, masks, refexps)
        with lock:
            render_seconds.extend(seconds)
        return expressions

    stopping = threading.Event()
    started = time.perf_counter()
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        for future in concurrent.futures.as_completed([pool.submit(make_scene, i) for i in todo]):
            future.result()
    except BaseException:
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        for worker in workers_made:
            worker.close()
        pool.shutdown(wait=True)
        bar.close()
        counts = store.refresh_counts()
    wall = time.perf_counter() - started
    return {"rendered": len(todo), "skipped": scenes - len(todo), "views": len(render_seconds),
            "wall_seconds": wall, "render_seconds": sum(render_seconds), "counts": counts,
            "out": str(store.root)}
