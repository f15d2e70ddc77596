"""benchmarks/bench_multiview.py: which runs `run_models` asks `benchmark` for."""

import argparse
import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench_multiview(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_multiview")


def recorded_runs(bench_multiview, monkeypatch, tmp_path, **options) -> tuple:
    """(folders, benchmark argument lists) of run_models with ``benchmark`` replaced by a recorder
    that writes a finished run (checkpoints and results.json)."""
    calls = []

    def fake_command(args, log):
        calls.append([str(arg) for arg in args])
        out = Path(args[args.index("--out") + 1])
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        for name in ("best.pt", "last.pt"):
            (out / "checkpoints" / name).write_bytes(b"")
        (out / "results.json").write_text(json.dumps({}))

    monkeypatch.setattr(bench_multiview, "command", fake_command)
    settings = {"seeds": [0], "epochs": 15, "family_epochs": 10, "pretrain_epochs": 1, "finetune_epochs": 5}
    args = argparse.Namespace(**{**settings, **options})
    folders = bench_multiview.run_models(
        tmp_path / "train", tmp_path / "test", tmp_path / "runs", tmp_path, args, tmp_path / "commands.log"
    )
    return folders, calls


def test_the_blind_floor_under_heldout_alone_trains_once_on_a_constant_image(bench_multiview, monkeypatch, tmp_path):
    folders, calls = recorded_runs(
        bench_multiview, monkeypatch, tmp_path, models=["baseline-blind"], protocols=["heldout"]
    )
    assert list(folders) == [("baseline-blind", 0, "heldout")]
    assert len(calls) == 1
    assert "--blind" in calls[0] and "--protocol" not in calls[0] and "--vision-weights" not in calls[0]
    assert calls[0][calls[0].index("--epochs") + 1] == "15"


def test_both_protocols_fine_tune_the_heldout_checkpoint(bench_multiview, monkeypatch, tmp_path):
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "encoder.pt").write_bytes(b"")
    folders, calls = recorded_runs(
        bench_multiview, monkeypatch, tmp_path, models=["cmsa"], protocols=["heldout", "finetune-test"]
    )
    assert list(folders) == [("cmsa", 0, "heldout"), ("cmsa", 0, "finetune-test")]
    heldout, finetune = calls
    assert "--blind" not in heldout and heldout[heldout.index("--epochs") + 1] == "10"
    assert heldout[heldout.index("--recipe") + 1] == bench_multiview.FAMILY_RECIPE
    assert finetune[finetune.index("--protocol") + 1] == "finetune-test"
    assert (folders["cmsa", 0, "finetune-test"] / "checkpoints" / "best.pt").is_file()
