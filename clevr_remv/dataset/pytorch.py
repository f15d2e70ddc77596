"""``ClevrRemvDataset``: (expression, view) samples of one split for PyTorch.

The sample index is built from the JSON files only (each scene's refexps.json; an expression is
listed in a view only when that view is in its ``views`` list); images are decoded lazily in
``__getitem__``. The object holds the dataset root, a small table of expressions and one
integer per sample, so it pickles cheaply into ``DataLoader`` workers.

``root`` may be a dataset folder or a packed folder (``clevr-remv pack``): the items are the
same; a packed folder is read by member offsets (random access), from the smallest packed
subset that holds the requested views.

Sample order: scene index ascending, then expression id, then view in v-major order (top row
first, left to right within a row; the order of scene.json's ``views``), whatever the order of
a ``views`` list passed in.
"""

import numpy as np
import torch
from torch.utils.data import Dataset

from clevr_remv.dataset.depth import OPTIONAL_PASSES
from clevr_remv.dataset.expressions import referents_of
from clevr_remv.dataset.packed import is_packed
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import select_views


class ClevrRemvDataset(Dataset):
    """One item per (expression, view) of a split where the referent is visible.

    An item is a dict: ``image`` float32 (3, H, W) in [0, 1], ``mask`` bool (H, W) (the
    referent's pixels in the index pass), ``text``, ``scene``, ``expression_id``, ``object``
    (1-based index of the referent) and ``view`` (u, v); with ``passes=("depth",)`` also
    ``depth`` float32 (H, W), the z-depth in world units (0 = no value: sky or out of range).

    In a generalized dataset (expressions naming no object or several) ``mask`` is the union of
    the referents' pixels (all False for a no-target expression), items also carry ``objects``
    (the 1-based referents, empty for no target), and ``object`` is 0 unless there is exactly one.

    Args:
        root: dataset folder, or packed folder (`clevr-remv pack`).
        split: a split name in splits.json.
        views: "center", "corners" (the four corner views), "all" or a list of (u, v).
        transform: called with the sample dict, returning it (resize image and mask together there).
        passes: optional passes to load, ("depth",) or () (the dataset must have been generated with
            them).
    """

    def __init__(self, root, split: str = "train", views="center", transform=None, passes=()):
        self.store, self.views, self.passes, scenes = open_split(root, split, views, passes)
        self.split = split
        self.transform = transform
        view_position = {view: position for position, view in enumerate(self.views)}
        # One row per expression that has at least one selected view.
        self._scene, self._expression_id, self._objects, self._text = [], [], [], []
        self._generalized = False
        starts, sample_views = [0], []
        for scene in scenes:
            path = self.store.refexps_path(scene)
            try:
                for expression in self.store.load_refexps(scene, check=False)["expressions"]:
                    positions = sorted(
                        view_position[uv] for uv in map(tuple, expression["views"]) if uv in view_position
                    )
                    if not positions:
                        continue
                    self._scene.append(scene)
                    self._expression_id.append(expression["id"])
                    self._objects.append(tuple(referents_of(expression)))
                    self._generalized = self._generalized or "referents" in expression
                    self._text.append(expression["text"])
                    sample_views.extend(positions)
                    starts.append(starts[-1] + len(positions))
            except (KeyError, TypeError) as error:
                raise ClevrRemvError(
                    f"{path}: malformed expression ({error!r}); "
                    f"run `clevr-remv validate --data {root}` to see what is wrong"
                ) from error
        self._starts = np.asarray(starts, np.int64)
        self._sample_view = np.asarray(sample_views, np.uint16)

    def __len__(self) -> int:
        return len(self._sample_view)

    def item_scenes(self) -> np.ndarray:
        """The scene of every item, in item order (int64)."""
        return np.repeat(np.asarray(self._scene, np.int64), np.diff(self._starts))

    def describe(self, index: int) -> dict:
        """Sample ``index`` without its pixels: text, scene, expression_id, object and view (and
        objects, in a generalized dataset)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        index %= len(self)
        row = int(np.searchsorted(self._starts, index, side="right")) - 1
        objects = self._objects[row]
        sample = {
            "text": self._text[row],
            "scene": self._scene[row],
            "expression_id": self._expression_id[row],
            "object": objects[0] if len(objects) == 1 else 0,
            "view": self.views[self._sample_view[index]],
        }
        if self._generalized:
            sample["objects"] = list(objects)
        return sample

    def __getitem__(self, index: int) -> dict:
        sample = self.describe(index)
        scene, (u, v) = sample["scene"], sample["view"]
        rgb = self.store.read_rgb(scene, u, v)
        image = rgb.transpose(2, 0, 1).astype(np.float32)  # a contiguous copy, then in place:
        image /= np.float32(255)  # several times faster than np.divide(transposed, out=...)
        sample["image"] = torch.from_numpy(image)
        index_mask = self.store.read_index(scene, u, v)
        objects = sample.get("objects", [sample["object"]])
        mask = index_mask == objects[0] if len(objects) == 1 else np.isin(index_mask, objects)
        sample["mask"] = torch.from_numpy(mask)
        if "depth" in self.passes:
            sample["depth"] = torch.from_numpy(self.store.read_depth(scene, u, v))
        return self.transform(sample) if self.transform is not None else sample

    def __repr__(self) -> str:
        return (
            f"ClevrRemvDataset(root={str(self.store.root)!r}, split={self.split!r}, "
            f"views={len(self.views)}, samples={len(self)})"
        )


def open_split(root, split: str, views, passes) -> tuple:
    """(reader, views, passes, scene ids) of ``split`` of a dataset folder or packed folder: the
    reader has the DatasetStore methods ClevrRemvDataset uses (load_refexps, read_rgb, ...)."""
    if is_packed(root):
        from clevr_remv.dataset.packed.reader import PackedStore

        packed = PackedStore(root)
        passes = _check_passes(packed, passes)
        views = select_views(views, packed.grid)
        reader = packed.split_reader(split, views, passes)
        return reader, views, passes, reader.scene_ids()
    store = DatasetStore(root)
    passes = _check_passes(store, passes)
    return store, select_views(views, store.grid), passes, split_scene_ids(store, split)


def _check_passes(store, passes) -> tuple:
    """``passes`` as a tuple, after checking that each is known and in the dataset."""
    passes = (passes,) if isinstance(passes, str) else tuple(passes)
    unknown = [name for name in passes if name not in OPTIONAL_PASSES]
    if unknown:
        raise ClevrRemvError(
            f"passes={passes!r}: {', '.join(map(repr, unknown))} is not a pass; "
            f"choose from {OPTIONAL_PASSES!r} (image and mask are always loaded)"
        )
    if "depth" in passes:
        store.require_depth(
            f"passes={passes!r}",
            "leave out passes=('depth',), or regenerate the dataset with `clevr-remv generate --passes depth`",
        )
    return passes
