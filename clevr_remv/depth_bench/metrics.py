"""The 4D Light Field Benchmark's general disparity metrics (Honauer et al., ACCV 2016, and its
evaluation toolkit), on its evaluation mask.

All metrics compare an estimated disparity map with the ground truth on the pixels of a mask
where both are finite:

- ``badpix_T``: the percentage of those pixels whose absolute error exceeds T pixels (strictly);
- ``mse_x100``: the mean squared error, times 100;
- ``q25_x100``: the toolkit's 25th percentile of the absolute error, times 100: the sorted errors'
  element at index floor(n * 25 / 100) (0-based) of n pixels, with no interpolation.

The evaluation mask leaves out a border of 15 pixels on each side of the benchmark's 512x512
scenes; `border_pixels` scales it with the image as the toolkit does for its other
resolutions.
"""

import numpy as np

BADPIX_THRESHOLDS = (0.07, 0.03, 0.01)  # 0.07 is the benchmark's default
METRICS = tuple(f"badpix_{t}" for t in BADPIX_THRESHOLDS) + ("mse_x100", "q25_x100")
HCI_SIZE = 512  # the benchmark's scenes are 512 x 512
HCI_BORDER = 15  # pixels ignored on each side of them


def border_pixels(width: int, height: int) -> int:
    """The border ignored on each side of a width x height image: 15 pixels at the benchmark's
    512, in proportion to the longer side elsewhere (truncated, as the toolkit's
    ``int(15 * scale)``). The focal length in pixels (so disparity) grows with that side too, so
    the border stays the same share of the picture and of the largest shifts between views."""
    return int(HCI_BORDER * max(width, height) / HCI_SIZE)


def evaluation_mask(shape, border: int) -> np.ndarray:
    """A boolean (height, width) mask, True except ``border`` pixels along each edge."""
    height, width = shape
    mask = np.zeros((height, width), bool)
    mask[border : height - border, border : width - border] = True
    return mask


def _errors(estimate, truth, mask) -> np.ndarray:
    """Absolute errors (float64) on the mask's pixels where both maps are finite."""
    estimate, truth = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    keep = np.asarray(mask, bool) & np.isfinite(estimate) & np.isfinite(truth)
    return np.abs(estimate[keep] - truth[keep])


def badpix(estimate, truth, mask, threshold: float) -> float:
    """Percentage of the mask's finite pixels with |estimate - truth| > ``threshold``; NaN when
    no pixel counts."""
    errors = _errors(estimate, truth, mask)
    return float(100.0 * np.count_nonzero(errors > threshold) / errors.size) if errors.size else float("nan")


def mse_x100(estimate, truth, mask) -> float:
    """100 times the mean squared error on the mask's finite pixels; NaN when none."""
    errors = _errors(estimate, truth, mask)
    return float(100.0 * np.mean(np.square(errors))) if errors.size else float("nan")


def q25_x100(estimate, truth, mask) -> float:
    """100 times the toolkit's 25th-percentile absolute error: element floor(n / 4) of the sorted
    errors of the mask's n finite pixels; NaN when none."""
    errors = np.sort(_errors(estimate, truth, mask))
    return float(100.0 * errors[int(errors.size * 25 / 100)]) if errors.size else float("nan")


def score(estimate, truth, mask) -> dict:
    """Every metric of `METRICS` on one map."""
    scores = {f"badpix_{t}": badpix(estimate, truth, mask, t) for t in BADPIX_THRESHOLDS}
    scores["mse_x100"] = mse_x100(estimate, truth, mask)
    scores["q25_x100"] = q25_x100(estimate, truth, mask)
    return scores
