"""Retrieval data: read the ``role`` split (train / val / test) of a data folder in either format.

``--format precomp`` reads the VSE++/SCAN layout ``<root>/{train,dev,test}_ims.npy`` (one row of
CNN features per image, or (N, regions, D) region features, averaged) and ``<root>/{split}_caps.txt``
(one caption a line, the same number per image, image by image: usually 5).
``--format remv`` reads CLEVR-REMV (see ``remv.py``).
"""

from pathlib import Path

import numpy as np

from clevr_remv.errors import ClevrRemvError
from clevr_remv.retrieval.remv import load_remv_split, remv_split_exists
from clevr_remv.retrieval.split import RetrievalSplit
from clevr_remv.wording import plural

FORMATS = ("precomp", "remv")
PRECOMP_SPLITS = {"train": "train", "val": "dev", "test": "test"}


def precomp_paths(root, split: str):
    """(features .npy, captions .txt) of ``split`` in a precomputed-feature folder."""
    root = Path(root)
    return root / f"{split}_ims.npy", root / f"{split}_caps.txt"


def precomp_split_exists(root, role: str) -> bool:
    return all(path.is_file() for path in precomp_paths(root, PRECOMP_SPLITS[role]))


def load_precomp_split(root, split: str) -> RetrievalSplit:
    """Read ``{split}_ims.npy`` and ``{split}_caps.txt`` from ``root``."""
    ims_path, caps_path = precomp_paths(root, split)
    for path in (ims_path, caps_path):
        if not path.is_file():
            raise ClevrRemvError(
                f"{path}: missing; a precomputed-feature folder holds "
                f"{{train,dev,test}}_ims.npy and {{train,dev,test}}_caps.txt "
                "(make a demo one with `clevr-remv retrieval synthetic`)"
            )
    try:
        images = np.load(ims_path, mmap_mode="r")
    except ValueError as error:
        raise ClevrRemvError(f"{ims_path}: not a .npy array ({error}); save features with numpy.save") from error
    if images.ndim == 3:
        images = images.mean(axis=1)
    if images.ndim != 2 or images.shape[0] == 0:
        raise ClevrRemvError(
            f"{ims_path}: shape {images.shape}; expected (images, features) or (images, regions, features)"
        )
    captions = caps_path.read_text(encoding="utf-8").splitlines()
    if not captions or len(captions) % images.shape[0]:
        raise ClevrRemvError(
            f"{caps_path}: {plural(len(captions), 'caption')} for {plural(images.shape[0], 'image')} in "
            f"{ims_path.name}; the layout needs the same number of captions per image "
            "(usually 5), one a line, in image order"
        )
    per_image = len(captions) // images.shape[0]
    caption_image = np.arange(len(captions)) // per_image
    return RetrievalSplit(split, images, captions, caption_image)


def load_split(data, data_format: str, role: str, image_size: int = 128) -> RetrievalSplit:
    """The ``role`` split (train / val / test) of ``data`` in ``data_format`` (precomp / remv)."""
    if data_format == "precomp":
        return load_precomp_split(data, PRECOMP_SPLITS[role])
    if data_format == "remv":
        return load_remv_split(data, role, image_size)
    raise ClevrRemvError(f"--format: {data_format!r} is not one of {', '.join(FORMATS)}")


def split_exists(data, data_format: str, role: str) -> bool:
    """Whether ``data`` has the ``role`` split (the test split of a precomp folder is optional)."""
    if data_format == "precomp":
        return precomp_split_exists(data, role)
    return remv_split_exists(data, role)
