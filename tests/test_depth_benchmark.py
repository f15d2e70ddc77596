"""`clevr-remv evaluate-depth`: the 4D Light Field Benchmark's metrics on hand-made arrays, regions,
PFM files, the plane sweep on a synthetic light field, and the command with its refusals."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.pfm import read_pfm, write_pfm
from clevr_remv.depth_bench.estimators import plane_sweep, sweep_hypotheses
from clevr_remv.depth_bench.metrics import METRICS, badpix, border_pixels, evaluation_mask, mse_x100, q25_x100, score
from clevr_remv.depth_bench.regions import REGIONS, band_radius, dilate, occlusion_edges, region_masks
from clevr_remv.errors import ClevrRemvError

SCENES = ("clevr_remv_000000", "clevr_remv_000001")


# --- metrics ---------------------------------------------------------------------------------


def _hand_made():
    """A 6x6 zero truth; inside the 1-pixel border 16 errors: four each of 0, 0.02, 0.05, 0.1;
    the border holds errors of 99 that must not count."""
    truth = np.zeros((6, 6))
    estimate = np.full((6, 6), 99.0)
    estimate[1:5, 1:5] = np.repeat([0.0, 0.02, 0.05, 0.1], 4).reshape(4, 4)
    return estimate, truth, evaluation_mask((6, 6), 1)


def test_every_metric_on_hand_made_arrays():
    estimate, truth, mask = _hand_made()
    assert mask.sum() == 16 and not mask[0].any() and not mask[:, -1].any()
    assert badpix(estimate, truth, mask, 0.07) == pytest.approx(25.0)  # only the 0.1 errors
    assert badpix(estimate, truth, mask, 0.03) == pytest.approx(50.0)
    assert badpix(estimate, truth, mask, 0.01) == pytest.approx(75.0)
    assert mse_x100(estimate, truth, mask) == pytest.approx(100 * 4 * (0.02**2 + 0.05**2 + 0.1**2) / 16)
    assert q25_x100(estimate, truth, mask) == pytest.approx(2.0)  # sorted errors [4] = 0.02
    assert list(score(estimate, truth, mask)) == list(METRICS)
    assert METRICS == ("badpix_0.07", "badpix_0.03", "badpix_0.01", "mse_x100", "q25_x100")


def test_badpix_is_strict_and_sign_blind():
    truth = np.zeros((1, 4))
    estimate = np.array([[0.07, -0.07, 0.0700001, -0.5]])
    assert badpix(estimate, truth, np.ones((1, 4), bool), 0.07) == pytest.approx(50.0)


def test_q25_is_the_toolkits_order_statistic_not_an_interpolated_percentile():
    truth = np.zeros((1, 4))
    estimate = np.array([[4.0, 1.0, 3.0, 2.0]])
    # the element at floor(4 * 25 / 100) = 1 of [1, 2, 3, 4]; numpy's percentile would give 1.75
    assert q25_x100(estimate, truth, np.ones((1, 4), bool)) == pytest.approx(200.0)


def test_non_finite_pixels_leave_every_metric():
    estimate, truth, mask = _hand_made()
    estimate[1, 1:5] = [np.nan, np.inf, -np.inf, np.nan]  # the four 0-error pixels
    assert badpix(estimate, truth, mask, 0.07) == pytest.approx(100 * 4 / 12)
    assert mse_x100(estimate, truth, mask) == pytest.approx(100 * 4 * (0.02**2 + 0.05**2 + 0.1**2) / 12)
    assert q25_x100(estimate, truth, mask) == pytest.approx(2.0)  # sorted[3] of 12 errors
    assert np.isnan(badpix(estimate, truth, np.zeros_like(mask), 0.07))


def test_the_border_scales_with_the_longer_side():
    assert border_pixels(512, 512) == 15
    assert border_pixels(480, 320) == 14
    assert border_pixels(160, 112) == 4
    assert evaluation_mask((112, 160), 4).sum() == (112 - 8) * (160 - 8)


# --- regions ---------------------------------------------------------------------------------


def test_occlusion_edges_need_a_label_change_and_a_disparity_jump():
    index = np.zeros((6, 8), np.uint8)
    truth = np.full((6, 8), 1.0)
    index[1:3, 1:3] = 1
    truth[1:3, 1:3] = 2.0  # object 1 stands in front of the floor
    index[3:5, 5:7] = 2  # object 2 at the floor's disparity: no occlusion
    edges = occlusion_edges(index, truth)
    assert edges[1:3, 1:3].all()  # its whole 2x2 silhouette
    assert edges[0, 1] and edges[1, 0] and edges[3, 2] and edges[2, 3]  # and the floor beside it
    assert not edges[0, 0]  # diagonal neighbours do not touch
    assert not edges[3:5, 4:8].any()
    assert edges.sum() == 4 + 8


def test_regions_split_objects_by_material_and_leave_the_sky_out_of_the_floor():
    index = np.array([[0, 0, 1, 2]], np.uint8)
    depth = np.array([[np.inf, 5.0, 4.0, 4.0]])
    scene = {"objects": [{"material": "rubber"}, {"material": "metal"}]}
    masks = region_masks(index, depth, np.array([[0.0, 1.0, 1.0, 1.0]]), scene)
    assert list(masks) == list(REGIONS)
    assert masks["objects"].tolist() == [[False, False, True, True]]
    assert masks["metal"].tolist() == [[False, False, False, True]]
    assert masks["floor"].tolist() == [[False, True, False, False]]
    assert not masks["occlusion"].any()  # no disparity jump anywhere


def test_dilate_grows_a_square_and_the_band_scales():
    mask = np.zeros((7, 7), bool)
    mask[3, 3] = True
    assert dilate(mask, 2).sum() == 25 and dilate(mask, 2)[1:6, 1:6].all()
    assert (band_radius(512, 512), band_radius(480, 320), band_radius(160, 112)) == (3, 3, 1)


# --- PFM -------------------------------------------------------------------------------------


def test_pfm_round_trip_and_big_endian(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    write_pfm(tmp_path / "a.pfm", image)
    assert np.array_equal(read_pfm(tmp_path / "a.pfm"), image)
    # another writer's big-endian file, width and height on one line, bottom row first
    (tmp_path / "b.pfm").write_bytes(b"Pf 4 3 1.0\n" + image[::-1].astype(">f4").tobytes())
    assert np.array_equal(read_pfm(tmp_path / "b.pfm"), image)


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"P5\n4 3\n255\n" + bytes(12), "not a PFM"),
        (b"PF\n4 3\n-1\n" + bytes(4 * 36), "three-channel"),
        (b"Pf\n4 3\n-1\n" + bytes(40), "48 bytes"),
    ],
)
def test_broken_pfm_files_are_named(tmp_path, raw, words):
    (tmp_path / "x.pfm").write_bytes(raw)
    with pytest.raises(ClevrRemvError, match=words) as error:
        read_pfm(tmp_path / "x.pfm")
    assert "x.pfm" in str(error.value)


# --- the plane sweep -------------------------------------------------------------------------


def _texture(x, y):
    """A smooth, richly textured RGB function of continuous coordinates."""
    rng = np.random.default_rng(3)
    channels = []
    for _ in range(3):
        value = 0.5
        for fx, fy, phase in rng.uniform((-0.9, -0.9, 0.0), (0.9, 0.9, 6.3), (6, 3)):
            value = value + 0.08 * np.sin(fx * x + fy * y + phase)
        channels.append(value)
    return np.stack(channels, axis=-1).astype(np.float32)


def _light_field(offset, slope, grid=5, shape=(32, 40)):
    """Views of a textured plane whose centre-view disparity is offset + slope * y: the centre
    pixel (x, y) appears at (x + (uc - u) d, y + (vc - v) d) in view (u, v), inverted here exactly."""
    centre = (grid + 1) // 2
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    views = {}
    for v in range(1, grid + 1):
        for u in range(1, grid + 1):
            y = (rows - (centre - v) * offset) / (1 + (centre - v) * slope)
            x = columns - (centre - u) * (offset + slope * y)
            views[u, v] = _texture(x, y)
    return views, (centre, centre), offset + slope * rows


@pytest.mark.parametrize("offset, slope, tolerance", [(0.6, 0.0, 0.005), (-0.4, 0.0, 0.005), (0.2, 0.025, 0.01)])
def test_the_sweep_recovers_a_constant_and_a_slanted_plane(offset, slope, tolerance):
    views, centre, truth = _light_field(offset, slope)
    estimate = plane_sweep(views, centre, sweep_hypotheses(-1.0, 1.5, 51))
    inner = evaluation_mask(truth.shape, 4)
    assert np.median(np.abs(estimate - truth)[inner]) < tolerance  # the hypotheses are 0.05 apart
    assert badpix(estimate, truth, inner, 0.07) == 0.0


# --- the command -----------------------------------------------------------------------------


def _run(data, out, *flags):
    return CliRunner().invoke(main, ["evaluate-depth", "--data", str(data), "--out", str(out), *flags])


@pytest.fixture(scope="module")
def exported_truth(tiny_depth_dataset, tmp_path_factory):
    """A flat folder of the hci-lf export's own gt_disp_lowres.pfm files, one per scene."""
    root = tmp_path_factory.mktemp("depth_bench")
    result = CliRunner().invoke(
        main, ["export", "--data", str(tiny_depth_dataset), "--out", str(root / "hci"), "--format", "hci-lf"]
    )
    assert result.exit_code == 0, result.output
    folder = root / "truth"
    folder.mkdir()
    for name in SCENES:
        shutil.copy(root / "hci" / "all" / name / "gt_disp_lowres.pfm", folder / f"{name}.pfm")
    return folder


def _copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "predictions")


def test_the_exported_ground_truth_scores_perfectly(tiny_depth_dataset, exported_truth, tmp_path):
    result = _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(exported_truth), "--split", "all")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["scenes"]) == set(SCENES)
    assert results["mean"] == {key: 0.0 for key in METRICS}  # no runtimes given
    assert results["border_px"] == 1 and results["resolution"] == [48, 32]
    assert results["regions"]["objects"]["mean"]["badpix_0.07"] == 0.0
    assert results["regions"]["floor"]["mean"]["badpix_0.07"] is None  # the stand-in has no floor depth
    assert (tmp_path / "out" / "results.md").read_text().count("| clevr_remv_0000") == 2
    assert (tmp_path / "out" / "error_maps.png").stat().st_size > 0


def test_a_submission_layout_with_runtimes(tiny_depth_dataset, exported_truth, tmp_path):
    submission = tmp_path / "submission"
    shutil.copytree(exported_truth, submission / "disp_maps")
    estimate = read_pfm(submission / "disp_maps" / f"{SCENES[0]}.pfm") + np.float32(0.05)
    write_pfm(submission / "disp_maps" / f"{SCENES[0]}.pfm", estimate)
    (submission / "runtimes").mkdir()
    for name, seconds in zip(SCENES, ("2.5", "3.5\n"), strict=True):
        (submission / "runtimes" / f"{name}.txt").write_text(seconds)
    result = _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(submission), "--split", "all")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    first = results["scenes"][SCENES[0]]
    assert first["runtime"] == 2.5 and results["mean"]["runtime"] == 3.0
    assert first["badpix_0.03"] == 100.0 and first["badpix_0.07"] == 0.0
    assert first["mse_x100"] == pytest.approx(0.25, rel=1e-4) and first["q25_x100"] == pytest.approx(5.0, rel=1e-4)
    assert results["mean"]["mse_x100"] == pytest.approx(0.125, rel=1e-4)


def test_the_estimators_write_a_submission_that_scores_the_same(tiny_depth_dataset, tmp_path):
    for estimator in ("constant", "sweep"):
        out = tmp_path / estimator
        result = _run(tiny_depth_dataset, out, "--estimator", estimator, "--split", "all")
        assert result.exit_code == 0, result.output
        results = json.loads((out / "results.json").read_text())
        assert results["estimator"] == estimator and results["mean"]["runtime"] >= 0
        again = _run(tiny_depth_dataset, tmp_path / f"{estimator}-again", "--predictions", str(out), "--split", "all")
        assert again.exit_code == 0, again.output
        rescored = json.loads((tmp_path / f"{estimator}-again" / "results.json").read_text())
        for name, scores in results["scenes"].items():
            assert rescored["scenes"][name] == pytest.approx(scores, abs=1e-6)  # runtimes written to 1 us
    constant = read_pfm(tmp_path / "constant" / "disp_maps" / f"{SCENES[0]}.pfm")
    assert np.unique(constant).size == 1


def _refused(result, *words):
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in result.output, result.output


def test_missing_and_extra_scenes_are_refused(tiny_depth_dataset, exported_truth, tmp_path):
    predictions = _copy(exported_truth, tmp_path)
    (predictions / f"{SCENES[1]}.pfm").unlink()
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(predictions), "--split", "all"),
        f"{SCENES[1]}.pfm",
        "no disparity map",
    )
    shutil.copy(predictions / f"{SCENES[0]}.pfm", predictions / f"{SCENES[1]}.pfm")
    shutil.copy(predictions / f"{SCENES[0]}.pfm", predictions / "clevr_remv_000099.pfm")
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(predictions), "--split", "all"),
        "clevr_remv_000099.pfm",
        "not a scene of split 'all'",
    )
    assert not (tmp_path / "out").exists()


def test_wrong_size_and_non_finite_maps_are_refused(tiny_depth_dataset, exported_truth, tmp_path):
    predictions = _copy(exported_truth, tmp_path)
    target = predictions / f"{SCENES[1]}.pfm"
    truth = read_pfm(target)
    write_pfm(target, truth[:, :40])
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(predictions), "--split", "all"),
        str(target),
        "40x32",
        "48x32",
    )
    truth[5, 7] = np.nan
    write_pfm(target, truth)
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(predictions), "--split", "all"),
        str(target),
        "NaN",
        "row 5, column 7",
    )


def test_depth_and_a_flipped_sign_are_refused(tiny_depth_dataset, exported_truth, tmp_path):
    predictions = _copy(exported_truth, tmp_path)
    target = predictions / f"{SCENES[0]}.pfm"
    truth = read_pfm(target)
    depth = read_pfm(exported_truth.parent / "hci" / "all" / SCENES[0] / "gt_depth_lowres.pfm")
    write_pfm(target, np.where(np.isfinite(depth), depth, depth[np.isfinite(depth)].max()))
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(predictions), "--split", "all"),
        str(target),
        "looks like z-depth",
        "1/Z",
    )
    write_pfm(target, -truth)
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(predictions), "--split", "all"),
        str(target),
        "opposite sign",
    )


def test_a_missing_runtime_is_refused(tiny_depth_dataset, exported_truth, tmp_path):
    submission = tmp_path / "submission"
    shutil.copytree(exported_truth, submission / "disp_maps")
    (submission / "runtimes").mkdir()
    (submission / "runtimes" / f"{SCENES[0]}.txt").write_text("fast")
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(submission), "--split", "all"),
        f"{SCENES[0]}.txt",
        "'fast' is not a runtime",
    )


def test_an_empty_split_is_refused(tiny_depth_dataset, tmp_path):
    data = shutil.copytree(tiny_depth_dataset, tmp_path / "data")
    (data / "splits.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "seed": 0,
                "ratios": [1.0, 0.0, 0.0],
                "splits": {"train": [0, 1], "val": [], "test": []},
            }
        )
    )
    _refused(_run(data, tmp_path / "out", "--estimator", "constant"), "--split test", "no scenes")


def test_bad_arguments_and_datasets_are_refused(tiny_dataset, tiny_depth_dataset, exported_truth, tmp_path):
    _refused(_run(tiny_dataset, tmp_path / "out", "--estimator", "constant"), "--passes depth")
    _refused(_run(tiny_depth_dataset, tmp_path / "out"), "--predictions / --estimator")
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--estimator", "constant", "--predictions", str(exported_truth)),
        "exactly one",
    )
    _refused(_run(tiny_depth_dataset, tmp_path / "out", "--estimator", "constant"), "splits.json", "--split all")
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--estimator", "constant", "--split", "all", "--border", "16"),
        "--border 16",
    )


def test_a_folder_named_like_a_map_is_a_clear_error(tiny_depth_dataset, exported_truth, tmp_path):
    predictions = _copy(exported_truth, tmp_path)
    (predictions / f"{SCENES[1]}.pfm").unlink()
    (predictions / f"{SCENES[1]}.pfm").mkdir()
    _refused(
        _run(tiny_depth_dataset, tmp_path / "out", "--predictions", str(predictions), "--split", "all"),
        f"--predictions {predictions}: {SCENES[1]}.pfm is not a file",
        "move it out",
    )
    assert not (tmp_path / "out").exists()


def _files(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_out_is_new_or_an_earlier_report_never_a_methods_folder_or_the_data(
    tiny_depth_dataset, exported_truth, tmp_path
):
    data = shutil.copytree(tiny_depth_dataset, tmp_path / "data")
    method = tmp_path / "method"  # a method's own submission: maps, runtimes and its notes
    shutil.copytree(exported_truth, method / "disp_maps")
    (method / "runtimes").mkdir()
    (method / "results.md").write_text("my method's notes")
    before, dataset = _files(method), _files(data)
    _refused(_run(data, method, "--estimator", "constant", "--split", "all"), f"--out {method}: holds files")
    _refused(
        _run(data, method, "--predictions", str(method / "disp_maps"), "--split", "all"),
        f"--out {method}: holds --predictions",
    )
    for inside in (data, data / "scenes" / "000000"):
        _refused(_run(data, inside, "--estimator", "constant", "--split", "all"), "--data", "choose a --out outside")
    _refused(_run(data, data / "scenes", "--predictions", str(exported_truth), "--split", "all"), "--data")
    _refused(
        _run(data, exported_truth / "report", "--predictions", str(exported_truth), "--split", "all"),
        "lies inside --predictions",
    )
    assert _files(method) == before and _files(data) == dataset
    out = tmp_path / "report"
    for _ in range(2):  # an earlier report of evaluate-depth is written again
        assert _run(data, out, "--estimator", "constant", "--split", "all").exit_code == 0
    assert json.loads((out / ".clevr-remv-output.json").read_text())["command"] == "evaluate-depth"
