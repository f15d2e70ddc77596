"""Generalized RES metrics (gIoU, cIoU, N-acc, T-acc) on hand-computed cases, `evaluate` and the
trivial floors on a generalized split, and the baseline's no-target area threshold."""

import json

import numpy as np
import pytest

from clevr_remv.dataset.expressions import referents_of, target_mask
from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.metrics import Breakdown, ScoreAccumulator, generalized_summary, robustness
from clevr_remv.res.evaluate import evaluate, prediction_record
from clevr_remv.res.no_target import choose_area_threshold, empty_below


# -- hand-computed cases ----------------------------------------------------------------------------
def test_generalized_summary_by_hand():
    # (I, U, target pixels): a target sample hit at 3/4, a target sample missed by an empty
    # prediction (U = target = 5), a no-target sample answered empty (U = 0) and one answered
    # with 2 stray pixels (U = 2).
    summary = generalized_summary([3, 0, 0, 0], [4, 5, 0, 2], [4, 5, 0, 0])
    assert summary["gIoU"] == pytest.approx(100 * (0.75 + 0 + 1 + 0) / 4)
    assert summary["cIoU"] == pytest.approx(100 * 3 / 11)
    assert summary["N-acc"] == pytest.approx(50.0)
    assert summary["T-acc"] == pytest.approx(50.0)
    assert (summary["no_target_samples"], summary["target_samples"]) == (2, 2)


def test_all_empty_predictions():
    # Every prediction empty: U = target pixels, I = 0.
    summary = generalized_summary([0, 0, 0, 0, 0], [6, 3, 0, 0, 0], [6, 3, 0, 0, 0])
    assert summary["gIoU"] == pytest.approx(60.0)  # the three no-target samples score 100
    assert summary["cIoU"] == 0.0
    assert (summary["N-acc"], summary["T-acc"]) == (100.0, 0.0)


def test_all_no_target_split():
    summary = generalized_summary([0, 0, 0], [0, 7, 0], [0, 0, 0])
    assert summary["gIoU"] == pytest.approx(200 / 3)
    assert summary["cIoU"] == 0.0  # nothing to find: I = 0 (and U = 7 from the stray mask)
    assert summary["N-acc"] == pytest.approx(200 / 3)
    assert summary["T-acc"] is None and summary["target_samples"] == 0
    perfect = generalized_summary([0, 0], [0, 0], [0, 0])
    assert (perfect["gIoU"], perfect["N-acc"], perfect["cIoU"]) == (100.0, 100.0, 0.0)


def test_a_split_without_no_target_samples_has_no_n_acc():
    summary = generalized_summary([2, 4], [4, 4], [4, 4])
    assert summary["N-acc"] is None and summary["T-acc"] == 100.0
    assert summary["gIoU"] == pytest.approx(75.0)


@pytest.mark.parametrize("columns", [([1], [2], [3]), ([3], [4], [2]), ([1, 2], [3], [3])])
def test_inconsistent_counts_are_refused(columns):
    with pytest.raises(ValueError):
        generalized_summary(*columns)


def test_accumulator_adds_the_generalized_figures_only_with_target_counts():
    plain = ScoreAccumulator()
    plain.add((1, 1), 1, 2)
    assert "gIoU" not in plain.overall()
    scores = ScoreAccumulator(["by_target_count"])
    scores.add((1, 1), 1, 2, 2, {"by_target_count": "1"})
    scores.add((2, 2), 0, 0, 0, {"by_target_count": "0"})
    scores.add((2, 2), 0, 3, 0, {"by_target_count": "0"})
    assert scores.overall()["gIoU"] == pytest.approx(100 * (0.5 + 1 + 0) / 3)
    assert scores.per_view()[(2, 2)]["N-acc"] == pytest.approx(50.0)
    by_count = scores.breakdowns()["by_target_count"]
    assert by_count["1"]["gIoU"] == pytest.approx(50.0) and by_count["0"]["samples"] == 2


def test_breakdown_files_each_sample_under_every_grouping():
    breakdown = Breakdown(["family", "distance"])
    breakdown.add({"family": "a", "distance": 0}, 1, 1, 1)
    breakdown.add({"family": "b", "distance": 0}, 0, 1, 0)
    summaries = breakdown.summaries()
    assert summaries["family"]["a"]["gIoU"] == 100.0 and summaries["family"]["b"]["gIoU"] == 0.0
    assert summaries["distance"][0]["gIoU"] == pytest.approx(50.0)


def test_mvr_on_giou():
    per_view = {(2, 2): {"gIoU": 80.0, "cIoU": 60.0}, (1, 1): {"gIoU": 40.0, "cIoU": 60.0}}
    figures = robustness(per_view, (2, 2), "gIoU")
    assert figures["MVR"] == pytest.approx(100 * -0.5 * np.log(0.5) / 2)
    assert robustness(per_view, (2, 2), "cIoU")["MVR"] == pytest.approx(0.0)


# -- the no-target area threshold -----------------------------------------------------------------
def test_area_threshold_maximises_giou_by_hand():
    # (predicted pixels, I, U, target pixels)
    samples = [
        (3, 0, 3, 0),  # no target, 3 stray pixels
        (5, 0, 5, 0),  # no target, 5 stray pixels
        (4, 4, 4, 4),  # perfect small target
        (20, 10, 30, 20),
    ]  # large target, IoU 1/3
    rule = choose_area_threshold(samples)
    # Emptying below 4 wins sample 1 (1.0); below 6 would also win sample 2 but lose the perfect
    # 4-pixel target: 1 + 1 + 0 + 1/3 = 2.33 versus 1 + 0 + 1 + 1/3 = 2.33, a tie: the smaller wins.
    assert rule["pixels"] == 4
    assert rule["val_gIoU"] == pytest.approx(100 * (1 + 0 + 1 + 1 / 3) / 4)
    assert rule["val_gIoU_argmax"] == pytest.approx(100 * (1 / 3 + 1) / 4)
    assert choose_area_threshold([(0, 0, 0, 0), (9, 9, 9, 9)])["pixels"] == 0  # nothing to gain
    assert empty_below(np.ones((2, 2), bool), {"pixels": 5}).sum() == 0
    assert empty_below(np.ones((2, 2), bool), {"pixels": 4}).sum() == 4
    assert empty_below(np.ones((2, 2), bool), None).sum() == 4


# -- evaluate on a generalized split ---------------------------------------------------------------
def write_predictions(store, path, mask_of, split="test"):
    lines = []
    for scene in split_scene_ids(store, split):
        for expression in store.load_refexps(scene)["expressions"]:
            for u, v in expression["views"]:
                mask = mask_of(store.read_index(scene, u, v), expression)
                lines.append(json.dumps(prediction_record(scene, expression["id"], (u, v), mask)))
    path.write_text("\n".join(lines) + "\n")
    return path


def expected_counts(store, views, split="test"):
    """(no-target samples, target samples) of ``split`` at ``views``, from the files."""
    absent = present = 0
    for scene in split_scene_ids(store, split):
        for expression in store.load_refexps(scene)["expressions"]:
            listed = sum(1 for view in expression["views"] if tuple(view) in views)
            if referents_of(expression):
                present += listed
            else:
                absent += listed
    return absent, present


def test_ground_truth_scores_100_everywhere(tiny_generalized_dataset, tmp_path):
    store = DatasetStore(tiny_generalized_dataset)
    path = write_predictions(store, tmp_path / "truth.jsonl", target_mask, split="train")
    results = evaluate(tiny_generalized_dataset, path, split="train", views="all", out=tmp_path / "out", progress=False)
    overall = results["overall"]
    assert (overall["gIoU"], overall["N-acc"], overall["T-acc"], overall["cIoU"]) == (100.0, 100.0, 100.0, 100.0)
    assert set(results["by_target_count"]) == {"0", "1", "2+"}
    assert all(summary["gIoU"] == 100.0 for summary in results["by_family"].values())
    assert set(results["by_distance"]) == {"0", "1", "2"}
    assert results["robustness_generalized"]["gIoU"]["MVR"] == pytest.approx(0.0)
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "## Generalized RES (%)" in markdown and "### By targets" in markdown


def test_all_empty_predictions_and_the_empty_floor_agree(tiny_generalized_dataset, tmp_path):
    store = DatasetStore(tiny_generalized_dataset)
    views = {(u, v) for u in (1, 2, 3) for v in (1, 2, 3)}
    absent, present = expected_counts(store, views, split="train")
    assert absent and present
    path = write_predictions(
        store, tmp_path / "empty.jsonl", lambda index, e: np.zeros(index.shape, bool), split="train"
    )
    results = evaluate(
        tiny_generalized_dataset, path, split="train", views="all", out=tmp_path / "file", progress=False
    )
    overall = results["overall"]
    assert (overall["N-acc"], overall["T-acc"], overall["cIoU"]) == (100.0, 0.0, 0.0)
    assert overall["gIoU"] == pytest.approx(100 * absent / (absent + present))
    assert results["by_target_count"]["0"]["gIoU"] == 100.0 and results["by_target_count"]["2+"]["gIoU"] == 0.0
    floor = evaluate(
        tiny_generalized_dataset, predictor="empty", split="train", views="all", out=tmp_path / "floor", progress=False
    )
    assert floor["overall"] == overall
    assert floor["robustness_generalized"]["gIoU"]["MVR"] == pytest.approx(0.0)


def test_largest_and_attributes_floors_on_a_generalized_split(tiny_generalized_dataset, tmp_path):
    largest = evaluate(
        tiny_generalized_dataset,
        predictor="largest",
        split="train",
        views="all",
        out=tmp_path / "largest",
        progress=False,
    )["overall"]
    assert (largest["N-acc"], largest["T-acc"]) == (0.0, 100.0)
    attributes = evaluate(
        tiny_generalized_dataset,
        predictor="attributes",
        split="train",
        views="all",
        out=tmp_path / "attributes",
        progress=False,
    )
    # A plural noun predicts every visible object with the words: multi-target samples score.
    assert attributes["by_target_count"]["2+"]["gIoU"] > 0
    assert 0 <= attributes["overall"]["N-acc"] <= 100


def test_single_referent_results_keep_their_keys(tiny_dataset, tmp_path):
    results = evaluate(
        tiny_dataset, predictor="largest", split="test", views="corners", out=tmp_path / "out", progress=False
    )
    assert "gIoU" not in results["overall"] and "by_target_count" not in results and "expressions" not in results


# -- the baseline on a generalized split ---------------------------------------------------------------
def test_benchmark_answers_no_target_below_the_val_threshold(tiny_generalized_dataset, tmp_path, one_torch_thread):
    from clevr_remv.dataset.rle import rle_to_mask
    from clevr_remv.res.benchmark import run_benchmark

    out = tmp_path / "bench"
    results = run_benchmark(tiny_generalized_dataset, "baseline", out, epochs=1, batch_size=4, workers=0)
    rule = results["benchmark"]["no_target"]
    assert rule == json.loads((out / "no_target.json").read_text())
    assert rule["val_samples"] == len(ClevrRemvDataset(tiny_generalized_dataset, split="val", views="center"))
    assert rule["val_gIoU"] >= rule["val_gIoU_argmax"]
    for line in (out / "predictions.jsonl").read_text().splitlines():
        pixels = int(rle_to_mask(json.loads(line)["mask"]).sum())
        assert pixels == 0 or pixels >= rule["pixels"]
    for key in ("gIoU", "cIoU", "N-acc", "T-acc"):
        assert key in results["overall"] and key in results["trivial_predictors"]["empty"]["overall"]
    assert results["trivial_predictors"]["empty"]["overall"]["N-acc"] == 100.0
    assert "| all gIoU |" in (out / "results.md").read_text()


def test_no_threshold_on_single_referent_data(tiny_dataset, tmp_path):
    from clevr_remv.res.benchmark import _no_target_rule

    assert _no_target_rule(None, None, DatasetStore(tiny_dataset), {}, None, tmp_path) is None
    assert not (tmp_path / "no_target.json").exists()


def test_an_all_no_target_split_end_to_end(tiny_generalized_dataset, tmp_path):
    import shutil

    root = shutil.copytree(tiny_generalized_dataset, tmp_path / "dataset")
    store = DatasetStore(root)
    kept = 0
    for scene in split_scene_ids(store, "train"):
        document = store.load_refexps(scene)
        document["expressions"] = [e for e in document["expressions"] if not e["referents"]]
        kept += len(document["expressions"])
        store.refexps_path(scene).write_text(json.dumps(document))
    assert kept
    empty = evaluate(root, predictor="empty", split="train", views="all", out=tmp_path / "empty", progress=False)
    assert (empty["overall"]["gIoU"], empty["overall"]["N-acc"], empty["overall"]["cIoU"]) == (100.0, 100.0, 0.0)
    assert empty["overall"]["T-acc"] is None and set(empty["by_target_count"]) == {"0"}
    largest = evaluate(root, predictor="largest", split="train", views="all", out=tmp_path / "largest", progress=False)
    assert (largest["overall"]["gIoU"], largest["overall"]["N-acc"]) == (0.0, 0.0)
    assert largest["robustness_generalized"]["gIoU"]["MVR"] is None or np.isnan(
        largest["robustness_generalized"]["gIoU"]["MVR"]
    )
