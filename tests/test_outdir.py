"""Where commands may write (clevr_remv/dataset/outdir.py): never onto, into or around the dataset,
never into a folder of someone else's files, and a replacement removes only what was written."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.outdir import (
    MANIFEST,
    check_output_dir,
    check_output_file,
    read_manifest,
    remove_output,
    staged_output_dir,
    write_manifest,
)
from clevr_remv.dataset.validate import validate_dataset
from clevr_remv.errors import ClevrRemvError


def _tree(root):
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


@pytest.fixture
def data(tmp_path):
    """A stand-in input folder with a file in a subfolder, and symlinks into it from outside."""
    root = tmp_path / "data"
    (root / "scenes" / "000001").mkdir(parents=True)
    (root / "scenes" / "000001" / "scene.json").write_text("{}")
    (tmp_path / "link-to-root").symlink_to(root)
    (tmp_path / "link-to-scenes").symlink_to(root / "scenes")
    return root


@pytest.mark.parametrize(
    "relative, where",
    [
        ("data", "is"),
        ("data/scenes", "lies inside"),
        ("data/scenes/000001", "lies inside"),
        ("data/new", "lies inside"),
        ("data/scenes/../scenes", "lies inside"),
        ("other/../data/scenes", "lies inside"),
        ("link-to-scenes", "lies inside"),
        ("link-to-root/scenes/000001", "lies inside"),
        ("link-to-root", "is"),
        (".", "holds"),
        ("data/..", "holds"),
    ],
)
def test_an_out_overlapping_an_input_is_refused(data, tmp_path, relative, where):
    out = tmp_path / relative
    with pytest.raises(ClevrRemvError, match=f"--out {out}: {where} --data {data} .*choose a --out outside"):
        check_output_dir(out, "export", {"--data": data})
    if where != "holds":  # a file in such a folder lies inside the input
        with pytest.raises(ClevrRemvError, match="x.png: lies inside --data"):
            check_output_file(out / "x.png", {"--data": data})


def test_a_symlinked_input_is_compared_by_what_it_points_at(data, tmp_path):
    with pytest.raises(ClevrRemvError, match="lies inside --data"):
        check_output_dir(data / "scenes" / "x", "export", {"--data": tmp_path / "link-to-root"})


def test_outputs_beside_the_input_and_its_allowed_subfolder_pass(data, tmp_path):
    assert check_output_dir(tmp_path / "export", "export", {"--data": data}) == tmp_path / "export"
    assert check_output_dir(tmp_path / "datasets", "export", {"--data": data})  # a name that starts alike
    assert check_output_dir(data / "stats", "stats", {"--data": data}, allowed=[data / "stats"])


def test_a_foreign_folder_is_refused_and_an_own_one_reused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert check_output_dir(out, "evaluate") == out  # empty
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ClevrRemvError, match=r"holds files that `clevr-remv evaluate` did not write \(notes.txt\)"):
        check_output_dir(out, "evaluate")
    write_manifest(out, "stats")
    with pytest.raises(ClevrRemvError, match="`clevr-remv evaluate` did not write"):
        check_output_dir(out, "evaluate")
    write_manifest(out, "evaluate")
    assert check_output_dir(out, "evaluate") == out
    assert check_output_dir(tmp_path / "old", "evaluate", ours=lambda folder: True) == tmp_path / "old"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ClevrRemvError, match="is a file"):
        check_output_dir(tmp_path / "file", "evaluate")


def test_a_replacement_removes_only_the_listed_entries(tmp_path):
    out = tmp_path / "out"
    with staged_output_dir(out, "export") as folder:
        (folder / "a" / "b").mkdir(parents=True)
        (folder / "a" / "b" / "one.txt").write_text("1")
        (folder / "two.txt").write_text("2")
    assert read_manifest(out)["entries"] == ["a", "a/b", "a/b/one.txt", "two.txt"]
    (out / "a" / "b" / "user.txt").write_text("mine")  # appears later: never removed
    assert remove_output(out) == ["a", "a/b", "a/b/user.txt"]
    assert (out / "a" / "b" / "user.txt").read_text() == "mine" and not (out / "two.txt").exists()


def test_a_failed_or_raced_staging_leaves_out_as_it_was(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_output_dir(out, "export") as folder:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("export failed")
    assert os.listdir(tmp_path) == []
    with staged_output_dir(out, "export") as folder:
        (folder / "first.txt").write_text("1")
    # Another process adds a file while --force prepares the replacement: the swap is refused.
    with (
        pytest.raises(ClevrRemvError, match="also holds late.txt"),
        staged_output_dir(out, "export", force=True) as folder,
    ):
        (folder / "second.txt").write_text("2")
        (out / "late.txt").write_text("late")
    assert sorted(os.listdir(out)) == [MANIFEST, "first.txt", "late.txt"] and os.listdir(tmp_path) == ["out"]


def test_a_call_killed_between_its_renames_is_cleaned_up_by_the_next(tmp_path):
    """Killed after moving the old output aside: the next call for the same folder removes the
    old output (what its manifest lists), the unfinished new one and the lease, and writes anew."""
    out = tmp_path / "out"
    with staged_output_dir(out, "export") as folder:
        (folder / "old.txt").write_text("old")
    script = (
        "import os, sys\n"
        "from clevr_remv.dataset.outdir import staged_output_dir\n"
        "rename = os.rename\n"
        "def rename_and_die(source, target):\n"
        "    rename(source, target)\n"
        "    os._exit(9)\n"
        "os.rename = rename_and_die\n"
        "with staged_output_dir(sys.argv[1], 'export', force=True) as folder:\n"
        "    (folder / 'new.txt').write_text('new')\n"
    )
    assert subprocess.run([sys.executable, "-c", script, str(out)]).returncode == 9
    assert not out.exists() and len(os.listdir(tmp_path)) == 3  # the new one, the old one aside, the lease
    with staged_output_dir(out, "export") as folder:
        (folder / "again.txt").write_text("again")
    assert os.listdir(tmp_path) == ["out"] and sorted(os.listdir(out)) == [MANIFEST, "again.txt"]


# --------------------------------------------------------------------------- the commands


def test_benchmark_out_in_the_dataset_is_refused_before_training(tiny_dataset_copy, tmp_path):
    before = _tree(tiny_dataset_copy)
    for out in (tiny_dataset_copy, tiny_dataset_copy / "scenes", tiny_dataset_copy / "scenes" / "000001", tmp_path):
        result = CliRunner().invoke(
            main,
            [
                "benchmark",
                "--model",
                "baseline",
                "--data",
                str(tiny_dataset_copy),
                "--epochs",
                "1",
                "--workers",
                "0",
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 2 and "--data" in result.output and "epoch 1" not in result.output, result.output
    assert _tree(tiny_dataset_copy) == before and validate_dataset(tiny_dataset_copy) == []
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.md").write_text("mine")
    result = CliRunner().invoke(
        main,
        [
            "benchmark",
            "--model",
            "baseline",
            "--data",
            str(tiny_dataset_copy),
            "--epochs",
            "1",
            "--workers",
            "0",
            "--out",
            str(notes),
        ],
    )
    assert result.exit_code == 2 and "`clevr-remv benchmark` did not write (plan.md)" in result.output
    assert os.listdir(notes) == ["plan.md"]


@pytest.fixture
def precomp(tmp_path):
    from clevr_remv.retrieval.synthetic import make_synthetic_precomp

    make_synthetic_precomp(tmp_path / "precomp", train=20, dev=10, test=10, feature_dim=8, captions_per_image=2)
    return tmp_path / "precomp"


@pytest.mark.parametrize("command", ["train", "ablation"])
def test_retrieval_out_in_the_data_or_a_foreign_folder_is_refused(precomp, tmp_path, command):
    before = _tree(precomp)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.md").write_text("mine")
    for out, message in (
        (precomp, "is --data"),
        (precomp / "run", "lies inside --data"),
        (notes, f"`clevr-remv retrieval {command}` did not write (plan.md)"),
    ):
        result = CliRunner().invoke(
            main, ["retrieval", command, "--data", str(precomp), "--epochs", "1", "--out", str(out)]
        )
        assert result.exit_code == 2 and message in result.output, result.output
    assert _tree(precomp) == before and os.listdir(notes) == ["plan.md"]


def test_retrieval_evaluate_never_writes_over_its_checkpoint_or_into_the_data(precomp, tmp_path):
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    for out, message in ((checkpoint, "is --checkpoint"), (precomp / "metrics.json", "lies inside --data")):
        result = CliRunner().invoke(
            main, ["retrieval", "evaluate", "--checkpoint", str(checkpoint), "--data", str(precomp), "--out", str(out)]
        )
        assert result.exit_code == 2 and message in result.output, result.output
    assert checkpoint.read_bytes() == b"weights" and not (precomp / "metrics.json").exists()


def test_retrieval_synthetic_refuses_a_foreign_folder_and_rewrites_its_own(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["retrieval", "synthetic", "--out", str(tmp_path), "--train", "5"])
    assert result.exit_code == 2 and "did not write (notes.txt)" in result.output
    for _ in range(2):
        result = CliRunner().invoke(main, ["retrieval", "synthetic", "--out", str(tmp_path / "set"), "--train", "5"])
        assert result.exit_code == 0, result.output
