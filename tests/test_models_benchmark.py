"""benchmark: a short training run on the tiny dataset, resume, reports, CLI, bad input."""

import json
import shutil

import pytest
import torch
from builders import TINY_LAVT, break_png
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.outdir import write_manifest
from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.synthetic import write_synthetic_dataset
from clevr_remv.res import benchmark as benchmark_module
from clevr_remv.res.benchmark import run_benchmark
from clevr_remv.res.evaluate import evaluate, format_cell, predictor_label

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"batch_size": 4, "workers": 0}


@pytest.fixture(scope="module")
def baseline_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "baseline"
    results = run_benchmark(tiny_dataset, "baseline", out, epochs=2, **FAST)
    return out, results


def test_benchmark_writes_every_report(baseline_run):
    out, results = baseline_run
    for name in (
        "config.json",
        "training.json",
        "training_curve.png",
        "predictions.jsonl",
        "results.json",
        "results.md",
        "iou_heatmap.png",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (out / name).is_file(), name
    assert set(results["per_view"]) == {"u2_v2", "u1_v1", "u3_v1", "u1_v3", "u3_v3"}
    assert results["missing_predictions"] == 0 and results["unused_predictions"] == 0
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == results["samples"]
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["lr"] == 1e-3 and config["model"]["vocabulary"][:2] == ["<pad>", "<unk>"]


def test_results_show_the_trivial_predictors_beside_the_model(baseline_run, tiny_dataset, tmp_path):
    out, results = baseline_run
    markdown = (out / "results.md").read_text()
    assert "## Against trivial predictors" in markdown
    assert "| baseline (trained; attention: none, A-Num 0) |" in markdown
    for name in ("empty", "largest", "random", "attributes"):
        alone = evaluate(
            tiny_dataset, split="test", views="corners", out=tmp_path / name, progress=False, predictor=name
        )
        assert results["trivial_predictors"][name] == {"center": alone["center"], "overall": alone["overall"]}
        assert f"| {predictor_label(name)} | {format_cell(alone['center']['P@0.5'])} |" in markdown
    assert "| attributes (oracle) |" in markdown and "perception oracle, not a floor" in markdown


def test_training_lowers_the_loss_and_keeps_the_best_epoch(baseline_run):
    out, results = baseline_run
    training = json.loads((out / "training.json").read_text())
    losses = [entry["train_loss"] for entry in training["history"]]
    assert len(losses) == 2 and losses[-1] < losses[0]
    best = max(training["history"], key=lambda entry: entry["val_oIoU"])  # first of equals
    assert training["best_epoch"] == best["epoch"] == results["benchmark"]["best_epoch"]
    checkpoint = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
    assert checkpoint["epoch"] == best["epoch"]


def test_the_test_split_is_predicted_with_the_best_epochs_weights(tiny_dataset, tmp_path, monkeypatch):
    """Epoch 1 scores best on val; the test must use its weights, not those training went on to."""
    val_scores = iter([{"oIoU": 50.0, "mIoU": 50.0}, {"oIoU": 10.0, "mIoU": 10.0}])
    monkeypatch.setattr(benchmark_module, "_validate", lambda *args: next(val_scores))
    tested = {}
    real_test = benchmark_module._test

    def recording_test(model, tokenizer, store, settings, out, best_state, tested_state):
        tested.update(tested_state["model"])
        return real_test(model, tokenizer, store, settings, out, best_state, tested_state)

    monkeypatch.setattr(benchmark_module, "_test", recording_test)
    run_benchmark(tiny_dataset, "baseline", tmp_path, epochs=2, **FAST)
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert best["epoch"] == 1 and last["epoch"] == 2
    assert all(torch.equal(tested[key], best["model"][key]) for key in best["model"])
    assert not all(torch.equal(tested[key], last["model"][key]) for key in last["model"])


@pytest.fixture(scope="module")
def other_test_dataset(tmp_path_factory):
    """Three scenes of another seed, all in test, 3x3 views like tiny_dataset."""
    root = tmp_path_factory.mktemp("other") / "dataset"
    write_synthetic_dataset(root, scenes=3, grid=3, width=48, height=32, seed=5)
    write_splits(root, "0,0,1", seed=0)
    return root


def _scored_scenes(out) -> set:
    return {json.loads(line)["scene"] for line in (out / "predictions.jsonl").read_text().splitlines()}


def test_test_data_and_the_finetune_protocol(tiny_dataset, other_test_dataset, tmp_path, monkeypatch):
    tested = {}
    real_test = benchmark_module._test

    def recording_test(model, tokenizer, store, settings, out, best_state, tested_state):
        tested["best"], tested["tested"] = best_state["model"], tested_state["model"]
        return real_test(model, tokenizer, store, settings, out, best_state, tested_state)

    monkeypatch.setattr(benchmark_module, "_test", recording_test)
    heldout = run_benchmark(
        tiny_dataset, "baseline", tmp_path / "heldout", epochs=1, test_data=other_test_dataset, **FAST
    )
    assert _scored_scenes(tmp_path / "heldout") == set(DatasetStore(other_test_dataset).load_splits()["splits"]["test"])
    assert heldout["benchmark"]["protocol"] == "heldout" and heldout["benchmark"]["finetune_epochs"] == 0
    assert heldout["benchmark"]["test_data"] == str(DatasetStore(other_test_dataset).root)
    assert tested["tested"] is tested["best"]
    # The same trained run, fine-tuned on the test scenes' centre views before the test.
    shutil.copytree(tmp_path / "heldout" / "checkpoints", tmp_path / "finetune" / "checkpoints")
    finetuned = run_benchmark(
        tiny_dataset,
        "baseline",
        tmp_path / "finetune",
        epochs=1,
        resume=True,
        test_data=other_test_dataset,
        protocol="finetune-test",
        finetune_epochs=1,
        **FAST,
    )
    assert finetuned["benchmark"]["protocol"] == "finetune-test" and finetuned["benchmark"]["finetune_epochs"] == 1
    assert (tmp_path / "finetune" / "checkpoints" / "finetuned.pt").is_file()
    assert not all(torch.equal(tested["tested"][key], tested["best"][key]) for key in tested["best"])
    assert finetuned["benchmark"]["best_epoch"] == heldout["benchmark"]["best_epoch"]


def test_test_data_sharing_scenes_with_train_is_refused(tiny_dataset, tiny_dataset_copy, tmp_path):
    (tiny_dataset_copy / "splits.json").unlink()
    write_splits(tiny_dataset_copy, "0,0,1")  # the same scenes, all called test
    with pytest.raises(ClevrRemvError, match="are scenes of train or val"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "out", epochs=1, test_data=tiny_dataset_copy, **FAST)
    with pytest.raises(ClevrRemvError, match="--protocol"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "out", epochs=1, protocol="test", **FAST)
    assert not (tmp_path / "out").exists()


def test_resume_continues_an_interrupted_run(tiny_dataset, tmp_path, monkeypatch, baseline_run):
    calls = []
    real_train_epoch = benchmark_module.train_epoch

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train_epoch(*args, **kwargs)

    monkeypatch.setattr(benchmark_module, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(tiny_dataset, "baseline", tmp_path, epochs=2, **FAST)
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(benchmark_module, "train_epoch", real_train_epoch)
    with pytest.raises(ClevrRemvError, match="--resume"):
        run_benchmark(tiny_dataset, "baseline", tmp_path, epochs=2, **FAST)
    with pytest.raises(ClevrRemvError, match="batch_size"):
        run_benchmark(tiny_dataset, "baseline", tmp_path, epochs=2, resume=True, batch_size=2, workers=0)
    resumed = run_benchmark(tiny_dataset, "baseline", tmp_path, epochs=2, resume=True, **FAST)
    # Seeds follow the epoch, so the resumed run retraces the uninterrupted one.
    straight = json.loads((baseline_run[0] / "training.json").read_text())["history"]
    history = json.loads((tmp_path / "training.json").read_text())["history"]
    assert [e["epoch"] for e in history] == [1, 2]
    for mine, theirs in zip(history, straight, strict=True):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
    assert resumed["overall"]["oIoU"] == pytest.approx(baseline_run[1]["overall"]["oIoU"], abs=1e-6)


def test_a_run_from_before_manifests_stopped_in_its_first_epoch_resumes(tiny_dataset, tmp_path, baseline_run):
    # Before output folders had a manifest, a run stopped in its first epoch left config.json alone.
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(baseline_run[0] / "config.json", old / "config.json")
    (tmp_path / "mine").mkdir()
    shutil.copy(baseline_run[0] / "config.json", tmp_path / "mine" / "config.json")
    (tmp_path / "mine" / "notes.txt").write_text("the user's")
    with pytest.raises(ClevrRemvError, match="did not write"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "mine", epochs=1, resume=True, **FAST)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "the user's"
    run_benchmark(tiny_dataset, "baseline", old, epochs=1, resume=True, **FAST)
    assert (old / "results.json").is_file()


def test_lavt_benchmark_warns_without_vision_weights(tiny_dataset, tmp_path, tiny_text_encoder):
    encoder = tiny_text_encoder
    with pytest.warns(UserWarning, match="from scratch"):
        results = run_benchmark(
            tiny_dataset, "lavt", tmp_path / "out", epochs=1, text_encoder=encoder, config_overrides=TINY_LAVT, **FAST
        )
    assert results["benchmark"]["model"] == "lavt"
    config = json.loads((tmp_path / "out" / "config.json").read_text())["model"]
    assert config["text_encoder"] == str(encoder) and config["embed_dim"] == 16
    report = json.loads((tmp_path / "out" / "text_encoder.json").read_text())
    assert report["path"] == str(encoder) and report["loaded"] > 0 and report["missing"] == []


def test_bad_input(tiny_dataset, tiny_dataset_copy, tmp_path):
    with pytest.raises(ClevrRemvError, match="unknown model 'unet'; choose one of baseline, cmsa, lavt, lavt-cnn"):
        run_benchmark(tiny_dataset, "unet", tmp_path / "a")
    with pytest.raises(ClevrRemvError, match="w.pth: cannot be read .*`clevr-remv pretrain`"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "b", vision_weights=tmp_path / "w.pth")
    assert not (tmp_path / "b").exists()
    with pytest.raises(ClevrRemvError, match="has no recipe 'papers'; choose one of default, paper, paper-resnet101"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "b", recipe="papers")
    with pytest.raises(ClevrRemvError, match="--val-every 5: .* with --iterations"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "b", val_every=5)
    with pytest.raises(ClevrRemvError, match="--text-encoder"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "c", text_encoder=tmp_path)
    with pytest.raises(ClevrRemvError, match="--epochs"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "d", epochs=0)
    (tiny_dataset_copy / "splits.json").unlink()
    with pytest.raises(ClevrRemvError, match="no split file"):
        run_benchmark(tiny_dataset_copy, "baseline", tmp_path / "e", epochs=1, **FAST)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_without_a_gpu(tiny_dataset, tmp_path):
    with pytest.raises(ClevrRemvError, match="--device cuda"):
        run_benchmark(tiny_dataset, "baseline", tmp_path, device="cuda")


def test_cli(tiny_dataset, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(
        main,
        [
            "benchmark",
            "--model",
            "baseline",
            "--data",
            str(tiny_dataset),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--input-size",
            "40x32",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "test centre" in result.output and (out / "results.md").is_file()
    assert json.loads((out / "config.json").read_text())["settings"]["input_size"] == [40, 32]
    unknown = runner.invoke(main, ["benchmark", "--model", "unet", "--data", str(tiny_dataset)])
    assert unknown.exit_code == 2 and "baseline, cmsa, lavt, lavt-cnn" in unknown.output
    bad_size = runner.invoke(
        main, ["benchmark", "--model", "baseline", "--data", str(tiny_dataset), "--input-size", "big"]
    )
    assert bad_size.exit_code == 2 and "WIDTHxHEIGHT" in bad_size.output


def _first_scene(root, split):
    return DatasetStore(root).load_splits()["splits"][split][0]


def test_a_broken_test_image_fails_before_training(tiny_dataset_copy, tmp_path, monkeypatch):
    store = DatasetStore(tiny_dataset_copy)
    broken = store.rgb_path(_first_scene(tiny_dataset_copy, "test"), 1, 1)
    break_png(broken, "text")
    monkeypatch.setattr(benchmark_module, "train_epoch", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ClevrRemvError, match=f"{broken}: cannot be decoded"):
        run_benchmark(tiny_dataset_copy, "baseline", tmp_path / "out", epochs=1, **FAST)
    assert not (tmp_path / "out").exists()


def test_an_empty_split_leaves_no_output_folder(tiny_dataset_copy, tmp_path):
    (tiny_dataset_copy / "splits.json").unlink()  # a scene's split never changes: split anew
    write_splits(tiny_dataset_copy, "1,0,0")
    with pytest.raises(ClevrRemvError, match="split 'val' has no "):
        run_benchmark(tiny_dataset_copy, "baseline", tmp_path / "out", epochs=1, **FAST)
    assert not (tmp_path / "out").exists()


def test_a_truncated_image_read_in_a_worker_is_a_clear_error(tiny_dataset_copy, tmp_path):
    store = DatasetStore(tiny_dataset_copy)
    broken = store.rgb_path(_first_scene(tiny_dataset_copy, "train"), *store.center)
    break_png(broken, "truncate")
    write_manifest(tmp_path / "existing", "benchmark")  # an earlier run's folder, with a file of the user's
    (tmp_path / "existing" / "notes.txt").write_text("mine")
    runner = CliRunner()
    for out in (tmp_path / "fresh", tmp_path / "existing"):
        result = runner.invoke(
            main,
            [
                "benchmark",
                "--model",
                "baseline",
                "--data",
                str(tiny_dataset_copy),
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--workers",
                "1",
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 2, result.output
        assert f"Error: {broken}: cannot be read as an image (image file is truncated); delete scene" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "fresh").exists()
    assert (tmp_path / "existing" / "notes.txt").read_text() == "mine"


def test_cli_prints_n_a_for_undefined_figures(tiny_dataset, tmp_path, monkeypatch):
    nan = float("nan")
    results = {
        "center": {"mIoU": 0.0, "oIoU": nan},
        "benchmark": {"best_epoch": 1},
        "MVR": nan,
        "mvr_valid": None,
        "MRD": nan,
    }
    monkeypatch.setattr(benchmark_module, "run_benchmark", lambda *a, **k: results)
    result = CliRunner().invoke(
        main, ["benchmark", "--model", "baseline", "--data", str(tiny_dataset), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "oIoU n/a" in result.output and "MVR n/a  MRD n/a  (oIoU)" in result.output
    assert "nan" not in result.output


def test_blind_trains_and_tests_on_a_constant_image(tiny_dataset, tmp_path, monkeypatch):
    from clevr_remv.res.models.baseline import BaselineRES

    seen = []
    real_forward = BaselineRES.forward

    def forward(self, image, tokens, token_mask):
        seen.append((self.training, bool((image == 0.5).all())))
        return real_forward(self, image, tokens, token_mask)

    monkeypatch.setattr(BaselineRES, "forward", forward)
    results = run_benchmark(tiny_dataset, "baseline", tmp_path / "blind", epochs=1, blind=True, **FAST)
    assert {training for training, _ in seen} == {True, False}  # trained and tested
    assert all(constant for _, constant in seen)
    assert results["benchmark"]["blind"] is True
    assert (
        "| baseline (trained, blind: a constant image; attention: none, A-Num 0) |"
        in (tmp_path / "blind" / "results.md").read_text()
    )
