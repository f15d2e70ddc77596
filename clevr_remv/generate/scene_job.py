"""One scene as a unit of work: what a render worker needs (`SceneJob`), the scene's making
(layout, visibility probe, render, annotations, atomic rename) and the driver's progress bar.

Every executor (local worker processes, Ray actors) runs `make_scene`; any mix of runs,
shards and hosts writing one folder makes every scene exactly once.
"""

import dataclasses
import threading
from collections import defaultdict

import numpy as np
from PIL import Image
from tqdm import tqdm

from clevr_remv.dataset.depth import encode_depth
from clevr_remv.dataset.store import DatasetStore, atomic_scene_dir
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import GenerateConfig, default_min_pixels
from clevr_remv.generate.render import SupervisedWorker
from clevr_remv.generate.scene import scene_spec
from clevr_remv.generate.writer import write_annotations
from clevr_remv.geometry import grid_center, view_name

MAX_LAYOUT_ATTEMPTS = 100


@dataclasses.dataclass(frozen=True)
class SceneJob:
    """What a render worker needs to make any scene of one dataset (sent to Ray actors as is)."""

    root: str
    config: GenerateConfig
    refexps: dict


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
    raise ClevrRemvError(
        f"scene {index}: no layout in {MAX_LAYOUT_ATTEMPTS} attempts shows every object "
        f"with >= {config.min_pixels} pixels; lower --min-pixels (the default at "
        f"{config.width}x{config.height} is {default_min_pixels(config.width, config.height)}) "
        "or --max-objects"
    )


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


def _save_depth_maps(scene_dir, spec, scale: float) -> None:
    """Turn the worker's float depth arrays (.npy) into 16-bit PNGs of ``scale`` world units per count."""
    for view in spec["views"]:
        raw = scene_dir / "depth" / f"{view['name']}.npy"
        Image.fromarray(encode_depth(np.load(raw), scale)).save(raw.with_suffix(".png"), compress_level=6)
        raw.unlink()


def make_scene(worker: SupervisedWorker, job: SceneJob, index: int, lease, on_view=None, on_retry=None) -> bool:
    """Make scene ``index`` of ``job`` with ``worker`` unless it is complete already (another run
    made it); return whether this call's copy became the scene (not when another run's copy won
    the rename meanwhile). ``lease`` is the run's (its id names the temporary folder); ``on_view``
    gets each view's event, and ``on_retry`` is called before the worker retries the scene after a crash."""
    store = DatasetStore(job.root)
    if store.scene_json_path(index).is_file():
        return False
    spec = choose_layout(worker, job.config, index)
    folder = atomic_scene_dir(store.scenes_dir, index, lease)
    with folder as tmp:
        render = {
            "op": "render",
            "spec": spec,
            "properties": job.config.properties,
            "out": str(tmp),
            "passes": list(job.config.passes),
        }
        worker.run(render, f"scene {index}", on_view, on_retry)
        masks = _save_index_masks(tmp, spec)
        if "depth" in job.config.passes:
            _save_depth_maps(tmp, spec, store.info()["depth_scale"])
        write_annotations(tmp, spec, job.config.properties, masks, job.refexps)
    return folder.completed


class Progress:
    """The driver's bar over all views (with ETA) and the render time of completed scenes.

    Executors report each view, each restart of a scene (its views are taken back) and each
    finished scene; they may do so from several threads.
    """

    def __init__(self, scenes: int, views_per_scene: int, enabled: bool = True):
        self.views_per_scene = views_per_scene
        self.bar = tqdm(
            total=scenes * views_per_scene, unit="view", disable=not enabled, desc="generate", dynamic_ncols=True
        )
        self.lock = threading.Lock()
        self.pending = defaultdict(list)
        self.rendered = self.views = self.restarts = 0
        self.render_seconds = 0.0

    def view(self, index: int, seconds: float) -> None:
        with self.lock:
            self.pending[index].append(seconds)
            self.bar.update(1)

    def restart(self, index: int) -> None:
        with self.lock:
            self.restarts += 1
            self.bar.update(-len(self.pending.pop(index, [])))

    def finish(self, index: int, rendered: bool) -> None:
        with self.lock:
            seconds = self.pending.pop(index, [])
            if rendered:
                self.rendered += 1
                self.views += len(seconds)
                self.render_seconds += sum(seconds)
            else:  # made by another run meanwhile (perhaps while this one rendered it too)
                self.bar.total -= self.views_per_scene
                self.bar.update(-len(seconds))

    def close(self) -> None:
        self.bar.close()
