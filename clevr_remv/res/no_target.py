"""A segmentation model's "no target" answer on generalized datasets: a predicted-area threshold.

A model trained on generalized data learns to predict empty masks for no-target expressions, but
often leaves a few stray pixels. The rule empties every predicted mask with fewer than ``pixels``
pixels. ``pixels`` is chosen on the val split (the model's predictions there) to maximise gIoU,
so no test sample decides it; 0 keeps the argmax masks as they are.
"""

import numpy as np

from clevr_remv.metrics import generalized_summary


def choose_area_threshold(samples) -> dict:
    """The threshold that maximises gIoU over ``samples``, an iterable of (predicted pixels, I, U,
    target pixels) per val sample; candidates are 0 and every predicted area + 1 (ties: the
    smallest). Returns {"pixels", "val_gIoU", "val_gIoU_argmax", "val_samples"} (gIoU in %)."""
    table = np.asarray(list(samples), dtype=np.int64).reshape(-1, 4)
    areas, intersections, unions, targets = table.T
    order = np.argsort(areas, kind="stable")
    areas, intersections, unions, targets = areas[order], intersections[order], unions[order], targets[order]
    no_target = targets == 0
    # A sample's score when its mask is kept (GRES's per-sample IoU) and when it is emptied.
    kept = np.where(no_target, areas == 0, np.divide(intersections, unions, out=np.zeros(len(areas)), where=unions > 0))
    emptied = no_target.astype(float)
    emptied_before = np.concatenate([[0.0], np.cumsum(emptied)])
    kept_from = np.concatenate([np.cumsum(kept[::-1])[::-1], [0.0]])
    candidates = np.concatenate([[0], np.unique(areas) + 1])
    cut = np.searchsorted(areas, candidates, side="left")  # samples with area < candidate
    scores = emptied_before[cut] + kept_from[cut]
    best = int(np.argmax(np.round(scores, 9)))  # ties (up to rounding of the sums): the smallest threshold
    count = len(areas)
    baseline = generalized_summary(intersections, unions, targets)["gIoU"] if count else 0.0
    return {
        "pixels": int(candidates[best]),
        "val_gIoU": 100.0 * float(scores[best]) / count if count else 0.0,
        "val_gIoU_argmax": baseline,
        "val_samples": count,
    }


def empty_below(mask: np.ndarray, rule) -> np.ndarray:
    """``mask``, or an empty mask when it has fewer than ``rule["pixels"]`` pixels (no rule: as is)."""
    if rule is None or np.count_nonzero(mask) >= rule["pixels"]:
        return mask
    return np.zeros_like(mask)
