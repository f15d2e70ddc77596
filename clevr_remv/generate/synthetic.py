"""A Blender-free stand-in renderer: writes small, fully consistent datasets for tests and demos.

Objects are drawn as flat discs of their colour, projected through the real rig and painted
far to near, so index masks, visibility, occlusion and expressions follow the real pipeline.
With the depth pass, each disc lies at its object's centre depth and the background has no value.
"""

import numpy as np
from PIL import Image

from clevr_remv.dataset.depth import encode_depth
from clevr_remv.dataset.store import DatasetStore, atomic_scene_dir, start_run
from clevr_remv.generate.config import DEFAULT_BASELINE, GenerateConfig
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.scene import scene_spec
from clevr_remv.generate.writer import open_dataset, write_annotations
from clevr_remv.geometry import project
from clevr_remv.refexp import refexp_settings

BACKGROUND_RGB = (120, 120, 120)


def rasterize_view(spec: dict, view: dict, properties: dict) -> tuple:
    """Return (rgb uint8 HxWx3, index uint8 HxW) of one view with objects drawn as discs."""
    height, width = spec["height"], spec["width"]
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = BACKGROUND_RGB
    index = np.zeros((height, width), np.uint8)
    centres = project([obj["3d_coords"] for obj in spec["objects"]], view)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    for k in np.argsort(-centres[:, 2]):  # far to near
        x, y, depth = centres[k]
        radius = view["intrinsics"]["fx"] * spec["objects"][k]["radius"] / depth
        disc = (xs - x) ** 2 + (ys - y) ** 2 <= radius**2
        rgb[disc] = properties["colors"][spec["objects"][k]["color"]]
        index[disc] = k + 1
    return rgb, index


def disc_depth(spec: dict, view: dict, index_image: np.ndarray) -> np.ndarray:
    """z-depth (world units) of a view drawn by `rasterize_view`: each object's centre depth
    on its disc, 0 (no value) on the background."""
    centres = project([obj["3d_coords"] for obj in spec["objects"]], view)
    return np.concatenate([[0.0], centres[:, 2]])[index_image]


def write_synthetic_dataset(
    root,
    scenes: int = 4,
    grid: int = 3,
    width: int = 48,
    height: int = 32,
    seed: int = 0,
    min_objects: int = 3,
    max_objects: int = 10,
    per_scene: int = 8,
    rig: str = "parallel",
    passes=(),
    start: int = 0,
    baseline: float = DEFAULT_BASELINE,
) -> DatasetStore:
    """Write ``scenes`` stand-in scenes in the CLEVR-REMV format to ``root`` and return its store:
    scenes ``start`` .. ``start + scenes - 1`` (as ``generate --start``), cameras ``baseline`` apart."""
    properties = load_properties()
    config = GenerateConfig(
        seed=seed,
        grid=grid,
        width=width,
        height=height,
        samples=1,
        min_objects=min_objects,
        max_objects=max_objects,
        min_pixels=0,
        properties=properties,
        rig=rig,
        passes=passes,
        baseline=baseline,
    )
    refexps = refexp_settings(seed, per_scene)
    store = open_dataset(root, config, refexps)
    with start_run(store.scenes_dir) as lease:
        for index in range(start, start + scenes):
            _write_scene(store, config, properties, refexps, index, lease)
    store.refresh_counts()
    return store


def _write_scene(
    store: DatasetStore, config: GenerateConfig, properties: dict, refexps: dict, index: int, lease
) -> None:
    spec = scene_spec(config, index)
    with atomic_scene_dir(store.scenes_dir, index, lease) as tmp:
        for folder in ("rgb", "index") + config.passes:
            (tmp / folder).mkdir()
        index_images = {}
        for view in spec["views"]:
            rgb, index_image = rasterize_view(spec, view, properties)
            Image.fromarray(rgb).save(tmp / "rgb" / f"{view['name']}.png")
            Image.fromarray(index_image).save(tmp / "index" / f"{view['name']}.png")
            if "depth" in config.passes:
                depth = encode_depth(disc_depth(spec, view, index_image), store.info()["depth_scale"])
                Image.fromarray(depth).save(tmp / "depth" / f"{view['name']}.png")
            index_images[view["name"]] = index_image
        write_annotations(tmp, spec, properties, index_images, refexps)
