"""COCO encodings of binary masks: run-length encoding (the one encoder and decoder of the
package) and boxes."""

import numpy as np
from pycocotools import mask as coco_mask

from clevr_remv.wording import plural


def mask_to_rle(mask) -> dict:
    """Compressed COCO RLE of a binary (H, W) mask (non-zero = foreground), JSON-ready:
    ``{"size": [H, W], "counts": str}``."""
    rle = coco_mask.encode(np.asfortranarray(np.asarray(mask, dtype=bool), dtype=np.uint8))
    return {"size": [int(n) for n in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_runs(counts) -> list:
    """The run lengths of COCO RLE ``counts``: a list as it is, a compressed string decoded.

    pycocotools' string code: each run in 6-bit chunks written as the characters '0' to 'o', 5 bits
    of the value each, 0x20 "another chunk follows", 0x10 in the last chunk the sign; from the
    fourth run on, the value is the difference to the run two before.

    Raises:
        ValueError: a character outside '0' to 'o', or a string that ends inside a run.
    """
    if isinstance(counts, list):
        return counts
    runs, value, shift = [], 0, 0
    for byte in counts.encode("ascii") if isinstance(counts, str) else bytes(counts):
        chunk = byte - 48
        if not 0 <= chunk < 64:
            raise ValueError(f"{chr(byte)!r} is not a character of a compressed RLE ('0' to 'o')")
        value |= (chunk & 0x1F) << shift
        shift += 5
        if chunk & 0x20:
            continue
        if chunk & 0x10:
            value -= 1 << shift
        runs.append(value + runs[-2] if len(runs) > 2 else value)
        value, shift = 0, 0
    if shift:
        raise ValueError("the compressed RLE string ends inside a run length")
    return runs


def rle_to_mask(rle: dict) -> np.ndarray:
    """Decode a COCO RLE to a C-contiguous boolean (H, W) mask. ``counts`` may be compressed
    (str or bytes) or uncompressed (a list of run lengths).

    Raises:
        ValueError: counts that are malformed, hold a negative run or do not add up to H x W
            (pycocotools would read or write past its H x W buffer).
    """
    height, width = rle["size"]
    counts = rle["counts"]
    runs = rle_runs(counts)
    if min(runs, default=0) < 0 or sum(runs) != height * width:
        kind = "uncompressed" if isinstance(counts, list) else "compressed"
        raise ValueError(
            f"the {kind} RLE counts add up to {plural(sum(runs), 'pixel')} (or hold a negative run), "
            f"not {height}x{width} = {height * width}"
        )
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
