"""COCO encodings of binary masks: run-length encoding (the one encoder and decoder of the
package) and boxes."""

import numpy as np
from pycocotools import mask as coco_mask


def mask_to_rle(mask) -> dict:
    """Compressed COCO RLE of a binary (H, W) mask (non-zero = foreground), JSON-ready:
    ``{"size": [H, W], "counts": str}``."""
    rle = coco_mask.encode(np.asfortranarray(np.asarray(mask, dtype=bool), dtype=np.uint8))
    return {"size": [int(n) for n in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Decode a COCO RLE to a C-contiguous boolean (H, W) mask. ``counts`` may be compressed
    (str or bytes) or uncompressed (a list of run lengths)."""
    height, width = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, list):
        rle = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    else:
        compressed = counts.encode("ascii") if isinstance(counts, str) else counts
        rle = {"size": [height, width], "counts": compressed}
    return np.ascontiguousarray(coco_mask.decode(rle), dtype=bool)  # RLE decodes column-major


def visible_box(mask: np.ndarray) -> list:
    """COCO [x, y, w, h] of a boolean mask's pixels; [0, 0, 0, 0] when empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
