"""CLEVR-REMV as a retrieval set: each scene's centre view is an image, its referring
expressions (refexps.json) are its captions, so images have a variable number of captions.
Scenes come from splits.json (``clevr-remv split``); a scene without expressions stays in as a
distractor image."""

import numpy as np
from PIL import Image
from tqdm import tqdm

from clevr_remv.dataset.expressions import referents_of
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.retrieval.split import RetrievalSplit


def _split_scenes(store: DatasetStore, role: str) -> list:
    if not store.splits_path.is_file():
        raise ClevrRemvError(
            f"{store.splits_path}: missing; retrieval on CLEVR-REMV needs train/val/test "
            f"scenes: run `clevr-remv split --data {store.root}` first"
        )
    complete = set(store.scene_ids())
    return [i for i in store.load_splits()["splits"][role] if i in complete]


def remv_split_exists(root, role: str) -> bool:
    """Whether the ``role`` split of the dataset at ``root`` has at least one complete scene."""
    return bool(_split_scenes(DatasetStore(root), role))


def _resized(pixels: np.ndarray, image_size: int) -> np.ndarray:
    """Shrink so that the longer side is at most ``image_size`` (never enlarge)."""
    height, width = pixels.shape[:2]
    scale = min(1.0, image_size / max(height, width))
    if scale == 1.0:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR))


def load_remv_split(root, role: str, image_size: int = 128) -> RetrievalSplit:
    """Centre views (uint8, longer side <= ``image_size``) and expressions of the ``role`` scenes."""
    store = DatasetStore(root)
    scenes = _split_scenes(store, role)
    if not scenes:
        raise ClevrRemvError(
            f"{store.splits_path}: the {role} split has no complete scene; "
            f"rerun `clevr-remv split --data {store.root}` or generate more scenes"
        )
    u, v = store.center
    images, captions, caption_image = [], [], []
    for row, scene in enumerate(tqdm(scenes, desc=f"read {role} centre views", unit="scene")):
        images.append(_resized(store.read_rgb(scene, u, v), image_size))
        for expression in store.load_refexps(scene)["expressions"]:
            if not referents_of(expression):
                continue  # a generalized dataset's no-target expression does not describe the image
            captions.append(expression["text"])
            caption_image.append(row)
    if not captions:
        raise ClevrRemvError(
            f"{store.root}: the {role} scenes have no referring expressions; "
            f"run `clevr-remv refexps --data {store.root}`"
        )
    return RetrievalSplit(role, np.stack(images), captions, np.asarray(caption_image, dtype=np.int64))
