"""`stats` on a dataset whose expressions and splits are written by hand, numbers checked by hand."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.dataset.stats import dataset_stats
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.errors import ClevrRemvError

ALL_VIEWS = [[u, v] for v in (1, 2, 3) for u in (1, 2, 3)]
HAND_WRITTEN = {  # scene -> (text, family template, referent, views)
    0: [
        ("The red cube.", "zero_hop.json", 1, ALL_VIEWS),
        ("The small thing left of the big ball.", "one_hop.json", 2, [[2, 2]]),
    ],
    1: [("The big sphere.", "zero_hop.json", 1, [[1, 1], [2, 2]])],
    2: [("The cyan metal cylinder.", "zero_hop.json", 1, ALL_VIEWS)],
}


@pytest.fixture
def hand_checked(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    for scene, expressions in HAND_WRITTEN.items():
        write_json_atomic(
            store.refexps_path(scene),
            {
                "format_version": 1,
                "scene": scene,
                "expressions": [
                    {
                        "id": i,
                        "text": text,
                        "family": {"template": template, "index": 0},
                        "program": [{"type": "scene", "inputs": []}],
                        "referent": referent,
                        "views": views,
                    }
                    for i, (text, template, referent, views) in enumerate(expressions)
                ],
            },
            "refexps",
        )
    write_json_atomic(
        store.splits_path,
        {
            "format_version": 1,
            "seed": 0,
            "ratios": [0.5, 0.5, 0.0],
            "splits": {"train": [0, 1], "val": [2], "test": []},
        },
        "splits",
    )
    return store


def objects_in(store, scene):
    return json.loads(store.scene_json_path(scene).read_text())["objects"]


def test_split_numbers_match_hand_counts(hand_checked):
    stats = dataset_stats(hand_checked.root)["splits"]
    train, val, test = stats["train"], stats["val"], stats["test"]
    n0, n1 = len(objects_in(hand_checked, 0)), len(objects_in(hand_checked, 1))
    assert (train["scenes"], train["views_per_scene"], train["pairs"], train["pairs_per_scene"]) == (2, 9, 3, 1.5)
    assert train["samples"] == 9 + 1 + 2
    assert train["mean_words_per_expression"] == pytest.approx((3 + 8 + 3) / 3)
    assert train["words_per_expression_histogram"] == {"3": 2, "8": 1}
    assert train["families"] == {"one_hop": 1, "zero_hop": 2}
    assert train["mean_objects_per_image"] == pytest.approx((n0 + n1) / 2)
    assert train["mean_objects_per_pair"] == pytest.approx((2 * n0 + n1) / 3)
    assert (val["pairs"], val["samples"], val["mean_words_per_expression"]) == (1, 9, 4)
    assert (test["scenes"], test["pairs"], test["mean_words_per_expression"]) == (0, 0, None)


def test_visible_area_by_view_uses_each_referents_pixels(hand_checked):
    train = dataset_stats(hand_checked.root)["splits"]["train"]
    s0, s1 = objects_in(hand_checked, 0), objects_in(hand_checked, 1)
    referent_views = [s0[0]["views"], s0[1]["views"], s1[0]["views"]]
    # view (u=3, v=1) is the third view of scene.json's v-major list; the centre (2, 2) the fifth
    corner = [views[2]["pixels"] for views in referent_views]
    center = [views[4]["pixels"] for views in referent_views]
    assert train["referent_pixels_by_view"][0][2] == pytest.approx(sum(corner) / 3)
    assert all(center)
    assert train["area_vs_center_by_view"][0][2] == pytest.approx(
        sum(c / m for c, m in zip(corner, center, strict=True)) / 3
    )
    assert train["area_vs_center_by_view"][1][1] == pytest.approx(1.0)
    assert sum(train["area_vs_center_histogram"]["counts"]) == 3 * 9


def test_cli_prints_table_and_writes_json_and_plots(hand_checked, tmp_path):
    out = tmp_path / "stats"
    result = CliRunner().invoke(main, ["stats", "--data", str(hand_checked.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "pairs per scene" in result.output and "1.50" in result.output
    assert "family one_hop %" in result.output
    assert json.loads((out / "stats.json").read_text())["splits"]["val"]["pairs"] == 1
    for name in ("pairs_train.png", "pairs_val.png", "pairs_test.png", "visible_area.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 300


def test_out_is_the_datasets_stats_folder_or_outside_the_dataset(tiny_dataset_copy, tmp_path):
    runner = CliRunner()
    data = ["stats", "--data", str(tiny_dataset_copy)]
    for _ in range(2):  # the default folder, then again into the same folder
        result = runner.invoke(main, data)
        assert result.exit_code == 0, result.output
    assert (tiny_dataset_copy / "stats" / "stats.json").is_file()
    for out in (
        tiny_dataset_copy,
        tiny_dataset_copy / "scenes",
        tiny_dataset_copy / "scenes" / "000001",
        tmp_path,
        tiny_dataset_copy / "stats" / ".." / "scenes",
    ):
        result = runner.invoke(main, data + ["--out", str(out)])
        assert result.exit_code == 2 and "--data" in result.output, (out, result.output)
    assert not (tiny_dataset_copy / "stats.json").exists()
    assert not (tiny_dataset_copy / "scenes" / "000001" / "stats.json").exists()


def test_a_folder_of_other_files_is_refused(tiny_dataset, tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n")
    result = CliRunner().invoke(main, ["stats", "--data", str(tiny_dataset), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "did not write (notes.csv)" in result.output
    assert [path.name for path in tmp_path.iterdir()] == ["notes.csv"]


def test_unsplit_dataset_reports_all_scenes(tiny_dataset_copy):
    DatasetStore(tiny_dataset_copy).splits_path.unlink()
    stats = dataset_stats(tiny_dataset_copy)["splits"]
    assert list(stats) == ["all"] and stats["all"]["scenes"] == 6


def test_expression_pointing_past_the_objects_is_reported(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    refexps = store.load_refexps(0)
    refexps["expressions"][0]["referent"] = 99
    write_json_atomic(store.refexps_path(0), refexps, "refexps")
    with pytest.raises(ClevrRemvError, match="000000: scene.json and refexps.json do not fit"):
        dataset_stats(tiny_dataset_copy)
