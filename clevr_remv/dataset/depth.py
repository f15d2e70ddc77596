"""Depth maps on disk: 16-bit PNGs of z-depth in steps of ``DEPTH_SCALE`` world units.

A pixel's count c means a z-depth (along the camera's optical axis) of c * DEPTH_SCALE world
units. Count 0 means no value: no surface (sky) or farther than the range,
65535 * DEPTH_SCALE = 52.4 world units (the farthest ground point of a default 9x9 rig, 0.1
apart, is 34.6 away). With one world unit taken as a metre, the steps are 0.8 mm.
"""

import numpy as np

DEPTH_SCALE = 0.0008
OPTIONAL_PASSES = ("depth",)  # passes a dataset may hold beside rgb and index
MAX_COUNT = np.iinfo(np.uint16).max


def encode_depth(depth: np.ndarray, scale: float = DEPTH_SCALE) -> np.ndarray:
    """float z-depth (world units) -> uint16 counts; non-finite, non-positive and too far -> 0."""
    depth = np.asarray(depth, np.float64)
    with np.errstate(invalid="ignore"):
        counts = np.rint(depth / scale)
        valid = np.isfinite(counts) & (counts >= 1) & (counts <= MAX_COUNT)
    return np.where(valid, counts, 0).astype(np.uint16)


def decode_depth(counts: np.ndarray, scale: float) -> np.ndarray:
    """uint16 counts -> float32 z-depth in world units (0 stays 0: no value)."""
    return np.asarray(counts, np.float32) * np.float32(scale)
