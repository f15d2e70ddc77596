"""Writing a dataset: create or reopen its root, finish a scene's annotations."""

import contextlib
import json
from pathlib import Path

from clevr_remv import FORMAT_VERSION, __version__
from clevr_remv.dataset.depth import DEPTH_SCALE
from clevr_remv.dataset.store import DatasetStore, create_json_atomic, write_json_atomic
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import DEFAULT_LENS_MM, GenerateConfig
from clevr_remv.generate.scene import add_visibility
from clevr_remv.refexp import generate_refexps


def _config_difference(stored: dict, wanted: dict) -> str:
    keys = sorted(key for key in set(wanted) | set(stored) if wanted.get(key) != stored.get(key))
    return ", ".join(
        "properties differ"
        if key == "properties"
        else f"{key}: existing {stored.get(key)!r}, requested {wanted.get(key)!r}"
        for key in keys
    )


def stored_config(root):
    """The config in ``root``/dataset.json, or None when there is none to read (yet)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        stored = json.loads((Path(root) / "dataset.json").read_bytes().decode("utf-8"))["config"]
        return stored if isinstance(stored, dict) else None
    return None


def create_or_open_dataset(root, config: GenerateConfig, refexps: dict) -> tuple:
    """(store, created): `open_dataset`, and whether this call created dataset.json."""
    dataset_json = Path(root) / "dataset.json"
    wanted = config.to_dict()
    depth = {"depth_scale": DEPTH_SCALE} if "depth" in config.passes else {}
    if create_json_atomic(
        dataset_json,
        {
            "format": "clevr-remv",
            "format_version": FORMAT_VERSION,
            "generator_version": __version__,
            "config": wanted,
            "refexps": refexps,
            **depth,
            "counts": {"scenes": 0, "views_per_scene": config.grid**2, "expressions": 0},
        },
        "dataset",
    ):
        return DatasetStore(root), True
    store = DatasetStore(root)
    # Datasets made before --passes (rgb + index) and --lens (CLEVR's 35 mm) lack those keys.
    stored = {"passes": [], "lens": DEFAULT_LENS_MM, **store.info()["config"]}
    difference = _config_difference(stored, wanted)
    if difference:
        raise ClevrRemvError(
            f"{dataset_json}: this dataset was generated with a different config ({difference}); "
            "rerun with the same flags to resume it, or choose a new --out folder"
        )
    difference = _config_difference(store.info()["refexps"], refexps)
    if difference:
        raise ClevrRemvError(
            f"{dataset_json}: this dataset's expressions were made with other settings ({difference}); "
            "resume with the same flags, then run `clevr-remv refexps` to remake all expressions"
        )
    return store, False


def open_dataset(root, config: GenerateConfig, refexps: dict) -> DatasetStore:
    """Create the dataset at ``root``, or reopen it when it was made with the same config and
    expression settings (``refexps``, see `clevr_remv.refexp.refexp_settings`).

    Different settings are refused and nothing is touched, so a resumed run never mixes scenes
    generated with different settings. Of several runs starting at once into a new folder, exactly
    one creates dataset.json and the others check their settings against it.
    """
    return create_or_open_dataset(root, config, refexps)[0]


def write_annotations(scene_dir, spec: dict, properties: dict, index_images: dict, refexps: dict) -> int:
    """Write scene.json and refexps.json of a rendered scene into ``scene_dir``.

    ``index_images`` maps view names to index masks; ``refexps`` are the expression settings
    (`clevr_remv.refexp.refexp_settings`). Returns the number of expressions.
    """
    scene = add_visibility(spec, properties, index_images)
    write_json_atomic(Path(scene_dir) / "scene.json", scene, "scene")
    refexps = generate_refexps(scene, properties=properties, **refexps)
    write_json_atomic(Path(scene_dir) / "refexps.json", refexps, "refexps")
    return len(refexps["expressions"])
