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
    mvr_valid,
    robustness,
    robustness_order,
    seed_mean_robustness,
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


# The paper's Table 7.3 (corner oIoU, fractions) and Table 7.1 (centre mIoU and oIoU, w/o DenseCRF).
PAPER_CORNERS = {  # I11, I19, I91, I99
    "baseline": (0.2873, 0.2246, 0.3781, 0.3171),
    "RMI": (0.2928, 0.2385, 0.4069, 0.3593),
    "BRINet": (0.4949, 0.4805, 0.6579, 0.6620),
    "RRN": (0.5944, 0.5933, 0.8104, 0.8155),
    "CMSA": (0.6184, 0.6169, 0.8166, 0.8305),
    "CMPC": (0.6644, 0.6619, 0.8851, 0.8858),
    "LAVT": (0.8755, 0.8945, 0.9204, 0.9270),
}
PAPER_CENTRE = {  # (mIoU, oIoU)
    "baseline": (34.78, 42.90),
    "RMI": (40.16, 46.93),
    "BRINet": (68.66, 72.75),
    "RRN": (85.64, 88.23),
    "CMSA": (85.25, 87.65),
    "CMPC": (91.39, 93.01),
    "LAVT": (94.08, 94.72),
}
PAPER_MVR = {"RMI": 7.8259, "RRN": 7.5840, "BRINet": 7.0202, "CMSA": 6.6705, "CMPC": 6.5862, "LAVT": 2.1996}


def paper_ious(model, centre_key):
    """{view: IoU} of a paper row: Table 7.3's corners, the centre's mIoU or oIoU from Table 7.1."""
    ious = dict(zip([(1, 1), (1, 9), (9, 1), (9, 9)], PAPER_CORNERS[model], strict=True))
    ious[CENTER] = PAPER_CENTRE[model][("mIoU", "oIoU").index(centre_key)] / 100
    return ious


def robustness_of(ious):
    return {"MVR": mvr(ious, CENTER), "mvr_valid": mvr_valid(ious, CENTER), "MRD": mean_relative_drop(ious, CENTER)}


@pytest.mark.parametrize("model", PAPER_MVR)
def test_mvr_reproduces_table_7_4_with_the_papers_mixed_centre_iou(model):
    # Table 7.4 comes out with the centre mIoU for RMI..CMPC and the centre oIoU for LAVT.
    ious = paper_ious(model, "oIoU" if model == "LAVT" else "mIoU")
    assert mvr(ious, CENTER) == pytest.approx(PAPER_MVR[model], abs=0.005)
    assert mvr_valid(ious, CENTER) is True  # every corner keeps more than half of the centre IoU


def test_table_7_4_with_one_measure_throughout():
    """The figures of docs/fidelity.md's Table 7.4 section: MVR (and MRD) with the centre oIoU for
    every model, with the centre mIoU for every model, and the baseline row the table leaves out."""
    expected = {  # model: (MVR centre oIoU, MRD centre oIoU, MVR centre mIoU, MRD centre mIoU)
        "LAVT": (2.20, 4.52, 1.89, 3.87),
        "CMPC": (7.20, 16.75, 6.58, 15.28),
        "CMSA": (7.63, 17.79, 6.67, 15.47),
        "RRN": (8.55, 20.28, 7.58, 17.87),
        "BRINet": (8.91, 21.12, 7.02, 16.43),
        "baseline": (11.78, 29.66, 5.42, 13.23),
        "RMI": (12.08, 30.88, 7.83, 19.23),
    }
    figures = {key: {m: robustness_of(paper_ious(m, key)) for m in PAPER_CORNERS} for key in ("oIoU", "mIoU")}
    for model, values in expected.items():
        found = [figures[key][model][name] for key in ("oIoU", "mIoU") for name in ("MVR", "MRD")]
        assert found == pytest.approx(values, abs=0.005), model
    # With the oIoU throughout, RRN ranks ahead of BRINet (the paper: behind it); with the mIoU
    # throughout the paper's order holds but its own baseline comes second, after LAVT.
    assert robustness_order(figures["oIoU"]) == ["LAVT", "CMPC", "CMSA", "RRN", "BRINet", "baseline", "RMI"]
    assert robustness_order(figures["mIoU"]) == ["LAVT", "baseline", "CMPC", "CMSA", "BRINet", "RRN", "RMI"]


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


def test_mvr_is_valid_only_while_every_view_keeps_1_over_e_of_the_centre():
    at_the_edge = {CENTER: 1.0, (1, 1): 1 / math.e, (9, 9): 1.0}
    below = {CENTER: 1.0, (1, 1): 0.36, (9, 9): 1.0}
    assert mvr_valid(at_the_edge, CENTER) is True and mvr_valid(below, CENTER) is False
    # On the invalid branch a larger drop gives a smaller MVR: Q = 0.2 scores below Q = 0.36.
    assert mvr({**below, (1, 1): 0.2}, CENTER) < mvr(below, CENTER)
    assert mvr_valid({CENTER: 1.0, (1, 1): 1.3}, CENTER) is True  # a better view: negative term, still ordered
    assert mvr_valid({CENTER: 0.0, (1, 1): 0.3}, CENTER) is None


def test_robustness_order_never_puts_a_collapsed_model_ahead_of_a_smaller_drop():
    figures = {
        "collapsed": robustness_of({CENTER: 0.9, **{corner: 0.0 for corner in CORNERS}}),  # MVR 0, MRD 100
        "half": robustness_of({CENTER: 0.9, **{corner: 0.3 for corner in CORNERS}}),  # Q 1/3: invalid, MRD 66.7
        "undefined": robustness_of({CENTER: 0.0, **{corner: 0.3 for corner in CORNERS}}),
        "small drop": robustness_of({CENTER: 0.9, **{corner: 0.8 for corner in CORNERS}}),
        "no drop": robustness_of({CENTER: 0.9, **{corner: 0.9 for corner in CORNERS}}),
    }
    assert figures["collapsed"]["MVR"] == 0.0 < figures["small drop"]["MVR"]
    assert robustness_order(figures) == ["no drop", "small drop", "half", "collapsed", "undefined"]


def test_the_seed_mean_is_the_mean_of_per_seed_mvrs():
    seeds = [
        robustness({CENTER: {"oIoU": 80.0}, (1, 1): {"oIoU": 40.0}}, CENTER),
        robustness({CENTER: {"oIoU": 40.0}, (1, 1): {"oIoU": 40.0}}, CENTER),
    ]
    mean = seed_mean_robustness(seeds)
    assert mean["MVR"] == pytest.approx((seeds[0]["MVR"] + 0.0) / 2)  # not the MVR of the mean IoUs (60, 40)
    assert mean["MVR"] != pytest.approx(mvr({CENTER: 60.0, (1, 1): 40.0}, CENTER))
    assert mean["MRD"] == pytest.approx(25.0) and mean["mvr_valid"] is True and mean["robustness_iou"] == "oIoU"
    collapsed = robustness({CENTER: {"oIoU": 80.0}, (1, 1): {"oIoU": 0.0}}, CENTER)
    assert seed_mean_robustness([*seeds, collapsed])["mvr_valid"] is False
    assert seed_mean_robustness([seeds[0], robustness({CENTER: {"oIoU": 1.0}}, CENTER)])["MVR"] is None
    with pytest.raises(ValueError, match="different IoUs"):
        seed_mean_robustness([seeds[0], robustness({CENTER: {"mIoU": 1.0}, (1, 1): {"mIoU": 1.0}}, CENTER, "mIoU")])


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
    assert by_oiou["MRD"] == pytest.approx(50.0) and by_oiou["mvr_valid"] is True
    by_miou = robustness(per_view, CENTER, "mIoU")
    assert by_miou["MVR"] == 0.0 and by_miou["MRD"] == 0.0
    only_center = robustness({CENTER: per_view[CENTER]}, CENTER)
    assert only_center["MVR"] is None and only_center["MRD"] is None and only_center["mvr_valid"] is None
    with pytest.raises(ValueError):
        robustness(per_view, CENTER, "IoU")


def test_metrics_import_without_torch():
    code = "import sys, clevr_remv.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
