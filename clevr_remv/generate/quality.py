"""Render quality against a high-sample reference render of the same view (benchmarks/bench_render.py).

PSNR is taken over the whole image, over the objects (the reference's index mask dilated by
DILATION_PX pixels, so that edges, which carry most of the error, count), and for the worst object
(each object's own dilated mask, objects with at least MIN_OBJECT_PIXELS pixels).
"""

import numpy as np
from PIL import Image, ImageFilter

DILATION_PX = 3
MIN_OBJECT_PIXELS = 50


def psnr(image, reference, region=None) -> float:
    """PSNR in dB of 8-bit ``image`` against ``reference`` over the pixels where ``region`` (H, W) is
    true (all pixels if None); inf when they agree there."""
    error = (np.asarray(image, np.float64) - np.asarray(reference, np.float64)) ** 2
    if region is not None:
        error = error[np.asarray(region, bool)]
    mse = float(error.mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def dilate(mask, pixels: int = DILATION_PX) -> np.ndarray:
    """``mask`` (H, W) grown by ``pixels`` in every direction (a square neighbourhood)."""
    image = Image.fromarray(np.asarray(mask, bool).astype(np.uint8) * 255)
    return np.asarray(image.filter(ImageFilter.MaxFilter(2 * pixels + 1))) > 0


def view_quality(image, reference, index) -> dict:
    """{"whole", "objects", "worst_object"} PSNR (dB) of one view; ``index`` is the reference's
    object-index mask (0 = background). "objects" is None when no object shows, "worst_object"
    when none is big enough."""
    objects = [k for k in np.unique(index) if k > 0 and np.count_nonzero(index == k) >= MIN_OBJECT_PIXELS]
    per_object = [psnr(image, reference, dilate(index == k)) for k in objects]
    return {
        "whole": psnr(image, reference),
        "objects": psnr(image, reference, dilate(index > 0)) if (index > 0).any() else None,
        "worst_object": min(per_object) if per_object else None,
    }
