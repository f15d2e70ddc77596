"""benchmark and pretrain under torchrun: two CPU processes (gloo) write one set of outputs, score
every test sample once, and leave checkpoints a single process resumes."""

import json
import os
import subprocess
import sys

import pytest
import torch

from clevr_remv.errors import ClevrRemvError
from clevr_remv.res import distributed
from clevr_remv.res.benchmark import run_benchmark
from clevr_remv.res.models.cnn import read_encoder_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OUTPUTS = {
    "checkpoints",
    ".clevr-remv-output.json",
    "config.json",
    "iou_heatmap.png",
    "predictions.jsonl",
    "results.json",
    "results.md",
    "training.json",
    "training_curve.png",
}


def torchrun(*args) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone --nproc_per_node 2 -m clevr_remv ARGS``, one
    torch thread per process."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*command, "-m", "clevr_remv", *map(str, args)], capture_output=True, text=True, env=environment, timeout=240
    )


def test_a_batch_share_gives_every_process_the_same_number_of_samples(monkeypatch):
    assert distributed.batch_share([5, 6, 7]) == [5, 6, 7]  # one process: the whole batch
    monkeypatch.setenv("WORLD_SIZE", "2")
    shares = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        shares.append((distributed.batch_share([5, 6, 7, 8]), distributed.batch_share([5, 6, 7])))
    assert shares == [([5, 7], [5, 7]), ([6, 8], [6, 5])]
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert distributed.batch_share([9]) == [9]  # rank 1 of 4: the short batch repeated


def test_a_global_batch_the_processes_do_not_divide_is_refused(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ClevrRemvError, match="--batch-size 5: .* across the 2 processes"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "out", epochs=1, batch_size=5, workers=0)
    assert not (tmp_path / "out").exists()


def test_two_processes_write_one_set_of_outputs_that_one_process_resumes(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    result = torchrun(
        "benchmark",
        "--model",
        "baseline",
        "--data",
        tiny_dataset,
        "--epochs",
        2,
        "--batch-size",
        4,
        "--workers",
        0,
        "--out",
        out,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("test centre:") == 1  # rank 0 alone prints
    assert {entry.name for entry in out.iterdir()} == OUTPUTS
    assert {entry.name for entry in (out / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    results = json.loads((out / "results.json").read_text())
    keys = [
        (record["scene"], record["expression_id"], tuple(record["view"]))
        for record in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())
    ]
    assert len(keys) == len(set(keys)) == results["samples"]  # every test sample exactly once
    assert results["missing_predictions"] == 0 and results["unused_predictions"] == 0
    assert (results["benchmark"]["world_size"], results["benchmark"]["backend"]) == (2, "gloo")
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert (settings["world_size"], settings["backend"], settings["batch_size"]) == (2, "gloo", 4)
    # Cut the run back to its first epoch; one process resumes it from the two processes' checkpoint.
    last = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    first = json.loads((out / "training.json").read_text())["history"][0]
    last.update(epoch=1, history=[first])
    torch.save(last, out / "checkpoints" / "last.pt")
    resumed = run_benchmark(tiny_dataset, "baseline", out, epochs=2, batch_size=4, workers=0, resume=True)
    history = json.loads((out / "training.json").read_text())["history"]
    assert [entry["epoch"] for entry in history] == [1, 2] and history[0] == first
    assert (resumed["benchmark"]["world_size"], resumed["benchmark"]["backend"]) == (1, None)
    assert resumed["samples"] == results["samples"]


def test_pretrain_on_two_processes_counts_every_val_view_once(tiny_dataset, tmp_path):
    out = tmp_path / "pretrain"
    result = torchrun("pretrain", "--data", tiny_dataset, "--out", out, "--epochs", 1, "--batch-size", 2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("encoder written") == 1
    document = json.loads((out / "pretrain.json").read_text())
    assert (document["settings"]["world_size"], document["settings"]["backend"]) == (2, "gloo")
    cells_per_view = (32 // 8) * (48 // 8)
    assert document["val"]["cells"] == document["data"]["val_scenes"] * cells_per_view
    assert read_encoder_file(out / "encoder.pt")["config"]["channels"] == [16, 32, 64, 128]
