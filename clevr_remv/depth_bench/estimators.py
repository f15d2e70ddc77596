"""Reference disparity estimates that give a score its meaning: a constant floor and a classical
light-field plane sweep (no learned weights).

Both give the centre view's disparity in the benchmark's convention: a point at (x, y) of the
centre view (uc, vc) lies at (x + (uc - u) d, y + (vc - v) d) in view (u, v).
"""

import numpy as np

ESTIMATORS = ("constant", "sweep")
SWEEP_HYPOTHESES = 64
SWEEP_WINDOW = 2  # box filter radius: 5 x 5 pixels


def constant_estimate(truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The floor: every pixel at the median true disparity of the mask's finite pixels. It reads
    the ground truth, so it is a bound no method can claim, not a method."""
    values = truth[mask & np.isfinite(truth)]
    level = np.median(values) if values.size else 0.0
    return np.full(truth.shape, level, np.float32)


def sweep_hypotheses(low: float, high: float, count: int = SWEEP_HYPOTHESES) -> np.ndarray:
    """``count`` evenly spaced disparities from ``low`` to ``high`` (one when they are equal)."""
    return np.linspace(low, high, count if high > low else 1)


def _shifted(padded: np.ndarray, pad: int, shape, dx: float, dy: float) -> np.ndarray:
    """The view (padded with ``pad`` NaN pixels) sampled bilinearly at (x + dx, y + dy) for every
    pixel (x, y) of ``shape``; NaN where a sample leaves the image."""
    height, width = shape
    kx, ky = int(np.floor(dx)), int(np.floor(dy))
    ax, ay = dx - kx, dy - ky

    def window(oy, ox):
        return padded[pad + ky + oy : pad + ky + oy + height, pad + kx + ox : pad + kx + ox + width]

    top = window(0, 0) if ax == 0 else (1 - ax) * window(0, 0) + ax * window(0, 1)
    if ay == 0:
        return top
    bottom = window(1, 0) if ax == 0 else (1 - ax) * window(1, 0) + ax * window(1, 1)
    return (1 - ay) * top + ay * bottom


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """The mean of the finite values in a (2 radius + 1)-pixel square around each pixel (NaN where
    there are none), with summed-area tables."""
    finite = np.isfinite(values)
    sums = np.where(finite, values, 0.0)
    counts = finite.astype(np.float64)

    def box(image):
        table = np.pad(image, ((radius + 1, radius), (radius + 1, radius))).cumsum(0).cumsum(1)
        size = 2 * radius + 1
        return table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]

    with np.errstate(invalid="ignore", divide="ignore"):
        return box(sums) / box(counts)


def photo_consistency(views: dict, centre: tuple, disparity: float) -> np.ndarray:
    """The cost of ``disparity`` at each pixel of the centre view: the variance, summed over the
    colour channels, of the views' colours where that disparity says the pixel's point appears
    (bilinear sampling; views whose sample falls outside the image are left out; NaN where fewer
    than two remain). ``views`` maps (u, v) to float (H, W, C) images, NaN-padded by the same
    margin (see `plane_sweep`)."""
    uc, vc = centre
    total = square = count = 0
    for (u, v), (padded, pad, shape) in views.items():
        sample = _shifted(padded, pad, shape, (uc - u) * disparity, (vc - v) * disparity)
        inside = np.isfinite(sample[..., 0])
        sample = np.where(inside[..., None], sample, 0.0)
        total = total + sample
        square = square + sample * sample
        count = count + inside
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count[..., None]
        variance = (square / count[..., None] - mean * mean).sum(axis=-1)
    return np.where(count >= 2, np.maximum(variance, 0.0), np.nan)


def plane_sweep(images: dict, centre: tuple, hypotheses, window: int = SWEEP_WINDOW) -> np.ndarray:
    """The centre view's disparity from a light field ``images`` ((u, v) -> uint8 or float
    (H, W, 3)): for each hypothesis the photo-consistency cost, averaged over a
    (2 window + 1)-pixel square; per pixel the hypothesis of least cost, refined between its
    neighbours by the vertex of the parabola through the three costs. float32 (H, W)."""
    hypotheses = np.asarray(hypotheses, np.float64)
    reach = max(max(abs(u - centre[0]), abs(v - centre[1])) for u, v in images)
    pad = int(np.ceil(reach * np.abs(hypotheses).max())) + 2
    views = {}
    for key, image in images.items():
        image = np.asarray(image, np.float32) / (255.0 if np.asarray(image).dtype == np.uint8 else 1.0)
        views[key] = (np.pad(image, ((pad, pad), (pad, pad), (0, 0)), constant_values=np.nan), pad, image.shape[:2])
    costs = np.stack([_box_mean(photo_consistency(views, centre, d), window) for d in hypotheses])
    costs = np.where(np.isfinite(costs), costs, np.inf)
    best = np.argmin(costs, axis=0)
    estimate = hypotheses[best]
    if hypotheses.size >= 3:
        inner = np.clip(best, 1, hypotheses.size - 2)
        before, at, after = (np.take_along_axis(costs, (inner + step)[None], 0)[0] for step in (-1, 0, 1))
        curvature = before - 2 * at + after
        with np.errstate(invalid="ignore", divide="ignore"):
            offset = np.where(
                (best == inner) & (curvature > 0) & np.isfinite(curvature), 0.5 * (before - after) / curvature, 0.0
            )
        step = hypotheses[1] - hypotheses[0]
        estimate = estimate + np.clip(np.nan_to_num(offset), -0.5, 0.5) * step
    return estimate.astype(np.float32)
