"""Short training runs, checkpoints and the ``clevr-remv retrieval`` commands on tiny data."""

import json

import numpy as np
import pytest
from builders import break_png
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from clevr_remv.cli import main  # noqa: E402
from clevr_remv.dataset.store import DatasetStore  # noqa: E402
from clevr_remv.errors import ClevrRemvError  # noqa: E402
from clevr_remv.retrieval.evaluation import recall_metrics  # noqa: E402
from clevr_remv.retrieval.synthetic import make_synthetic_precomp  # noqa: E402
from clevr_remv.retrieval.train import TrainConfig, train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--embed-dim", "32", "--word-dim", "16", "--batch-size", "64", "--lr", "3e-3", "--device", "cpu"]


@pytest.fixture(scope="module")
def synthetic_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_precomp(root, train=300, dev=100, test=100, feature_dim=32, seed=0)
    return root


@pytest.fixture(scope="module")
def trained(synthetic_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(
        data=str(synthetic_set),
        epochs=3,
        batch_size=64,
        lr=3e-3,
        embed_dim=32,
        word_dim=16,
        device="cpu",
        out=str(out),
        fold5=True,
    )
    return out, train(config)


def test_short_training_lifts_rsum_well_above_chance(trained):
    _, results = trained
    rng = np.random.RandomState(0)
    chance = np.mean([recall_metrics(rng.rand(100, 500), np.arange(500) // 5)["rsum"] for _ in range(10)])
    assert chance < 45  # about 32 for 100 images with 5 captions each
    assert results["test"]["rsum"] > 3 * chance
    assert results["history"][-1]["val_rsum"] > results["history"][0]["val_rsum"]


def test_results_json_and_best_checkpoint(trained):
    out, results = trained
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["best_epoch"] == results["best_epoch"]
    best = max(h["val_rsum"] for h in on_disk["history"])
    assert on_disk["val"]["rsum"] == best
    for split in ("val", "test"):
        for direction in ("i2t", "t2i"):
            assert set(on_disk[split][direction]) == {"r1", "r5", "r10", "medr", "meanr"}
    assert len(on_disk["test"]["fold5"]["folds"]) == 5
    assert (out / "best.pt").is_file()
    assert [h["lr"] for h in on_disk["history"]] == [3e-3] * 3


def test_learning_rate_drops_tenfold_at_lr_update(synthetic_set, tmp_path):
    config = TrainConfig(
        data=str(synthetic_set),
        epochs=3,
        lr_update=2,
        batch_size=128,
        lr=1e-3,
        embed_dim=8,
        word_dim=4,
        device="cpu",
        out=str(tmp_path),
    )
    assert [h["lr"] for h in train(config)["history"]] == pytest.approx([1e-3, 1e-3, 1e-4])


def test_evaluate_reproduces_the_test_metrics(trained, synthetic_set, tmp_path):
    out, results = trained
    runner = CliRunner()
    metrics = tmp_path / "metrics.json"
    outcome = runner.invoke(
        main,
        [
            "retrieval",
            "evaluate",
            "--checkpoint",
            str(out / "best.pt"),
            "--data",
            str(synthetic_set),
            "--fold5",
            "--device",
            "cpu",
            "--out",
            str(metrics),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "R-sum" in outcome.output and "5-fold" in outcome.output
    assert json.loads(metrics.read_text())["rsum"] == pytest.approx(results["test"]["rsum"])


def test_cli_train_writes_results_with_every_loss(synthetic_set, tmp_path):
    runner = CliRunner()
    for loss in ("sh", "mh"):
        outcome = runner.invoke(
            main,
            [
                "retrieval",
                "train",
                "--data",
                str(synthetic_set),
                "--loss",
                loss,
                "--epochs",
                "1",
                "--out",
                str(tmp_path / loss),
                *TINY,
            ],
        )
        assert outcome.exit_code == 0, outcome.output
        results = json.loads((tmp_path / loss / "results.json").read_text())
        assert results["config"]["loss"] == loss and "rsum" in results["test"]


def test_cli_bad_input_exits_2_with_the_file_or_flag(synthetic_set, tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "train_ims.npy", np.zeros((3, 4), dtype=np.float32))
    (bad / "train_caps.txt").write_text("a\nb\nc\nd\n")
    outcome = runner.invoke(main, ["retrieval", "train", "--data", str(bad), *TINY])
    assert outcome.exit_code == 2 and "4 captions for 3 images" in outcome.output
    outcome = runner.invoke(main, ["retrieval", "train", "--data", str(synthetic_set), "--mu-down", "0.6", *TINY])
    assert outcome.exit_code == 2 and "--mu-down" in outcome.output
    outcome = runner.invoke(
        main, ["retrieval", "evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(synthetic_set)]
    )
    assert outcome.exit_code == 2 and "checkpoint missing" in outcome.output
    (tmp_path / "junk.pt").write_text("junk")
    outcome = runner.invoke(
        main, ["retrieval", "evaluate", "--checkpoint", str(tmp_path / "junk.pt"), "--data", str(synthetic_set)]
    )
    assert outcome.exit_code == 2 and "not a readable checkpoint" in outcome.output


def test_cli_remv_train_and_format_mismatch(tiny_dataset, synthetic_set, tmp_path):
    runner = CliRunner()
    out = tmp_path / "remv"
    outcome = runner.invoke(
        main,
        [
            "retrieval",
            "train",
            "--data",
            str(tiny_dataset),
            "--format",
            "remv",
            "--epochs",
            "1",
            "--out",
            str(out),
            *TINY,
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert (
        f"Warning: --data {tiny_dataset}: the validation split has 2 images, where a random ranking "
        "already reaches text-to-image R@10 = 100 %" in outcome.output
    )
    results = json.loads((out / "results.json").read_text())
    assert results["test"]["rsum"] > 0 and results["config"]["format"] == "remv"
    outcome = runner.invoke(
        main,
        ["retrieval", "evaluate", "--checkpoint", str(out / "best.pt"), "--data", str(tiny_dataset), "--split", "val"],
    )  # --format from the checkpoint
    assert outcome.exit_code == 0, outcome.output
    outcome = runner.invoke(
        main,
        [
            "retrieval",
            "evaluate",
            "--checkpoint",
            str(out / "best.pt"),
            "--data",
            str(synthetic_set),
            "--format",
            "precomp",
        ],
    )
    assert outcome.exit_code == 2 and "--format it was trained with" in outcome.output


def test_cli_remv_unreadable_centre_view_is_a_clear_error(tiny_dataset_copy, tmp_path):
    store = DatasetStore(tiny_dataset_copy)
    broken = store.rgb_path(store.load_splits()["splits"]["val"][0], *store.center)
    break_png(broken, "text")
    outcome = CliRunner().invoke(
        main,
        [
            "retrieval",
            "train",
            "--data",
            str(tiny_dataset_copy),
            "--format",
            "remv",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "run"),
            *TINY,
        ],
    )
    assert outcome.exit_code == 2 and "Traceback" not in outcome.output
    assert f"Error: {broken}: cannot be read as an image (" in outcome.output
    assert not (tmp_path / "run").exists()


def test_cli_ablation_writes_table_plot_and_resumes(tmp_path):
    data = tmp_path / "data"
    make_synthetic_precomp(data, train=60, dev=20, test=20, feature_dim=16, seed=1)
    runner = CliRunner()
    args = [
        "retrieval",
        "ablation",
        "--data",
        str(data),
        "--epochs",
        "1",
        "--lambdas",
        "0,1,2",
        "--out",
        str(tmp_path / "ablation"),
        *TINY,
    ]
    outcome = runner.invoke(main, args)
    assert outcome.exit_code == 0, outcome.output
    table = (tmp_path / "ablation" / "ablation.md").read_text().splitlines()
    assert len(table) == 2 + 5
    assert table[0].startswith("| IMC (test, paper variant, distinct-images negatives) |")
    assert table[2].startswith("| λ = 0 (MH loss)") and table[-1].startswith("| λ = 1, δ_l1")
    assert (tmp_path / "ablation" / "rsum_lambda.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((tmp_path / "ablation" / "ablation.json").read_text())
    assert sorted(r["lambda"] for r in summary["runs"].values() if r["distance"] == "l1") == [0.0, 1.0, 2.0]
    again = runner.invoke(main, args)
    assert again.exit_code == 0 and again.output.count("reusing") == 6


def test_cli_imc_variant_code_trains_and_is_recorded(tmp_path):
    data = tmp_path / "data"
    make_synthetic_precomp(data, train=60, dev=20, test=20, feature_dim=16, seed=1)
    outcome = CliRunner().invoke(
        main,
        [
            "retrieval",
            "train",
            "--data",
            str(data),
            "--epochs",
            "1",
            "--distance",
            "l2",
            "--imc-variant",
            "code",
            "--out",
            str(tmp_path / "run"),
            *TINY,
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["imc_variant"] == "code"
    refused = CliRunner().invoke(
        main, ["retrieval", "train", "--data", str(data), "--imc-variant", "text", "--out", str(tmp_path / "other")]
    )
    assert refused.exit_code == 2 and "--imc-variant" in refused.output


@pytest.mark.parametrize("negatives", ["distinct-images", "off-diagonal"])
def test_cli_negatives_off_diagonal_trains_the_authors_way(tmp_path, monkeypatch, negatives):
    # off-diagonal: no image ids reach the loss, so MH and both IMC terms mask only the diagonal, as
    # the authors' code; with --imc-variant code that is their loss exactly. The default passes the ids.
    from clevr_remv.retrieval import train as train_module

    seen, imc_loss = [], train_module.imc_loss

    def recording_loss(img, txt, ids=None, **options):
        seen.append(ids)
        return imc_loss(img, txt, ids=ids, **options)

    monkeypatch.setattr(train_module, "imc_loss", recording_loss)
    data = tmp_path / "data"
    make_synthetic_precomp(data, train=60, dev=20, test=20, feature_dim=16, captions_per_image=5, seed=1)
    arguments = ["retrieval", "train", "--data", str(data), "--epochs", "1", "--imc-variant", "code"]
    outcome = CliRunner().invoke(main, [*arguments, "--negatives", negatives, "--out", str(tmp_path / "run"), *TINY])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads((tmp_path / "run" / "results.json").read_text())["config"]["negatives"] == negatives
    assert len(seen) == 300 // 64 + 1  # one call per batch of the 300 captions
    if negatives == "off-diagonal":
        assert all(ids is None for ids in seen)
    else:
        assert all(len(set(ids.tolist())) < len(ids) for ids in seen)  # captions of one image share its id


def test_ablation_reuses_a_run_written_before_imc_variant_existed(tmp_path):
    from dataclasses import asdict

    from clevr_remv.retrieval.ablation import _run_or_reuse

    config = TrainConfig(data=str(tmp_path / "no-such-data"), out=str(tmp_path / "run"))
    old_config = {k: v for k, v in asdict(config).items() if k != "imc_variant"}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps({"config": old_config, "val": {"rsum": 1.0}}))
    assert _run_or_reuse(config)["val"] == {"rsum": 1.0}  # no training: the data folder does not exist
    with pytest.raises(ClevrRemvError, match="train_ims.npy"):  # another variant: it trains, and fails on the data
        _run_or_reuse(TrainConfig(data=config.data, out=config.out, imc_variant="code"))


def test_synthetic_command(tmp_path):
    outcome = CliRunner().invoke(
        main,
        [
            "retrieval",
            "synthetic",
            "--out",
            str(tmp_path),
            "--train",
            "4",
            "--dev",
            "2",
            "--test",
            "2",
            "--feature-dim",
            "3",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert np.load(tmp_path / "train_ims.npy").shape == (4, 3)
    assert len((tmp_path / "test_caps.txt").read_text().splitlines()) == 10
