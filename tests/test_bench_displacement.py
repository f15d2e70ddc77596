"""benchmarks/bench_displacement.py end to end on stand-in data: the sets keep the experiment's centre
views, scoring trains nothing (and reuses finetuned.pt), every committed results.json says what it ran
on, and a second run of the command runs nothing again."""

import argparse
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from clevr_remv.cli import main as cli
from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.generate.synthetic import write_synthetic_dataset
from clevr_remv.res import benchmark as benchmark_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SIZE = (48, 32)
TRAIN, TEST = 5, 2  # scenes: 3 train and 2 val, then the test scenes
RESULTS_ONLY = "baseline-seed5-heldout"


def fake_generate(args: list) -> None:
    """`generate` by the stand-in renderer (scenes already there are kept)."""
    options = dict(zip(args[::2], args[1::2], strict=True))
    out, scenes, start = Path(options["--out"]), int(options["--scenes"]), int(options.get("--start", 0))
    done = set(DatasetStore(out).scene_ids()) if (out / "dataset.json").is_file() else set()
    if set(range(start, start + scenes)) <= done:
        return
    write_synthetic_dataset(
        out,
        scenes=scenes,
        start=start,
        grid=int(options["--grid"]),
        width=int(options["--width"]),
        height=int(options["--height"]),
        seed=int(options["--seed"]),
        rig=options.get("--rig", "parallel"),
        baseline=float(options.get("--baseline", 0.1)),
    )


def fake_run(argv, check):
    """``python -m clevr_remv ARGS`` in this process, `generate` by the stand-in renderer."""
    args = [str(arg) for arg in argv[3:]]
    if args[0] == "generate":
        fake_generate(args[1:])
    else:
        cli(args, standalone_mode=False)
    return subprocess.CompletedProcess(argv, 0)


def commands(log: Path, name: str) -> int:
    return sum(line.startswith(f"clevr-remv {name} ") for line in log.read_text().splitlines())


def write_datasets(experiment: Path, families: Path) -> None:
    """The experiment's training set (centre views), its test set (a 5x5 grid whose corners are those of
    the 3x3 at 0.4), and the larger training set (2 more scenes)."""
    write_synthetic_dataset(experiment / "train", scenes=TRAIN, grid=1, width=SIZE[0], height=SIZE[1])
    write_splits(experiment / "train", f"3/{TRAIN},2/{TRAIN},0", seed=0)
    test = experiment / "test"
    write_synthetic_dataset(test, scenes=TEST, start=TRAIN, grid=5, width=SIZE[0], height=SIZE[1], baseline=0.2)
    write_splits(test, "0,0,1", seed=0)
    for start, scenes in ((0, TRAIN), (900, 2)):
        write_synthetic_dataset(families / "train-5", scenes=scenes, start=start, grid=1, width=SIZE[0], height=SIZE[1])
    write_splits(families / "train-5", f"5/{TRAIN + 2},2/{TRAIN + 2},0", seed=0)


def train_experiment(bench_multiview, experiment: Path) -> None:
    """The experiment's runs, as bench_multiview trains them: the baseline with 2 seeds, a family with 1."""
    epochs = {"epochs": 1, "family_epochs": 1, "pretrain_epochs": 1, "finetune_epochs": 1}
    epochs["protocols"] = ["heldout", "finetune-test"]
    log = experiment.parent / "commands.log"
    for models, seeds in ((["baseline"], [0, 1]), (["baseline-pretrained"], [0])):
        options = argparse.Namespace(models=models, seeds=seeds, **epochs)
        bench_multiview.run_models(
            experiment / "train", experiment / "test", experiment / "runs", experiment, options, log
        )


def no_training(*args, **kwargs):
    raise AssertionError("a training step ran while scoring trained checkpoints")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The experiment and the script's stages run on it: (root, experiment, commands per name before and
    after running the whole command again)."""
    root = tmp_path_factory.mktemp("displacement")
    experiment = root / "multiview" / "35mm-b0.1"
    argv = [
        "bench_displacement.py",
        *("--experiment", experiment, "--cache", root / "cache", "--families", root / "families"),
        *("--offsets", "0.4", "--convergent-offset", "1.0", "--layouts", 5, "--width", SIZE[0], "--height", SIZE[1]),
        *("--start", TRAIN, "--test-scenes", TEST, "--train-scenes", 3, "--large-scenes", 5),
        *("--scale-models", "baseline-pretrained", "--scale-seeds", 0, "--scale-size", "96x64"),
        *("--epochs", 1, "--family-epochs", 1, "--pretrain-epochs", 1, "--finetune-epochs", 1),
        *("--resamples", 100, "--results", root / "results", "--figures", root / "figures"),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        patch.setenv("XDG_CACHE_HOME", str(root / "xdg"))
        bench_multiview = importlib.import_module("bench_multiview")
        script = importlib.import_module("bench_displacement")
        for module in (bench_multiview, importlib.import_module("bench_recipes")):
            patch.setattr(module, "subprocess", SimpleNamespace(run=fake_run))
        write_datasets(experiment, root / "families")
        train_experiment(bench_multiview, experiment)
        results_only = experiment / "runs" / RESULTS_ONLY  # a run copied in without its model
        results_only.mkdir()
        shutil.copy2(experiment / "runs" / "baseline-seed0-heldout" / "results.json", results_only / "results.json")

        def run(stages: str) -> dict:
            patch.setattr(sys, "argv", [str(arg) for arg in argv] + ["--stages", stages])
            script.main()
            return {
                name: commands(root / "cache" / "commands.log", name) for name in ("benchmark", "evaluate", "pretrain")
            }

        with pytest.MonkeyPatch.context() as scoring:
            scoring.setattr(benchmark_module, "train_epoch", no_training)
            run("render,score")
        before = run("scale,report")
        after = run("render,score,scale,report")
    return root, experiment, before, after


def test_each_set_has_the_experiments_centre_views(study):
    root, _, _, _ = study
    summary = json.loads((root / "results" / "displacement" / "summary.json").read_text())
    assert set(summary["sets"]) == {"parallel-0.4", "convergent-1"}
    for figures in summary["sets"].values():
        identity = figures["centre_identity"]
        assert identity["scenes"] == TEST
        assert identity["same_layout"] == identity["same_centre_view"] == identity["same_index_png"] == TEST
        assert identity["rgb_max_difference"] == 0
        counts = figures["counts"]
        assert counts["samples"] == 9 * counts["expressions"] and counts["expressions_shared_with_9x9"] <= 16
    assert summary["sets"]["convergent-1"]["setting"]["rig"] == {
        "grid": 3,
        "baseline": 1.0,
        "lens": 35.0,
        "type": "convergent",
        "corner_offset": 1.0,
    }


def test_scoring_reuses_the_trained_checkpoints(study):
    root, experiment, _, _ = study
    for original in (experiment / "runs").iterdir():
        if original.name == RESULTS_ONLY:
            continue
        scored = root / "cache" / "runs" / "convergent-1" / original.name
        names = {path.name for path in (original / "checkpoints").iterdir()}
        assert ("finetuned.pt" in names) == original.name.endswith("finetune-test")
        for name in names:
            assert (scored / "checkpoints" / name).read_bytes() == (original / "checkpoints" / name).read_bytes()
        ours, theirs = (json.loads((folder / "results.json").read_text())["benchmark"] for folder in (scored, original))
        assert ours["best_epoch"] == theirs["best_epoch"] and ours["finetune_epochs"] == theirs["finetune_epochs"]
        assert ours["test_data"].endswith("sets/convergent-1")


def test_a_run_kept_as_results_alone_is_not_scored(study):
    root, experiment, _, _ = study
    assert (experiment / "runs" / RESULTS_ONLY / "results.json").is_file()
    assert (root / "cache" / "runs" / "convergent-1" / "baseline-seed0-heldout" / "results.json").is_file()
    assert not list((root / "cache" / "runs").glob(f"*/{RESULTS_ONLY}"))


def test_committed_results_say_what_they_ran_on(study):
    root, _, _, _ = study
    results = root / "results"
    run = json.loads((results / "displacement" / "convergent-1" / "baseline-pretrained-seed0-heldout.json").read_text())
    assert run["rig"] == {"grid": 3, "baseline": 1.0, "lens": 35.0, "type": "convergent", "corner_offset": 1.0}
    assert run["view_size"] == list(SIZE) and run["train_scenes"] == 3
    floor = json.loads((results / "displacement" / "parallel-0.4" / "floor-random.json").read_text())
    assert floor["rig"]["corner_offset"] == 0.4 and floor["train_scenes"] is None
    wide = json.loads((results / "scale" / "96x64" / "baseline-pretrained-seed0-finetune-test.json").read_text())
    assert wide["view_size"] == [96, 64] and wide["train_scenes"] == 3 and wide["rig"]["corner_offset"] == 0.4
    large = json.loads((results / "scale" / "48x32-5" / "baseline-pretrained-seed0-heldout.json").read_text())
    assert large["view_size"] == list(SIZE) and large["train_scenes"] == 5


def test_the_report_has_intervals_wall_times_and_the_plot(study):
    root, _, _, _ = study
    displacement = json.loads((root / "results" / "displacement" / "summary.json").read_text())
    figures = displacement["sets"]["parallel-0.4"]
    assert set(figures["contrasts"]) >= {"baseline, mean of 2 seeds, finetune-test", "`largest`", "`attributes`"}
    for contrast in ("corners - centre", "MRD corners"):
        floor = figures["contrasts"]["`largest`"][contrast]
        assert floor["low"] <= floor["value"] <= floor["high"]
    assert "baseline, mean of 2 seeds, heldout" in figures["contrasts_shared"]
    assert {"edge", "visibility_changed"} == set(figures["shares"])
    scale = json.loads((root / "results" / "scale" / "summary.json").read_text())
    assert list(scale) == ["48x32", "96x64", "48x32-5"]
    assert all(seconds is not None for seconds in scale["96x64"]["wall_seconds"].values())
    assert scale["96x64"]["pretrain_wall_seconds"] is not None
    assert scale["96x64"]["layouts"]["test"]["same_layout"] == TEST
    assert scale["48x32-5"]["pretrain_wall_seconds"] is None  # the experiment's encoder, copied
    assert "| baseline-pretrained seed 0, heldout |" in (root / "results" / "scale" / "report.md").read_text()
    assert (root / "figures" / "corner-drop.png").stat().st_size > 0


def test_running_the_command_again_runs_nothing(study):
    _, _, before, after = study
    assert before == after and before["benchmark"] > 0


def test_intervals_resample_only_the_scenes_with_samples(study):
    root, _, _, _ = study
    bench_multiview = sys.modules["bench_multiview"]
    test = root / "cache" / "sets" / "parallel-0.4"
    store = DatasetStore(test)
    first = store.load_splits()["splits"]["test"][0]
    largest = bench_multiview.TrivialPredictions(store, "largest")
    corners = sys.modules["bench_displacement"].CORNERS3
    figures = bench_multiview.corner_contrasts(test, [largest], 50, corners, keep={(first, 0)})
    assert figures["scenes"] == 1
    assert (
        figures["corners - centre"]["low"]
        <= figures["corners - centre"]["value"]
        <= figures["corners - centre"]["high"]
    )
