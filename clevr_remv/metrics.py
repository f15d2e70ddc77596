"""Referring-expression segmentation metrics: IoU, P@K, mIoU, oIoU, and multi-view robustness.

Pure numpy. A *sample* is one (expression, view) pair; its masks are compared at the dataset's
native resolution. All summary figures are percentages.

- IoU = I / U with I = |pred AND gt|, U = |pred OR gt|; 0 when U = 0 (both masks empty).
- P@t = % of samples with IoU >= t, for t in 0.5 ... 0.9.
- mIoU = mean per-sample IoU; oIoU = sum I / sum U (0 when sum U = 0).
- MVR (paper eq. 7.1-7.4): Q = IoU(u, v) / IoU(centre);
  MVR = -sum over non-centre views of Q ln Q / (|u - uc| + |v - vc|).
- MVR validity: -Q ln Q rises as Q falls from 1 to 1/e and falls again below 1/e, down to 0 at
  Q = 0, so where some shifted view keeps less than 1/e of the centre IoU a larger drop can give a
  smaller MVR (a model that fails completely off the centre scores 0, as a perfect one).
  ``mvr_valid`` is False then: such an MVR is not comparable, read MRD instead.
- MRD (mean relative drop, our addition): the share of the centre IoU lost at the shifted views,
  averaged with MVR's 1/distance weights: sum (1 - Q) / d / sum 1 / d. Unlike -Q ln Q, which is 0
  both for no drop (Q = 1) and for total failure (Q = 0), it grows monotonically as IoU falls:
  0 = no drop, 100 = every shifted view fails, negative = shifted views beat the centre.
- Several seeds: the robustness of a model over seeds is the mean of its per-seed MVRs (and
  MRDs), not the MVR of its mean IoUs; valid only when every seed's MVR is.

Generalized RES (GRES: expressions naming no object or several; an empty predicted mask is the
answer "no target"), from per-sample I, U and the target's pixel count T (0 = no-target sample):

- gIoU = mean per-sample IoU where a no-target sample scores 100 when predicted empty, else 0;
- cIoU = sum I / sum U, the same as oIoU (a no-target sample adds its predicted pixels to U);
- N-acc = % of no-target samples predicted empty; T-acc = % of target samples predicted non-empty
  (None when the split has no sample of that kind).
"""

import math
from collections import defaultdict

import numpy as np

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
PRECISION_KEYS = tuple(f"P@{t}" for t in THRESHOLDS)
ROBUSTNESS_IOUS = ("oIoU", "mIoU")
GENERALIZED_KEYS = ("gIoU", "cIoU", "N-acc", "T-acc")
GENERALIZED_IOUS = ("gIoU", "cIoU")
MVR_VALID_MIN_Q = 1 / math.e  # below it, -Q ln Q falls as the drop grows


def intersection_and_union(prediction, target) -> tuple:
    """Pixel counts (I, U) of two boolean masks of the same shape."""
    prediction = np.asarray(prediction, dtype=bool)
    target = np.asarray(target, dtype=bool)
    if prediction.shape != target.shape:
        raise ValueError(f"mask shapes differ: prediction {prediction.shape}, target {target.shape}")
    intersection = int(np.count_nonzero(prediction & target))
    return intersection, int(np.count_nonzero(prediction)) + int(np.count_nonzero(target)) - intersection


def iou(intersection, union) -> float:
    """I / U as a fraction; 0 when the union is empty."""
    return intersection / union if union else 0.0


def summarize(intersections, unions) -> dict:
    """P@0.5..P@0.9, mIoU and oIoU (all in %) and the sample count of a set of samples."""
    intersections = np.asarray(intersections, dtype=np.int64)
    unions = np.asarray(unions, dtype=np.int64)
    if intersections.shape != unions.shape or intersections.ndim != 1:
        raise ValueError("intersections and unions must be 1-D sequences of the same length")
    if np.any(intersections > unions) or np.any(intersections < 0):
        raise ValueError("each intersection must lie between 0 and its union")
    count = int(unions.size)
    # One division per sample, so an IoU of exactly t compares equal to the literal t.
    ious = np.divide(intersections, unions, out=np.zeros(count), where=unions > 0)
    summary = {
        key: _percent(np.count_nonzero(ious >= t), count) for key, t in zip(PRECISION_KEYS, THRESHOLDS, strict=False)
    }
    summary["mIoU"] = 100.0 * float(ious.mean()) if count else 0.0
    summary["oIoU"] = _percent(int(intersections.sum()), int(unions.sum()))
    summary["samples"] = count
    return summary


def _percent(part, whole) -> float:
    return 100.0 * part / whole if whole else 0.0


def generalized_summary(intersections, unions, target_pixels) -> dict:
    """gIoU, cIoU, N-acc and T-acc (in %; see the module docstring) and the counts of no-target
    and target samples, from per-sample I, U and target pixel counts (0 = no target)."""
    intersections = np.asarray(intersections, dtype=np.int64)
    unions = np.asarray(unions, dtype=np.int64)
    targets = np.asarray(target_pixels, dtype=np.int64)
    if not intersections.shape == unions.shape == targets.shape or intersections.ndim != 1:
        raise ValueError("intersections, unions and target pixels must be 1-D sequences of the same length")
    if np.any(intersections > np.minimum(unions, targets)) or np.any(intersections < 0) or np.any(targets > unions):
        raise ValueError("each intersection must lie between 0 and its target, and the target within its union")
    no_target = targets == 0
    predicted_empty = unions - targets + intersections == 0
    ious = np.divide(intersections, unions, out=np.zeros(unions.size), where=unions > 0)
    ious[no_target] = predicted_empty[no_target]
    count, absent = int(unions.size), int(no_target.sum())
    return {
        "gIoU": 100.0 * float(ious.mean()) if count else 0.0,
        "cIoU": _percent(int(intersections.sum()), int(unions.sum())),
        "N-acc": 100.0 * float(predicted_empty[no_target].mean()) if absent else None,
        "T-acc": 100.0 * float((~predicted_empty[~no_target]).mean()) if count > absent else None,
        "no_target_samples": absent,
        "target_samples": count - absent,
    }


class ScoreAccumulator:
    """Collects per-sample (I, U) by view and summarises them per view and overall; with the
    target's pixel count given for every sample, the summaries add
    [`generalized_summary`][clevr_remv.metrics.generalized_summary], and with ``groupings`` each
    sample is also filed in a [`Breakdown`][clevr_remv.metrics.Breakdown]."""

    def __init__(self, groupings=()):
        self._counts = defaultdict(lambda: ([], [], []))
        self._breakdown = Breakdown(groupings)

    def add(self, view, intersection: int, union: int, target_pixels=None, labels=None) -> None:
        """Record one sample of view (u, v) (``target_pixels``: for the generalized figures;
        ``labels``: its label in each of the groupings)."""
        intersections, unions, targets = self._counts[tuple(view)]
        intersections.append(intersection)
        unions.append(union)
        targets.append(target_pixels)
        if labels is not None:
            self._breakdown.add(labels, intersection, union, target_pixels)

    def breakdowns(self) -> dict:
        """{grouping: {label: summary}} of the groupings (empty without groupings)."""
        return self._breakdown.summaries()

    def views(self) -> list:
        """The views seen so far, sorted by (v, u) (the rig's order)."""
        return sorted(self._counts, key=lambda view: (view[1], view[0]))

    def per_view(self) -> dict:
        """{(u, v): summary} for every view seen."""
        return {view: _summary(*self._counts[view]) for view in self.views()}

    def overall(self) -> dict:
        """The summary over all samples of all views."""
        return _summary(*([value for view in self._counts for value in self._counts[view][k]] for k in range(3)))


def _summary(intersections, unions, targets) -> dict:
    summary = summarize(intersections, unions)
    if targets and None not in targets:
        summary.update(generalized_summary(intersections, unions, targets))
    return summary


class Breakdown:
    """Per-sample (I, U, target pixels) filed under a label of each of several groupings (e.g.
    target count, template family), summarised per label as
    [`ScoreAccumulator`][clevr_remv.metrics.ScoreAccumulator] does."""

    def __init__(self, groupings):
        self._groups = {name: defaultdict(lambda: ([], [], [])) for name in groupings}

    def add(self, labels: dict, intersection: int, union: int, target_pixels: int) -> None:
        """Record one sample; ``labels`` maps each grouping to this sample's label."""
        for name, columns in self._groups.items():
            for column, value in zip(columns[labels[name]], (intersection, union, target_pixels), strict=True):
                column.append(value)

    def summaries(self) -> dict:
        """{grouping: {label: summary}}, labels in sorted order."""
        return {
            name: {label: _summary(*columns[label]) for label in sorted(columns)}
            for name, columns in self._groups.items()
        }


def manhattan_distance(view, center) -> int:
    """|u - uc| + |v - vc|: the camera shift of view (u, v) from the centre, in grid steps."""
    return abs(view[0] - center[0]) + abs(view[1] - center[1])


def _relative_ious(iou_by_view, center) -> list:
    """[(Q, distance)] for the non-centre views; Q = IoU / IoU(centre)."""
    center = tuple(center)
    views = {tuple(view): value for view, value in iou_by_view.items()}
    if center not in views:
        raise ValueError(f"the IoU of the centre view {center} is needed")
    shifted = [(view, value) for view, value in views.items() if view != center]
    if not shifted:
        raise ValueError("at least one view besides the centre is needed")
    if views[center] <= 0:
        return None
    return [(value / views[center], manhattan_distance(view, center)) for view, value in shifted]


def mvr(iou_by_view, center) -> float:
    """Multi-View Robustness in % (paper eq. 7.3, lower is better), from {(u, v): IoU}.

    The mapping must include the centre; IoUs may be fractions or % (only ratios matter).
    Returns NaN when the centre IoU is 0 (Q is undefined). 0 ln 0 is taken as 0.
    """
    ratios = _relative_ious(iou_by_view, center)
    if ratios is None:
        return math.nan
    return 100.0 * sum(-q * math.log(q) / distance for q, distance in ratios if q > 0)


def mvr_valid(iou_by_view, center):
    """Whether the MVR of {(u, v): IoU} ranks drops the right way round.

    True when every shifted view keeps Q = IoU / IoU(centre) >= 1/e, where -Q ln Q grows as Q
    falls; False when some view's Q lies below 1/e, where a larger drop gives a smaller MVR (such
    an MVR is not comparable: read MRD). None when the centre IoU is 0 (MVR undefined).
    """
    ratios = _relative_ious(iou_by_view, center)
    if ratios is None:
        return None
    return all(q >= MVR_VALID_MIN_Q for q, _ in ratios)


def mean_relative_drop(iou_by_view, center) -> float:
    """MRD in %: the 1/distance-weighted mean of 1 - IoU(u, v) / IoU(centre) over the
    non-centre views (lower is better; 100 = total failure). NaN when the centre IoU is 0."""
    ratios = _relative_ious(iou_by_view, center)
    if ratios is None:
        return math.nan
    weights = sum(1.0 / distance for _, distance in ratios)
    return 100.0 * sum((1.0 - q) / distance for q, distance in ratios) / weights


def robustness(per_view, center, iou_key: str = "oIoU") -> dict:
    """MVR, ``mvr_valid`` and MRD from per-view summaries ({(u, v): summary}), fed by ``iou_key``
    (one of ROBUSTNESS_IOUS, or of GENERALIZED_IOUS for summaries that have them).

    All three are None when only the centre was evaluated; MVR and MRD are NaN and ``mvr_valid``
    None when the centre IoU is 0.
    """
    if iou_key not in ROBUSTNESS_IOUS + GENERALIZED_IOUS:
        raise ValueError(f"iou_key must be one of {ROBUSTNESS_IOUS + GENERALIZED_IOUS}, not {iou_key!r}")
    iou_by_view = {view: summary[iou_key] for view, summary in per_view.items()}
    if tuple(center) not in iou_by_view or len(iou_by_view) < 2:
        return {"MVR": None, "mvr_valid": None, "MRD": None, "robustness_iou": iou_key}
    return {
        "MVR": mvr(iou_by_view, center),
        "mvr_valid": mvr_valid(iou_by_view, center),
        "MRD": mean_relative_drop(iou_by_view, center),
        "robustness_iou": iou_key,
    }


def seed_mean_robustness(figures) -> dict:
    """The robustness of one model over several seeds, from each seed's ``robustness`` figures.

    MVR and MRD are the means of the per-seed values (not the MVR of the mean IoUs; None when a
    seed has none); ``mvr_valid`` is True only when every seed's MVR is valid (None when a seed's
    is undefined). All seeds must use the same IoU.
    """
    figures = list(figures)
    iou_keys = {f["robustness_iou"] for f in figures}
    if len(iou_keys) != 1:
        raise ValueError(f"the seeds' robustness figures use different IoUs: {sorted(iou_keys)}")

    def mean(key):
        values = [f[key] for f in figures]
        return None if None in values else float(np.mean(values))

    validity = [f["mvr_valid"] for f in figures]
    return {
        "MVR": mean("MVR"),
        "mvr_valid": None if None in validity else all(validity),
        "MRD": mean("MRD"),
        "robustness_iou": iou_keys.pop(),
    }


def robustness_order(figures: dict) -> list:
    """The names of ``figures`` ({name: a dict with MVR, mvr_valid and MRD}), most robust first.

    Comparable MVRs (``mvr_valid`` True) come first, by MVR; then the models whose MVR is not
    comparable, by MRD; then those without figures. So a model that collapsed at some view is
    never ranked ahead of one with a comparable MVR, nor of a collapsed one with a smaller drop.
    Ties keep the input order.
    """

    def key(name):
        entry = figures[name]
        if entry["mvr_valid"]:
            return (0, entry["MVR"])
        if entry["mvr_valid"] is False:
            return (1, entry["MRD"])
        return (2, 0.0)

    return sorted(figures, key=key)
