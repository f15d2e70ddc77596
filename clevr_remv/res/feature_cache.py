"""A cache of what a model keeps frozen: its stem's output and attribute maps for every view a run reads.

A model on the CNN encoder with a frozen stem (`clevr_remv.res.models.cnn_family`) computes the same
stem features for a view in every epoch, every seed and every model that loaded the same pretrained
encoder. `benchmark` computes them once per view (and, for augmented training, once per mirrored
view) and trains the rest of the model on them: no PNG is decoded and no frozen stage runs again.

A cache folder is named by a SHA-256 over the frozen weights, the network's input size, whether
mirrored views are included, and every view's dataset path, RGB and index file sizes and
modification times; a regenerated view or another encoder makes another folder. It holds
``features.npy`` (N, C, h, w) float32, ``attributes.npy`` (N, A, h/2, w/2) float32 when the model
fuses attribute maps, ``masks.npy`` (N, H, W) uint8 index masks at the native size, and
``views.json`` (the rows). It is written into a temporary folder and renamed into place, so an
interrupted run leaves no partial cache. The default root is ``$XDG_CACHE_HOME/clevr-remv/features``
(``~/.cache/clevr-remv/features``).
"""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from clevr_remv.res.models.augment import mirror_text, translate
from clevr_remv.res.models.cnn import stem_stride

CACHE_VERSION = 1
SHIFT_PIXELS = 8  # feature-space shifts move the stride-8 maps by whole cells: exact away from the borders
_BATCH = 32


def default_cache_root() -> Path:
    """``$XDG_CACHE_HOME/clevr-remv/features``, or ``~/.cache/clevr-remv/features``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "clevr-remv" / "features"


def frozen_fingerprint(model) -> str:
    """SHA-256 of the tensors a model keeps frozen (its stem and attribute branch)."""
    digest = hashlib.sha256()
    frozen = {f"encoder.{k}": v for k, v in model.encoder[: model.frozen_stages].state_dict().items()}
    if model.attribute_branch is not None:
        frozen |= {f"attribute_branch.{k}": v for k, v in model.attribute_branch.state_dict().items()}
    for name in sorted(frozen):
        digest.update(name.encode())
        digest.update(frozen[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _views_fingerprint(store, views: list) -> str:
    digest = hashlib.sha256(os.path.realpath(store.root).encode())
    for scene, (u, v) in views:
        for path in (store.rgb_path(scene, u, v), store.index_path(scene, u, v)):
            status = path.stat()
            digest.update(f"{scene} {u} {v} {status.st_size} {status.st_mtime_ns};".encode())
    return digest.hexdigest()


class ViewFeatures:
    """The cached arrays of one set of views (memory-mapped), with the row of each (scene, view)."""

    def __init__(self, folder: Path):
        self.folder = folder
        document = json.loads((folder / "views.json").read_text())
        self.positions = {(scene, (u, v)): i for i, (scene, u, v) in enumerate(document["views"])}
        self.copies = 2 if document["mirrored"] else 1  # feature rows per view: as seen, mirrored
        self.stem_stride = document["stem_stride"]
        self.features = np.load(folder / "features.npy", mmap_mode="r")
        attributes = folder / "attributes.npy"
        self.attributes = np.load(attributes, mmap_mode="r") if attributes.is_file() else None
        self.masks = np.load(folder / "masks.npy", mmap_mode="r")

    def sample(self, scene: int, view: tuple, flipped: bool = False) -> dict:
        """``stem`` (C, h, w) and ``attributes`` (A, h/2, w/2) tensors (no ``attributes`` for a model
        without them) and the native ``index`` mask (H, W), mirrored with ``flipped``."""
        position = self.positions[scene, tuple(view)]
        row = position * self.copies + int(flipped)
        sample = {"stem": torch.from_numpy(np.array(self.features[row]))}
        if self.attributes is not None:
            sample["attributes"] = torch.from_numpy(np.array(self.attributes[row]))
        index = torch.from_numpy(np.array(self.masks[position]))
        sample["index"] = index.flip(-1) if flipped else index
        return sample


@torch.no_grad()
def cache_views(model, store, views: list, input_size, mirrored: bool, root=None, device="cpu") -> ViewFeatures:
    """The cached stem features (and attribute maps) of ``views`` [(scene, (u, v))] of ``store``,
    computed now if no cache folder under ``root`` has them; ``mirrored`` adds the mirrored views."""
    root = Path(root) if root is not None else default_cache_root()
    digest = hashlib.sha256(
        json.dumps(
            [CACHE_VERSION, frozen_fingerprint(model), _views_fingerprint(store, views), input_size, mirrored]
        ).encode()
    ).hexdigest()
    folder = root / digest[:32]
    if (folder / "views.json").is_file():
        return ViewFeatures(folder)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{digest[:12]}-"))
    try:
        _compute(model, store, views, input_size, mirrored, tmp, device)
        try:
            os.rename(tmp, folder)
        except OSError:  # another run finished the same cache first: use it
            if not (folder / "views.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ViewFeatures(folder)


def _compute(model, store, views, input_size, mirrored, folder: Path, device) -> None:
    model.eval()
    flips = (False, True) if mirrored else (False,)
    arrays = {}
    masks = None
    bar = tqdm(total=len(views), desc="feature cache", unit="view", dynamic_ncols=True)
    for start in range(0, len(views), _BATCH):
        chunk = views[start : start + _BATCH]
        pixels = np.stack([store.read_rgb(scene, *view) for scene, view in chunk])
        index = np.stack([store.read_index(scene, *view) for scene, view in chunk])
        if masks is None:
            masks = np.lib.format.open_memmap(folder / "masks.npy", "w+", np.uint8, (len(views), *index.shape[1:]))
        masks[start : start + len(chunk)] = index
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)
        if input_size is not None and tuple(images.shape[-2:]) != (input_size[1], input_size[0]):
            images = F.interpolate(images, size=(input_size[1], input_size[0]), mode="bilinear", align_corners=False)
        for flip_index, flipped in enumerate(flips):
            batch = images.flip(-1) if flipped else images
            stem = model.stem(batch.to(device))
            outputs = {"features": stem, "attributes": model.attributes(stem)}
            for name, values in outputs.items():
                if values is None:
                    continue
                if name not in arrays:
                    arrays[name] = np.lib.format.open_memmap(
                        folder / f"{name}.npy", "w+", np.float32, (len(views) * len(flips), *values.shape[1:])
                    )
                first = start * len(flips) + flip_index
                arrays[name][first : first + len(chunk) * len(flips) : len(flips)] = values.cpu().numpy()
        bar.update(len(chunk))
    bar.close()
    for array in [*arrays.values(), masks]:
        array.flush()
    document = {
        "version": CACHE_VERSION,
        "stem_stride": stem_stride(model.frozen_stages),
        "mirrored": mirrored,
        "views": [(scene, u, v) for scene, (u, v) in views],
    }
    (folder / "views.json").write_text(json.dumps(document))


class CachedSamples(Dataset):
    """The samples of a `ClevrRemvDataset` with cached stem features in place of the image.

    An item has ``stem``, ``attributes`` (if cached), ``mask`` (bool, native size, or the network's
    size when ``augment``), ``text``, ``scene``, ``expression_id`` and ``view``. With ``augment``
    (training), as `FlipAndShift` in feature space: half the samples mirrored (the mirrored view's
    features, mask flipped, "left" and "right" swapped) and every sample shifted by -8, 0 or +8
    pixels each way (whole cells of the stride-8 maps, edges repeated, the mask moved with them).
    """

    def __init__(self, samples, features: ViewFeatures, augment: bool = False, input_size=None):
        self.samples, self.features, self.augment, self.input_size = samples, features, augment, input_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples.describe(index)
        flipped = self.augment and bool(torch.rand(()) < 0.5)
        cached = self.features.sample(sample["scene"], sample["view"], flipped)
        objects = sample.get("objects", [sample["object"]])
        mask = torch.isin(cached.pop("index"), torch.tensor(objects, dtype=torch.uint8))
        if flipped:
            sample["text"] = mirror_text(sample["text"])
        if self.augment:
            mask, cached = self._shifted(mask, cached)
        return {**sample, **cached, "mask": mask}

    def _shifted(self, mask, cached) -> tuple:
        if self.input_size is not None and tuple(mask.shape) != (self.input_size[1], self.input_size[0]):
            size = (self.input_size[1], self.input_size[0])
            mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0] > 0.5
        dx, dy = (int(step) for step in torch.randint(0, 3, (2,)))  # 0, 1, 2: a shift of +8, 0, -8 pixels
        mask = translate(mask, SHIFT_PIXELS, dx * SHIFT_PIXELS, dy * SHIFT_PIXELS)
        cells = SHIFT_PIXELS // self.features.stem_stride
        cached["stem"] = translate(cached["stem"], cells, dx * cells, dy * cells)
        if "attributes" in cached:
            cached["attributes"] = translate(cached["attributes"], 1, dx, dy)
        return mask, cached
