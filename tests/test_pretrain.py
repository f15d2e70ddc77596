"""pretrain: per-cell attribute targets, the data it reads, its outputs, resume and bad input."""

import json

import pytest
import torch
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.res import pretrain as pretrain_module
from clevr_remv.res.models.attributes import ATTRIBUTES, cell_objects, cell_targets
from clevr_remv.res.models.cnn import read_encoder_file
from clevr_remv.res.pretrain import run_pretrain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_cell_is_labelled_with_the_object_covering_most_of_it():
    index = torch.zeros(1, 8, 16, dtype=torch.long)
    index[0, :, :5] = 2  # 40 of the first cell's 64 pixels: object 2
    index[0, :3, 8:] = 1  # 24 of the second cell's pixels: background keeps it
    assert cell_objects(index, 8).tolist() == [[[2, 0]]]
    table = torch.tensor([[0, 3, 5], [0, 1, 2], [0, 1, 1], [0, 2, 1]])  # attributes x (background, 1, 2)
    assert cell_targets(index, [table], 8)[:, 0].tolist() == [[[5, 0]], [[2, 0]], [[1, 0]], [[1, 0]]]


def test_pretrain_reads_the_train_centre_views_only_and_writes_its_outputs(tiny_dataset, tmp_path, monkeypatch):
    read = []
    real_read = DatasetStore.read_rgb
    monkeypatch.setattr(
        DatasetStore, "read_rgb", lambda self, scene, u, v: read.append((scene, u, v)) or real_read(self, scene, u, v)
    )
    document = run_pretrain(tiny_dataset, tmp_path / "p", epochs=2, batch_size=2)
    store = DatasetStore(tiny_dataset)
    train, val = split_scene_ids(store, "train"), split_scene_ids(store, "val")
    centre = store.center
    assert sorted(read) == sorted([(scene, *centre) for scene in train + val])  # val only to measure
    assert document["data"]["train_scenes"] == len(train) and document["data"]["val_scenes"] == len(val)
    assert set(document["val"]) >= set(ATTRIBUTES)
    assert 0 <= document["val"]["color"]["foreground_cells"] <= 100
    assert len(document["history"]) == 2 and document["wall_seconds"] > 0
    assert json.loads((tmp_path / "p" / "pretrain.json").read_text())["epochs"] == 2
    encoder = read_encoder_file(tmp_path / "p" / "encoder.pt")
    assert encoder["config"]["channels"] == [16, 32, 64, 128]
    assert encoder["config"]["attributes"]["color"][0] == "background"


def test_a_resumed_run_matches_an_uninterrupted_one(tiny_dataset, tmp_path, monkeypatch):
    whole = run_pretrain(tiny_dataset, tmp_path / "whole", epochs=2, batch_size=2)
    real_measure = pretrain_module.measure
    calls = []

    def stop_in_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "measure", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_pretrain(tiny_dataset, tmp_path / "cut", epochs=2, batch_size=2)
    assert not (tmp_path / "cut" / "encoder.pt").exists()
    monkeypatch.setattr(pretrain_module, "measure", real_measure)
    resumed = run_pretrain(tiny_dataset, tmp_path / "cut", epochs=2, batch_size=2, resume=True)
    assert resumed["history"][-1]["train_loss"] == pytest.approx(whole["history"][-1]["train_loss"], rel=1e-5)
    first, second = (read_encoder_file(tmp_path / name / "encoder.pt")["encoder"] for name in ("whole", "cut"))
    assert all(torch.allclose(first[key], second[key], atol=1e-6) for key in first)


def test_bad_input_is_refused_and_nothing_is_written(tiny_dataset_copy, tmp_path):
    runner = CliRunner()
    data = str(tiny_dataset_copy)
    result = runner.invoke(main, ["pretrain", "--data", data, "--out", str(tiny_dataset_copy / "scenes")])
    assert result.exit_code == 2 and "inside --data" in result.output
    result = runner.invoke(main, ["pretrain", "--data", data, "--out", str(tmp_path / "q"), "--input-size", "44x32"])
    assert result.exit_code == 2 and "multiple of 8" in result.output and not (tmp_path / "q").exists()
    splits = DatasetStore(tiny_dataset_copy).splits_path
    document = json.loads(splits.read_text())
    document["splits"]["val"] += document["splits"]["train"]
    document["splits"]["train"] = []
    splits.write_text(json.dumps(document))
    result = runner.invoke(main, ["pretrain", "--data", data, "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "train split is empty" in result.output and not (tmp_path / "p").exists()


def test_an_earlier_run_needs_resume_and_the_same_settings(tiny_dataset, tmp_path):
    runner = CliRunner()
    out = str(tmp_path / "p")
    args = ["pretrain", "--data", str(tiny_dataset), "--out", out, "--epochs", "1", "--batch-size", "2"]
    assert runner.invoke(main, args).exit_code == 0
    again = runner.invoke(main, args)
    assert again.exit_code == 2 and "--resume" in again.output
    other = runner.invoke(main, [*args[:-2], "--batch-size", "3", "--resume"])
    assert other.exit_code == 2 and "batch_size=2" in other.output
