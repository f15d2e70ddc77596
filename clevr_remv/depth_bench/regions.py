"""The regions a depth score is broken down by, from the centre view's index pass and true disparity.

- ``objects``: pixels of an object (index > 0);
- ``metal``: pixels of a metal object (mirror-like reflections break photo-consistency);
- ``floor``: the ground behind them (index 0 with a depth value: not the empty sky);
- ``occlusion``: a band around occlusion boundaries. A boundary lies between two 4-neighbouring
  pixels of different index (object and object, or object and floor) whose true disparities differ
  by more than 0.07 px (the benchmark's BadPix threshold): an object's silhouette against what lies
  behind it, but not where it stands on the floor at the same depth. The band is every pixel within
  `band_radius` pixels (a square) of a pixel on either side of one.
"""

import numpy as np

from clevr_remv.depth_bench.metrics import BADPIX_THRESHOLDS, HCI_SIZE

REGIONS = ("objects", "metal", "floor", "occlusion")
METAL = "metal"  # the material name of CLEVR's shiny objects
OCCLUSION_JUMP = BADPIX_THRESHOLDS[0]
BAND_AT_HCI_SIZE = 3  # band radius in pixels at the benchmark's 512 x 512


def band_radius(width: int, height: int) -> int:
    """The occlusion band's radius: 3 pixels at 512, in proportion to the longer side elsewhere,
    at least 1."""
    return max(1, round(BAND_AT_HCI_SIZE * max(width, height) / HCI_SIZE))


def occlusion_edges(index: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Pixels on either side of an occlusion boundary (see the module docstring)."""
    edges = np.zeros(index.shape, bool)
    for axis in (0, 1):
        first = [slice(None), slice(None)]
        second = [slice(None), slice(None)]
        first[axis], second[axis] = slice(None, -1), slice(1, None)
        first, second = tuple(first), tuple(second)
        with np.errstate(invalid="ignore"):
            jump = np.abs(truth[first] - truth[second]) > OCCLUSION_JUMP
        boundary = (index[first] != index[second]) & jump
        edges[first] |= boundary
        edges[second] |= boundary
    return edges


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by a (2 radius + 1)-pixel square, one axis at a time."""
    grown = mask.copy()
    for axis in (0, 1):
        source = grown.copy()
        for step in range(1, radius + 1):
            forward = [slice(None), slice(None)]
            backward = [slice(None), slice(None)]
            forward[axis], backward[axis] = slice(step, None), slice(None, -step)
            grown[tuple(forward)] |= source[tuple(backward)]
            grown[tuple(backward)] |= source[tuple(forward)]
    return grown


def region_masks(index: np.ndarray, depth: np.ndarray, truth: np.ndarray, scene: dict) -> dict:
    """Region name -> boolean mask of the centre view, from its index mask, z-depth (inf = no
    surface), true disparity and the scene.json document (for the objects' materials)."""
    height, width = index.shape
    metal = [k for k, item in enumerate(scene["objects"], start=1) if item["material"] == METAL]
    return {
        "objects": index > 0,
        "metal": np.isin(index, metal),
        "floor": (index == 0) & np.isfinite(depth),
        "occlusion": dilate(occlusion_edges(index, truth), band_radius(width, height)),
    }
