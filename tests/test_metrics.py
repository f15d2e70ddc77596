"""Metrics against hand-made masks and hand-computed values."""

import math
import subprocess
import sys

import numpy as np
import pytest

from clevr_remv.metrics import (
    ScoreAccumulator,
    intersection_and_union,
    iou,
    manhattan_distance,
    mean_relative_drop,
    mvr,
    robustness,
    summarize,
)

CENTER = (5, 5)
CORNERS = [(1, 1), (9, 1), (1, 9), (9, 9)]


def masks_with_counts(intersection, union, size=100):
    """A prediction / ground-truth pair on a 1 x size strip with the given I and U."""
    prediction = np.zeros((1, size), bool)
    target = np.zeros((1, size), bool)
    target[0, :union] = True  # gt covers the union...
    prediction[0, union - intersection : union] = True  # ...prediction the last I pixels
    return prediction, target


def test_intersection_and_union_on_hand_drawn_masks():
    prediction = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], bool)
    target = np.array([[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], bool)
    assert intersection_and_union(prediction, target) == (2, 6)
    assert iou(2, 6) == pytest.approx(1 / 3)


def test_empty_union_scores_zero():
    empty = np.zeros((3, 4), bool)
    assert intersection_and_union(empty, empty) == (0, 0)
    assert iou(0, 0) == 0.0
    summary = summarize([0], [0])
    assert summary["mIoU"] == 0.0 and summary["oIoU"] == 0.0 and summary["P@0.5"] == 0.0


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="shapes differ"):
        intersection_and_union(np.zeros((2, 3), bool), np.zeros((3, 2), bool))


@pytest.mark.parametrize(
    "intersection,union,passed",
    [
        (5, 10, ["P@0.5"]),  # exactly 0.5
        (6, 10, ["P@0.5", "P@0.6"]),  # exactly 0.6
        (7, 10, ["P@0.5", "P@0.6", "P@0.7"]),  # exactly 0.7 (7 < 0.7 * 10 in floats)
        (4, 5, ["P@0.5", "P@0.6", "P@0.7", "P@0.8"]),  # exactly 0.8
        (9, 10, ["P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9"]),
        (8, 9, ["P@0.5", "P@0.6", "P@0.7", "P@0.8"]),  # 0.888.. < 0.9
        (49, 99, []),  # just under 0.5
    ],
)
def test_precision_at_k_counts_iou_equal_to_threshold(intersection, union, passed):
    prediction, target = masks_with_counts(intersection, union)
    i, u = intersection_and_union(prediction, target)
    assert (i, u) == (intersection, union)
    summary = summarize([i], [u])
    for key in ("P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9"):
        assert summary[key] == (100.0 if key in passed else 0.0), key


def test_oiou_differs_from_miou():
    # A small object missed (IoU 0) and a big one found (IoU 1):
    # mIoU = 50 %, oIoU = 90 / (10 + 90) = 90 %.
    summary = summarize([0, 90], [10, 90])
    assert summary["mIoU"] == pytest.approx(50.0)
    assert summary["oIoU"] == pytest.approx(90.0)
    assert summary["P@0.5"] == pytest.approx(50.0)
    assert summary["samples"] == 2


def test_summarize_rejects_inconsistent_counts():
    with pytest.raises(ValueError):
        summarize([3], [2])
    with pytest.raises(ValueError):
        summarize([1, 2], [3])


def test_accumulator_per_view_and_overall():
    scores = ScoreAccumulator()
    scores.add((2, 1), 1, 2)
    scores.add((1, 1), 3, 4)
    scores.add((1, 1), 0, 4)
    scores.add((1, 2), 2, 2)
    assert scores.views() == [(1, 1), (2, 1), (1, 2)]
    per_view = scores.per_view()
    assert per_view[(1, 1)]["mIoU"] == pytest.approx(37.5)
    assert per_view[(1, 1)]["oIoU"] == pytest.approx(37.5)
    assert per_view[(1, 2)]["P@0.9"] == 100.0
    overall = scores.overall()
    assert overall["samples"] == 4
    assert overall["oIoU"] == pytest.approx(100 * 6 / 12)
    assert overall["mIoU"] == pytest.approx(100 * (0.5 + 0.75 + 0 + 1) / 4)


def test_manhattan_distance():
    assert manhattan_distance((1, 1), CENTER) == 8
    assert manhattan_distance((5, 7), CENTER) == 2
    assert manhattan_distance(CENTER, CENTER) == 0


def test_mvr_by_hand():
    # Q = 0.5 at distance 1 and Q = 1 (no drop) at distance 2:
    # MVR = -(0.5 ln 0.5) / 1 - 0 = 0.34657... -> 34.657 %
    ious = {(2, 2): 0.8, (1, 2): 0.4, (2, 4): 0.8}
    assert mvr(ious, (2, 2)) == pytest.approx(-100 * 0.5 * math.log(0.5))
    # Only ratios matter: the same in %.
    assert mvr({view: 100 * value for view, value in ious.items()}, (2, 2)) == pytest.approx(-100 * 0.5 * math.log(0.5))


def test_mvr_reproduces_paper_lavt_value():
    # Paper table 7.3 (corner oIoU) and table 7.1 (centre oIoU 94.72): MVR 2.1996 % in table 7.4.
    ious = dict(zip(CORNERS, [0.8755, 0.8945, 0.9204, 0.9270], strict=True))
    ious[CENTER] = 0.9472
    assert mvr(ious, CENTER) == pytest.approx(2.1996, abs=0.005)


def test_mvr_flaw_and_mrd():
    no_drop = {CENTER: 0.9, **{corner: 0.9 for corner in CORNERS}}
    total_failure = {CENTER: 0.9, **{corner: 0.0 for corner in CORNERS}}
    half = {CENTER: 0.9, **{corner: 0.45 for corner in CORNERS}}
    # -Q ln Q is 0 both without drop and at total failure: MVR cannot tell them apart...
    assert mvr(no_drop, CENTER) == 0.0
    assert mvr(total_failure, CENTER) == 0.0
    assert mvr(half, CENTER) == pytest.approx(-100 * 4 * 0.5 * math.log(0.5) / 8)
    # ...the mean relative drop can.
    assert mean_relative_drop(no_drop, CENTER) == 0.0
    assert mean_relative_drop(total_failure, CENTER) == pytest.approx(100.0)
    assert mean_relative_drop(half, CENTER) == pytest.approx(50.0)


def test_mrd_weights_by_inverse_distance():
    # Drops 1 - Q = 0.5 at distance 1 and 0 at distance 2: (0.5/1 + 0/2) / (1/1 + 1/2) = 1/3
    ious = {(2, 2): 0.8, (1, 2): 0.4, (2, 4): 0.8}
    assert mean_relative_drop(ious, (2, 2)) == pytest.approx(100 / 3)
    # A shifted view better than the centre gives a negative drop and a negative MVR term.
    better = {(2, 2): 0.5, (3, 2): 0.75}
    assert mean_relative_drop(better, (2, 2)) == pytest.approx(-50.0)
    assert mvr(better, (2, 2)) < 0


def test_mvr_edge_cases():
    assert math.isnan(mvr({CENTER: 0.0, (1, 1): 0.3}, CENTER))
    assert math.isnan(mean_relative_drop({CENTER: 0.0, (1, 1): 0.3}, CENTER))
    with pytest.raises(ValueError, match="centre"):
        mvr({(1, 1): 0.3, (9, 9): 0.4}, CENTER)
    with pytest.raises(ValueError, match="besides the centre"):
        mvr({CENTER: 0.3}, CENTER)


def test_robustness_reports_which_iou_fed_it():
    per_view = {CENTER: {"oIoU": 80.0, "mIoU": 60.0}, (1, 1): {"oIoU": 40.0, "mIoU": 60.0}}
    by_oiou = robustness(per_view, CENTER)
    assert by_oiou["robustness_iou"] == "oIoU"
    assert by_oiou["MVR"] == pytest.approx(-100 * 0.5 * math.log(0.5) / 8)
    assert by_oiou["MRD"] == pytest.approx(50.0)
    by_miou = robustness(per_view, CENTER, "mIoU")
    assert by_miou["MVR"] == 0.0 and by_miou["MRD"] == 0.0
    only_center = robustness({CENTER: per_view[CENTER]}, CENTER)
    assert only_center["MVR"] is None and only_center["MRD"] is None
    with pytest.raises(ValueError):
        robustness(per_view, CENTER, "IoU")


def test_metrics_import_without_torch():
    code = "import sys, clevr_remv.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
