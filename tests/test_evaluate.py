"""evaluate: fabricated predictions in both formats, reports, bad input."""

import json

import numpy as np
import pytest
from builders import break_png
from click.testing import CliRunner
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import view_name
from clevr_remv.metrics import robustness, robustness_order
from clevr_remv.res.evaluate import evaluate, prediction_record
from clevr_remv.view.scores import ViewerPredictions

CORNER = (1, 1)


def dataset_samples(root, split="test", views=None):
    """[(scene, expression, (u, v), ground-truth mask)] of a split, read straight from the files."""
    store = DatasetStore(root)
    samples = []
    for scene in split_scene_ids(store, split):
        for expression in store.load_refexps(scene)["expressions"]:
            for view in map(tuple, expression["views"]):
                if views is None or view in views:
                    mask = store.read_index(scene, *view) == expression["referent"]
                    samples.append((scene, expression["id"], view, mask))
    return samples


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def write_png_masks(folder, samples):
    for scene, expression, (u, v), mask in samples:
        path = folder / f"{scene:06d}" / str(expression) / f"{view_name(u, v)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return folder


def fabricated(root, corner_empty=True):
    """Predictions equal to the ground truth, except an empty mask at the (1, 1) corner."""
    return [
        (scene, expression, view, np.zeros_like(mask) if corner_empty and view == CORNER else mask)
        for scene, expression, view, mask in dataset_samples(root)
    ]


def test_perfect_predictions_score_100(tiny_dataset, tmp_path):
    records = [prediction_record(s, e, view, mask) for s, e, view, mask in fabricated(tiny_dataset, False)]
    results = evaluate(
        tiny_dataset, write_jsonl(tmp_path / "p.jsonl", records), views="all", out=tmp_path / "out", progress=False
    )
    assert results["missing_predictions"] == 0
    assert results["unused_predictions"] == 0
    assert results["samples"] == len(records)
    for key in ("P@0.5", "P@0.9", "mIoU", "oIoU"):
        assert results["overall"][key] == pytest.approx(100.0)
    assert results["MVR"] == pytest.approx(0.0) and results["MRD"] == pytest.approx(0.0)
    assert len(results["per_view"]) == 9
    assert results["resolution"] == [48, 32]


def test_failed_corner_shows_the_mvr_flaw_and_the_mrd(tiny_dataset, tmp_path):
    records = [prediction_record(s, e, view, mask) for s, e, view, mask in fabricated(tiny_dataset)]
    results = evaluate(
        tiny_dataset, write_jsonl(tmp_path / "p.jsonl", records), views="corners", out=tmp_path / "out", progress=False
    )
    assert set(results["per_view"]) == {"u2_v2", "u1_v1", "u3_v1", "u1_v3", "u3_v3"}
    corner = results["per_view"]["u1_v1"]
    assert corner["oIoU"] == 0.0 and corner["P@0.5"] == 0.0 and corner["distance"] == 2
    assert results["center"]["oIoU"] == pytest.approx(100.0)
    # Q = 0 at one corner and 1 at three: -Q ln Q is 0 everywhere, MRD = 1/4 of the drop.
    assert results["MVR"] == pytest.approx(0.0)
    assert results["MRD"] == pytest.approx(25.0)
    assert results["robustness_iou"] == "oIoU"
    corner_samples = corner["samples"]
    assert results["overall"]["P@0.5"] == pytest.approx(
        100.0 * (results["samples"] - corner_samples) / results["samples"]
    )


def test_a_model_that_collapses_off_the_centre_is_marked_and_ranked_behind_a_smaller_drop(tiny_dataset, tmp_path):
    # Perfect at the centre, empty everywhere else: Q = 0 at every shifted view, so MVR is 0 (as for
    # a perfect model) while MRD is 100.
    center = DatasetStore(tiny_dataset).center
    records = [
        prediction_record(s, e, view, mask if view == center else np.zeros_like(mask))
        for s, e, view, mask in dataset_samples(tiny_dataset)
    ]
    out = tmp_path / "out"
    collapsed = evaluate(tiny_dataset, write_jsonl(tmp_path / "p.jsonl", records), views="all", out=out, progress=False)
    assert collapsed["MVR"] == pytest.approx(0.0) and collapsed["MRD"] == pytest.approx(100.0)
    assert collapsed["mvr_valid"] is False
    assert json.loads((out / "results.json").read_text())["mvr_valid"] is False
    markdown = (out / "results.md").read_text()
    assert "| 0.00 (not comparable) | 100.00 | oIoU |" in markdown and "compare such a model by MRD" in markdown
    # A model that loses 10 % of its centre IoU in every shifted view has a larger MVR but ranks first.
    small_drop = robustness({view: {"oIoU": 90.0 if view != center else 100.0} for view in [(1, 1), center]}, center)
    assert small_drop["mvr_valid"] is True and small_drop["MVR"] > collapsed["MVR"]
    assert robustness_order({"collapsed": collapsed, "small drop": small_drop}) == ["small drop", "collapsed"]
    perfect = [prediction_record(s, e, view, mask) for s, e, view, mask in dataset_samples(tiny_dataset)]
    results = evaluate(
        tiny_dataset, write_jsonl(tmp_path / "q.jsonl", perfect), views="all", out=tmp_path / "perfect", progress=False
    )
    assert results["mvr_valid"] is True and "not comparable" not in (tmp_path / "perfect" / "results.md").read_text()


def test_png_folder_and_jsonl_agree(tiny_dataset, tmp_path):
    samples = fabricated(tiny_dataset)
    folder = write_png_masks(tmp_path / "masks", samples)
    from_png = evaluate(tiny_dataset, folder, views="corners", out=tmp_path / "a", progress=False)
    records = [prediction_record(s, e, view, mask) for s, e, view, mask in samples]
    from_jsonl = evaluate(
        tiny_dataset, write_jsonl(tmp_path / "p.jsonl", records), views="corners", out=tmp_path / "b", progress=False
    )
    for key in ("overall", "per_view", "MVR", "MRD", "samples"):
        assert from_png[key] == from_jsonl[key]
    assert from_png["unused_predictions"] == from_jsonl["unused_predictions"] > 0  # the non-corner views


def test_missing_and_unused_predictions_are_reported(tiny_dataset, tmp_path):
    samples = fabricated(tiny_dataset, corner_empty=False)
    dropped = samples[0]
    records = [prediction_record(s, e, view, mask) for s, e, view, mask in samples[1:]]
    records.append(prediction_record(999, 0, (2, 2), dropped[3]))  # matches no sample
    results = evaluate(
        tiny_dataset, write_jsonl(tmp_path / "p.jsonl", records), views="all", out=tmp_path / "out", progress=False
    )
    assert results["missing_predictions"] == 1
    assert results["missing_examples"] == [{"scene": dropped[0], "expression_id": dropped[1], "view": list(dropped[2])}]
    assert results["unused_predictions"] == 1
    # The missing one scores as an empty mask: IoU 0 for one sample.
    assert results["overall"]["mIoU"] == pytest.approx(100.0 * (len(samples) - 1) / len(samples))
    assert "1 missing prediction (scored as empty masks)" in (tmp_path / "out" / "results.md").read_text()


def test_uncompressed_rle_is_accepted(tiny_dataset, tmp_path):
    samples = fabricated(tiny_dataset, corner_empty=False)
    records = []
    for scene, expression, view, mask in samples:
        column_major = mask.flatten(order="F")
        changes = np.flatnonzero(np.diff(column_major.astype(np.int8))) + 1
        runs = np.diff(np.concatenate([[0], changes, [column_major.size]])).tolist()
        if column_major[0]:
            runs = [0] + runs
        records.append(
            {
                "scene": scene,
                "expression_id": expression,
                "view": list(view),
                "mask": {"size": list(mask.shape), "counts": runs},
            }
        )
    results = evaluate(
        tiny_dataset, write_jsonl(tmp_path / "p.jsonl", records), views="all", out=tmp_path / "out", progress=False
    )
    assert results["overall"]["oIoU"] == pytest.approx(100.0)


def test_reports_are_written(tiny_dataset, tmp_path):
    records = [prediction_record(s, e, view, mask) for s, e, view, mask in fabricated(tiny_dataset)]
    out = tmp_path / "out"
    evaluate(tiny_dataset, write_jsonl(tmp_path / "p.jsonl", records), views="corners", out=out, progress=False)
    document = json.loads((out / "results.json").read_text())
    for key in ("P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9", "mIoU", "oIoU"):
        assert key in document["overall"] and key in document["per_view"]["u1_v1"]
    assert "MVR" in document and "MRD" in document
    markdown = (out / "results.md").read_text()
    assert "| P@0.5 | P@0.6 | P@0.7 | P@0.8 | P@0.9 | mIoU | oIoU |" in markdown
    assert "| u1_v1 (I11) | u3_v1 (I31) | u1_v3 (I13) | u3_v3 (I33) | Average | SD |" in markdown
    assert "MVR" in markdown and "MRD" in markdown
    with Image.open(out / "iou_heatmap.png") as image:
        assert image.format == "PNG" and image.width > 100
        assert image.width > 1.5 * image.height  # the IoU per view and its change from the centre, side by side


def test_zero_centre_iou_gives_null_mvr(tiny_dataset, tmp_path):
    records = [prediction_record(s, e, view, np.zeros_like(mask)) for s, e, view, mask in fabricated(tiny_dataset)]
    out = tmp_path / "out"
    results = evaluate(tiny_dataset, write_jsonl(tmp_path / "p.jsonl", records), out=out, progress=False)
    assert np.isnan(results["MVR"]) and results["mvr_valid"] is None
    assert json.loads((out / "results.json").read_text())["MVR"] is None  # strict JSON, no NaN


def test_center_only_has_no_robustness_figures(tiny_dataset, tmp_path):
    records = [prediction_record(s, e, view, mask) for s, e, view, mask in fabricated(tiny_dataset)]
    results = evaluate(
        tiny_dataset, write_jsonl(tmp_path / "p.jsonl", records), views="center", out=tmp_path / "out", progress=False
    )
    assert list(results["per_view"]) == ["u2_v2"]
    assert results["MVR"] is None and results["MRD"] is None and results["mvr_valid"] is None


def test_mvr_from_miou_on_request(tiny_dataset, tmp_path):
    records = [prediction_record(s, e, view, mask) for s, e, view, mask in fabricated(tiny_dataset)]
    results = evaluate(
        tiny_dataset,
        write_jsonl(tmp_path / "p.jsonl", records),
        out=tmp_path / "out",
        robustness_iou="mIoU",
        progress=False,
    )
    assert results["robustness_iou"] == "mIoU"


@pytest.mark.parametrize(
    "line,message",
    [
        ("{not json", "not valid JSON"),
        ('{"scene": 0, "expression_id": 0, "mask": {"size": [32, 48], "counts": ""}}', "view"),
        ('{"scene": 0, "expression_id": 0, "view": [1, 1, 1], "mask": {"size": [32, 48], "counts": ""}}', "view"),
        ('{"scene": -1, "expression_id": 0, "view": [1, 1], "mask": {"size": [32, 48], "counts": ""}}', "scene"),
    ],
)
def test_malformed_jsonl_lines_name_the_line(tiny_dataset, tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text("\n" + line + "\n")
    with pytest.raises(ClevrRemvError, match=rf"p\.jsonl:2: .*{message}"):
        evaluate(tiny_dataset, path, out=tmp_path / "out", progress=False)


def test_duplicate_and_wrong_size_predictions(tiny_dataset, tmp_path):
    scene, expression, view, mask = fabricated(tiny_dataset)[0]
    record = prediction_record(scene, expression, view, mask)
    with pytest.raises(ClevrRemvError, match="second prediction"):
        evaluate(tiny_dataset, write_jsonl(tmp_path / "d.jsonl", [record, record]), out=tmp_path / "o", progress=False)
    small = prediction_record(scene, expression, view, np.zeros((16, 24), bool))
    with pytest.raises(ClevrRemvError, match="native resolution"):
        evaluate(tiny_dataset, write_jsonl(tmp_path / "s.jsonl", [small]), out=tmp_path / "o", progress=False)


def test_bad_arguments(tiny_dataset, tmp_path):
    with pytest.raises(ClevrRemvError, match="--predictions"):
        evaluate(tiny_dataset, tmp_path / "nothing.jsonl", out=tmp_path / "o", progress=False)
    path = write_jsonl(tmp_path / "p.jsonl", [])
    with pytest.raises(ClevrRemvError, match="--views"):
        evaluate(tiny_dataset, path, views="edges", out=tmp_path / "o", progress=False)
    with pytest.raises(ClevrRemvError, match="no split named"):
        evaluate(tiny_dataset, path, split="dev", out=tmp_path / "o", progress=False)
    with pytest.raises(ClevrRemvError, match="--mvr-iou"):
        evaluate(tiny_dataset, path, robustness_iou="IoU", out=tmp_path / "o", progress=False)


def test_dataset_without_split_file(tiny_dataset_copy, tmp_path):
    (tiny_dataset_copy / "splits.json").unlink()
    with pytest.raises(ClevrRemvError, match="no split file"):
        evaluate(tiny_dataset_copy, write_jsonl(tmp_path / "p.jsonl", []), out=tmp_path / "o", progress=False)


def test_cli(tiny_dataset, tmp_path):
    records = [prediction_record(s, e, view, mask) for s, e, view, mask in fabricated(tiny_dataset)]
    predictions = write_jsonl(tmp_path / "p.jsonl", records)
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "evaluate",
            "--data",
            str(tiny_dataset),
            "--predictions",
            str(predictions),
            "--views",
            "corners",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "MVR 0.00 % (not comparable: a view below 1/e of the centre IoU)  MRD 25.00 %" in result.output
    assert (tmp_path / "out" / "results.json").is_file()
    bad = runner.invoke(main, ["evaluate", "--data", str(tmp_path), "--predictions", str(predictions)])
    assert bad.exit_code == 2
    assert "dataset.json" in bad.output


@pytest.mark.parametrize("kind", ["empty file", "blank lines", "empty folder", "unknown scenes", "other views"])
def test_predictions_that_match_nothing_are_refused(tiny_dataset, tmp_path, kind):
    samples = fabricated(tiny_dataset, corner_empty=False)
    found = "it holds no prediction"
    if kind == "empty file":
        predictions = write_jsonl(tmp_path / "p.jsonl", [])
    elif kind == "blank lines":
        predictions = tmp_path / "p.jsonl"
        predictions.write_text("\n  \n\n")
    elif kind == "empty folder":
        predictions = tmp_path / "masks"
        predictions.mkdir()
    elif kind == "unknown scenes":
        predictions = write_png_masks(tmp_path / "masks", [(s + 1000, e, view, m) for s, e, view, m in samples])
        found = f"it holds {len(samples)} predictions for other samples, e.g. scene 1"
    else:
        records = [prediction_record(s, e, view, m) for s, e, view, m in samples if view != (2, 2)]
        predictions = write_jsonl(tmp_path / "p.jsonl", records)
        found = "it holds \\d+ predictions for other samples"
    with pytest.raises(
        ClevrRemvError,
        match=f"--predictions {predictions}: no prediction matches any of the "
        f"\\d+ samples of split 'test' at the center views \\({found}",
    ):
        evaluate(tiny_dataset, predictions, views="center", out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_unmatched_predictions_are_counted_and_shown(tiny_dataset, tmp_path):
    samples = fabricated(tiny_dataset, corner_empty=False)
    extra = (999, 0, (2, 2), samples[0][3])
    folder = write_png_masks(tmp_path / "masks", samples + [extra])
    (folder / "README.txt").write_text("not a prediction")
    assert evaluate(tiny_dataset, folder, views="all", out=tmp_path / "a", progress=False)["unused_predictions"] == 1
    records = [prediction_record(s, e, view, m) for s, e, view, m in samples[1:] + [extra]]
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--data",
            str(tiny_dataset),
            "--predictions",
            str(write_jsonl(tmp_path / "p.jsonl", records)),
            "--views",
            "all",
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "1 prediction matched no sample of split 'test' at the all views, e.g. scene 999, expression 0, view u2_v2"
    ) in result.output
    assert "1 sample had no prediction (scored as empty)" in result.output  # once "1 samples"
    assert json.loads((tmp_path / "b" / "results.json").read_text())["unused_examples"] == [
        {"scene": 999, "expression_id": 0, "view": [2, 2]}
    ]


@pytest.mark.parametrize("how", ["truncate", "text"])
def test_unreadable_images_are_clear_errors(tiny_dataset_copy, tmp_path, how):
    samples = fabricated(tiny_dataset_copy, corner_empty=False)
    scene, expression, (u, v), _ = samples[0]
    folder = write_png_masks(tmp_path / "masks", samples)
    broken = folder / f"{scene:06d}" / str(expression) / f"{view_name(u, v)}.png"
    break_png(broken, how)
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "evaluate",
            "--data",
            str(tiny_dataset_copy),
            "--predictions",
            str(folder),
            "--views",
            "all",
            "--out",
            str(tmp_path / "a"),
        ],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Error: {broken}: cannot be read as an image (" in result.output
    assert "write masks as 8-bit PNG" in result.output
    index = DatasetStore(tiny_dataset_copy).index_path(scene, u, v)
    break_png(index, how)
    result = runner.invoke(
        main,
        [
            "evaluate",
            "--data",
            str(tiny_dataset_copy),
            "--predictions",
            str(folder),
            "--views",
            "all",
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert result.exit_code == 2 and f"Error: {index}: cannot be read as an image (" in result.output
    assert "rerun `clevr-remv generate`" in result.output


def test_a_file_that_is_not_utf8_is_a_clear_error(tiny_dataset, tmp_path):
    scene, expression, view, mask = fabricated(tiny_dataset)[0]
    line = json.dumps(prediction_record(scene, expression, view, mask)).encode()
    path = tmp_path / "p.jsonl"
    path.write_bytes(line + b"\n" + b'{"scene": "\xff\xfe"}\n')
    with pytest.raises(ClevrRemvError, match=r"p\.jsonl:2: not UTF-8 text .*UTF-8 JSON Lines"):
        evaluate(tiny_dataset, path, out=tmp_path / "out", progress=False)


def test_a_png_file_as_predictions_points_at_the_folder_form(tiny_dataset, tmp_path):
    path = tmp_path / "mask.png"
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(path)
    result = CliRunner().invoke(
        main, ["evaluate", "--data", str(tiny_dataset), "--predictions", str(path), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"--predictions {path}: is a PNG image" in result.output and "folder" in result.output


def test_a_refexps_file_that_is_not_utf8_is_a_clear_error(tiny_dataset_copy, tmp_path):
    store = DatasetStore(tiny_dataset_copy)
    scene = split_scene_ids(store, "test")[0]
    store.refexps_path(scene).write_bytes(b'{"scene": "\xe9t\xe9"}')
    result = CliRunner().invoke(
        main, ["evaluate", "--data", str(tiny_dataset_copy), "--predictor", "empty", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{store.refexps_path(scene)}: not UTF-8 text" in result.output


def test_an_rle_claiming_a_huge_size_is_refused_before_decoding(tiny_dataset, tmp_path, monkeypatch):
    scene, expression, view, _ = fabricated(tiny_dataset)[0]
    huge = {
        "scene": scene,
        "expression_id": expression,
        "view": list(view),
        "mask": {"size": [60000, 60000], "counts": "0"},
    }
    monkeypatch.setattr("clevr_remv.res.evaluate.rle_to_mask", lambda rle: pytest.fail("decoded the RLE"))
    with pytest.raises(ClevrRemvError, match="mask size is 60000x60000 .* views are 48x32"):
        evaluate(tiny_dataset, write_jsonl(tmp_path / "p.jsonl", [huge]), out=tmp_path / "out", progress=False)


@pytest.mark.parametrize("counts", [[0, 48 * 32 + 1], [100, -4, 48 * 32 - 96], [10]])
def test_uncompressed_counts_must_cover_the_view_exactly(tiny_dataset, tmp_path, counts):
    scene, expression, view, _ = fabricated(tiny_dataset)[0]
    record = {
        "scene": scene,
        "expression_id": expression,
        "view": list(view),
        "mask": {"size": [32, 48], "counts": counts},
    }
    with pytest.raises(ClevrRemvError, match="p.jsonl:1: .*uncompressed RLE counts add up to"):
        evaluate(tiny_dataset, write_jsonl(tmp_path / "p.jsonl", [record]), out=tmp_path / "out", progress=False)


@pytest.mark.parametrize("counts", [":5", "", "0", "o", "1\x00"])
def test_compressed_counts_must_cover_the_view_exactly(tiny_dataset, tmp_path, counts):
    """pycocotools decodes counts that cover less than H x W from uninitialised memory: the
    scores of `evaluate` and the viewer changed from run to run."""
    samples = fabricated(tiny_dataset)
    good = prediction_record(*samples[1])
    scene, expression, view, _ = samples[0]
    record = {
        "scene": scene,
        "expression_id": expression,
        "view": list(view),
        "mask": {"size": [32, 48], "counts": counts},
    }
    predictions = write_jsonl(tmp_path / "p.jsonl", [good, record])
    with pytest.raises(ClevrRemvError, match=f"p.jsonl:2: scene {scene}, .*: the RLE cannot be decoded .*pycocotools"):
        evaluate(tiny_dataset, predictions, views="all", out=tmp_path / "out", progress=False)
    viewer = ViewerPredictions(predictions)
    with pytest.raises(ClevrRemvError, match="p.jsonl:2: .*compressed RLE"):
        viewer.mask(scene, expression, view, (32, 48))


def test_out_may_not_touch_the_dataset_or_another_commands_folder(tiny_dataset_copy, tmp_path):
    runner = CliRunner()
    arguments = ["evaluate", "--data", str(tiny_dataset_copy), "--predictor", "empty"]
    before = sorted(p.relative_to(tiny_dataset_copy) for p in tiny_dataset_copy.rglob("*"))
    for out in (tiny_dataset_copy, tiny_dataset_copy / "scenes" / "000001", tmp_path):
        result = runner.invoke(main, arguments + ["--out", str(out)])
        assert result.exit_code == 2 and "--data" in result.output, (out, result.output)
    assert sorted(p.relative_to(tiny_dataset_copy) for p in tiny_dataset_copy.rglob("*")) == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.txt").write_text("mine")
    result = runner.invoke(main, arguments + ["--out", str(notes)])
    assert result.exit_code == 2 and "`clevr-remv evaluate` did not write (plan.txt)" in result.output
    assert [path.name for path in notes.iterdir()] == ["plan.txt"]
    for _ in range(2):  # its own folder is written again
        result = runner.invoke(main, arguments + ["--out", str(tmp_path / "eval")])
        assert result.exit_code == 0, result.output
