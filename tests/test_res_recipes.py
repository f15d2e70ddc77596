"""The baseline's `paper` recipes, the dilated ResNet that takes ImageNet weights, and the
iteration-based schedule of `benchmark` (--recipe, --iterations, --val-every)."""

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from clevr_remv.cli import main
from clevr_remv.errors import ClevrRemvError
from clevr_remv.res.benchmark import run_benchmark
from clevr_remv.res.models import baseline
from clevr_remv.res.models.registry import recipe_overrides
from clevr_remv.res.models.resnet import DilatedResNet
from clevr_remv.res.models.training import StepBatchSampler, training_rounds

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["the red cube", "the small sphere left of the blue cylinder"]


def recipe_model(recipe, **changes):
    config = {**baseline.default_config("tiny"), **recipe_overrides(baseline, recipe), **changes}
    config = baseline.prepare_config(config, TEXTS)
    return config, baseline.build_model(config)


def test_the_paper_recipe_is_concat_fusion_a_1x1_head_cross_entropy_and_no_augmentation():
    config, model = recipe_model("paper")
    assert config["recipe"] == "paper"
    assert (
        config["fusion"],
        config["context_dilations"],
        config["dice_weight"],
        config["augment"],
        config["backbone"],
    ) == ("concat", [], 0.0, False, "cnn")
    convolutions = [layer for layer in model.head if isinstance(layer, nn.Conv2d)]
    assert [c.kernel_size for c in convolutions] == [(1, 1), (1, 1)]  # fusion, then 2-class logits
    assert convolutions[0].in_channels == config["channels"][-1] + config["lstm_dim"] + 8
    assert not hasattr(model, "language")  # no product fusion
    default, _ = recipe_model("default")
    assert (default["fusion"], default["dice_weight"], default["augment"]) == ("product", 1.0, True)
    assert default["context_dilations"] == [1, 2, 4] and default["recipe"] == "default"


def test_the_paper_resnet101_recipe_has_a_dilated_resnet101_at_output_stride_8():
    config, model = recipe_model("paper-resnet101")
    assert config["backbone"] == "resnet101" and config["fusion"] == "concat"
    assert isinstance(model.encoder, DilatedResNet)
    assert [len(getattr(model.encoder, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]
    encoder_parameters = sum(p.numel() for p in model.encoder.parameters())
    assert encoder_parameters == 42_500_160  # torchvision's resnet101 without its 1000-class fc
    model.eval()
    with torch.no_grad():
        assert model.encoder(torch.rand(1, 3, 64, 96)).shape == (1, 2048, 8, 12)
    assert baseline.vision_backbone(config) == "resnet101"
    assert baseline.vision_backbone(recipe_model("paper")[0]) == "cnn"  # takes an encoder of `pretrain`


def test_an_imagenet_resnet_checkpoint_in_torchvisions_layout_loads(tmp_path):
    _, model = recipe_model("paper", backbone="resnet50")
    source = DilatedResNet("resnet50")
    torch.nn.init.constant_(source.layer4[2].conv3.weight, 0.25)
    state = {f"module.{key}": value for key, value in source.state_dict().items()}  # a DataParallel save
    state.update({"module.fc.weight": torch.zeros(1000, 2048), "module.fc.bias": torch.zeros(1000)})
    torch.save({"state_dict": state}, tmp_path / "resnet50.pth")
    report = baseline.load_vision_weights(model, tmp_path / "resnet50.pth")
    assert report["loaded"] == len(source.state_dict()) and report["missing"] == []
    assert report["unexpected"] == ["fc.bias", "fc.weight"]
    assert torch.equal(model.encoder.layer4[2].conv3.weight, source.layer4[2].conv3.weight)
    torch.save({"layers.0.blocks.0.attn.qkv.weight": torch.zeros(3, 3)}, tmp_path / "swin.pth")
    with pytest.raises(ClevrRemvError, match="only 0 of the encoder's .* tensors match"):
        baseline.load_vision_weights(model, tmp_path / "swin.pth")
    _, cnn_model = recipe_model("paper")
    with pytest.raises(ClevrRemvError, match="not an encoder written by `clevr-remv pretrain`.*paper-resnet101"):
        baseline.load_vision_weights(cnn_model, tmp_path / "resnet50.pth")


def test_training_rounds_are_epochs_or_blocks_of_iterations():
    assert training_rounds(5, 2) == [(0, 5), (5, 10)]
    assert training_rounds(5, 2, iterations=12, val_every=4) == [(0, 4), (4, 8), (8, 12)]
    assert training_rounds(5, 2, iterations=12) == [(0, 5), (5, 10), (10, 12)]  # one epoch's steps
    assert training_rounds(5, 2, iterations=800_000, val_every=10_000)[-1] == (790_000, 800_000)


def test_step_batches_cover_each_pass_once_and_any_block_is_reproducible():
    whole = list(StepBatchSampler(10, 4, seed=3, start=0, stop=9))
    assert [len(batch) for batch in whole] == [4, 4, 2] * 3
    for first in range(0, 9, 3):
        assert sorted(i for batch in whole[first : first + 3] for i in batch) == list(range(10))
    assert whole[0:3] != whole[3:6]  # each pass reshuffled
    assert list(StepBatchSampler(10, 4, seed=3, start=4, stop=8)) == whole[4:8]  # a resumed block
    assert len(StepBatchSampler(10, 4, seed=3, start=4, stop=8)) == 4


def test_benchmark_with_the_paper_recipe_and_an_iteration_schedule(tiny_dataset, tmp_path):
    out = tmp_path / "paper"
    run_benchmark(tiny_dataset, "baseline", out, recipe="paper", iterations=5, val_every=2, batch_size=2, workers=0)
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["recipe"] == "paper" and config["settings"]["iterations"] == 5
    assert config["model"]["fusion"] == "concat" and config["model"]["dice_weight"] == 0.0
    history = json.loads((out / "training.json").read_text())["history"]
    assert [(entry["epoch"], entry["iteration"]) for entry in history] == [(1, 2), (2, 4), (3, 5)]
    last = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert last["scheduler"]["last_epoch"] == 5 and last["optimizer"]["param_groups"][0]["lr"] == 0.0
    with pytest.raises(ClevrRemvError, match="used recipe='paper', not 'default'"):
        run_benchmark(tiny_dataset, "baseline", out, resume=True, iterations=5, val_every=2, batch_size=2, workers=0)


def test_cli_recipe_and_iterations(tiny_dataset, tmp_path):
    out = tmp_path / "cli"
    outcome = CliRunner().invoke(
        main,
        [
            "benchmark",
            "--model",
            "baseline",
            "--data",
            str(tiny_dataset),
            "--recipe",
            "paper",
            "--iterations",
            "2",
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--out",
            str(out),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    history = json.loads((out / "training.json").read_text())["history"]
    assert [entry["iteration"] for entry in history] == [2]
    refused = CliRunner().invoke(
        main,
        [
            "benchmark",
            "--model",
            "lavt",
            "--data",
            str(tiny_dataset),
            "--recipe",
            "paper",
            "--out",
            str(tmp_path / "lavt"),
        ],
    )
    assert refused.exit_code == 2 and "model 'lavt' has no recipe 'paper'; choose one of default" in refused.output


def test_an_interrupted_iteration_run_resumes_on_the_same_batches(tiny_dataset, tmp_path, monkeypatch):
    from clevr_remv.res import benchmark as benchmark_module

    options = {"recipe": "paper", "iterations": 5, "val_every": 2, "batch_size": 2, "workers": 0}
    run_benchmark(tiny_dataset, "baseline", tmp_path / "straight", **options)
    calls, real_train_epoch = [], benchmark_module.train_epoch

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train_epoch(*args, **kwargs)

    monkeypatch.setattr(benchmark_module, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "resumed", **options)
    monkeypatch.setattr(benchmark_module, "train_epoch", real_train_epoch)
    with pytest.raises(ClevrRemvError, match="used iterations=5, not 6"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "resumed", resume=True, **{**options, "iterations": 6})
    run_benchmark(tiny_dataset, "baseline", tmp_path / "resumed", resume=True, **options)
    straight, resumed = (
        json.loads((tmp_path / name / "training.json").read_text())["history"] for name in ("straight", "resumed")
    )
    assert [entry["iteration"] for entry in resumed] == [2, 4, 5]
    for mine, theirs in zip(resumed, straight, strict=True):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
