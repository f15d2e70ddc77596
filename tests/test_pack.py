"""clevr-remv pack / unpack / validate of a packed folder: the shards, the manifest, the card,
resuming, byte-identical unpacking, and refusals of bad input."""

import filecmp
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.outdir import write_manifest as write_output_manifest
from clevr_remv.dataset.packed import pack as pack_module
from clevr_remv.dataset.packed.check import validate_packed
from clevr_remv.dataset.packed.layout import LOCK_NAME, parse_size, parse_views
from clevr_remv.dataset.packed.manifest import read_manifest
from clevr_remv.dataset.packed.pack import pack_dataset
from clevr_remv.dataset.packed.unpack import unpack_dataset
from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.schemas import validate

SMALL = "60kB"  # about one 3x3 stand-in scene with every view per shard


@pytest.fixture(scope="module")
def packed(tiny_dataset, tmp_path_factory):
    """The tiny dataset packed with every view in small shards, and its centre views beside them."""
    out = tmp_path_factory.mktemp("packed") / "packed"
    pack_dataset(tiny_dataset, out, views="all", shard_size=SMALL)
    pack_dataset(tiny_dataset, out, views="center")
    return out


def tree(root: Path) -> dict:
    """Relative path -> (size, mtime_ns, inode) of every file under ``root``."""
    return {
        path.relative_to(root).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns, path.stat().st_ino)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_shards_hold_the_dataset_files_byte_for_byte_under_one_key_per_scene(tiny_dataset, packed):
    store = DatasetStore(tiny_dataset)
    manifest = read_manifest(packed)
    splits = store.load_splits()["splits"]
    subset = manifest["subsets"]["all"]
    assert [shard["split"] for shard in subset["shards"]] == sorted(
        [shard["split"] for shard in subset["shards"]], key=["train", "val", "test"].index
    )
    for split, scenes in splits.items():
        shards = [shard for shard in subset["shards"] if shard["split"] == split]
        assert len(shards) == len(scenes)  # the shard size fits one scene with all its views
        assert [scene for shard in shards for scene in shard["scenes"]] == scenes
    for shard in subset["shards"]:
        data = (packed / shard["name"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (shard["bytes"], shard["sha256"])
        with tarfile.open(packed / shard["name"]) as tar:
            members = tar.getmembers()
            assert len({member.name.split(".", 1)[0] for member in members}) == shard["samples"]
            for member in members:
                key, field = member.name.split(".", 1)
                scene_dir = store.scene_dir(int(key))
                source = (
                    scene_dir / field
                    if field.endswith(".json")
                    else scene_dir / field.split(".")[1] / (field.split(".")[0] + ".png")
                )
                assert tar.extractfile(member).read() == source.read_bytes(), member.name
    assert manifest["dataset"] == store.info()
    assert (packed / "meta" / "splits.json").read_bytes() == store.splits_path.read_bytes()


def test_centre_subset_packs_only_the_centre_view(packed):
    subset = read_manifest(packed)["subsets"]["center"]
    assert subset["views"] == [[2, 2]]
    assert subset["fields"] == ["scene.json", "refexps.json", "u2_v2.rgb.png", "u2_v2.index.png"]
    with tarfile.open(packed / subset["shards"][0]["name"]) as tar:
        assert {name.split(".", 1)[1] for name in tar.getnames()} == set(subset["fields"])


def test_manifest_and_indexes_match_their_schemas(packed):
    manifest = read_manifest(packed)
    validate(manifest, "packed_manifest", "manifest.json")
    for subset in manifest["subsets"].values():
        for shard in subset["shards"]:
            validate(json.loads((packed / shard["index"]["name"]).read_text()), "packed_index", shard["index"]["name"])


def test_dataset_card_declares_configs_data_files_features_and_licence(packed):
    text = (packed / "README.md").read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    configs = {config["config_name"]: config for config in header["configs"]}
    assert configs["all"]["data_files"] == [
        {"split": split, "path": f"all/{split}-*.tar"} for split in ("train", "val", "test")
    ]
    assert configs["center"].get("default") is True
    assert header["license"] == "cc-by-4.0"
    info = {entry["config_name"]: entry for entry in header["dataset_info"]}
    features = {feature["name"]: feature["dtype"] for feature in info["center"]["features"]}
    assert features["u2_v2.rgb.png"] == "image" and features["refexps.json"] == "json"
    examples = {split["name"]: split["num_examples"] for split in info["all"]["splits"]}
    assert examples == {"train": 3, "val": 2, "test": 1}
    assert "0 = background, k = object k" in text and "@phdthesis" in text


def test_an_empty_split_packs_to_no_shard_and_the_card_leaves_it_out(tiny_dataset_copy, tmp_path):
    (tiny_dataset_copy / "splits.json").unlink()
    write_splits(tiny_dataset_copy, "0.5,0.5,0", seed=0)
    out = tmp_path / "packed"
    _, reports = pack_dataset(tiny_dataset_copy, out, views="center")
    assert [(report.split, report.samples, report.written) for report in reports] == [
        ("train", 3, 1),
        ("val", 3, 1),
        ("test", 0, 0),
    ]
    header = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    assert [entry["split"] for entry in header["configs"][0]["data_files"]] == ["train", "val"]
    assert validate_packed(out) == []
    assert len(ClevrRemvDataset(out, split="test")) == len(ClevrRemvDataset(tiny_dataset_copy, split="test")) == 0


def test_unpack_gives_back_every_file_byte_for_byte(tiny_dataset, packed, tmp_path):
    out = tmp_path / "unpacked"
    assert unpack_dataset(packed, out) == (6, 0)
    comparison = filecmp.dircmp(tiny_dataset, out)

    def differences(cmp):
        found = cmp.left_only + cmp.right_only + cmp.funny_files
        found += filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)[1]
        return found + [name for sub in cmp.subdirs.values() for name in differences(sub)]

    assert differences(comparison) == []
    assert len(list(out.rglob("*"))) == len(list(Path(tiny_dataset).rglob("*")))
    assert (out / "scenes/000000/rgb/u1_v1.png").stat().st_mtime == int(
        (Path(tiny_dataset) / "scenes/000000/rgb/u1_v1.png").stat().st_mtime
    )


def test_an_interrupted_unpack_resumes_and_rewrites_a_damaged_scene(tiny_dataset, packed, tmp_path):
    out = tmp_path / "unpacked"
    unpack_dataset(packed, out)
    (out / "dataset.json").unlink()  # as if stopped before the end
    (out / "scenes/000004/index/u2_v2.png").write_bytes(b"half")
    shutil.rmtree(out / "scenes/000001")
    write_output_manifest(out, "unpack")
    assert unpack_dataset(packed, out) == (2, 4)
    assert filecmp.cmp(
        out / "scenes/000004/index/u2_v2.png", tiny_dataset / "scenes/000004/index/u2_v2.png", shallow=False
    )
    assert sorted(tree(out)) == sorted(tree(tiny_dataset))
    result = CliRunner().invoke(main, ["unpack", "--data", str(packed), "--out", str(out)])
    assert result.exit_code == 2 and "holds files that `clevr-remv unpack` did not write" in result.output


def test_a_rerun_writes_only_missing_or_damaged_shards(tiny_dataset, packed, tmp_path):
    copy = shutil.copytree(packed, tmp_path / "packed")
    shards = [shard["name"] for shard in read_manifest(copy)["subsets"]["all"]["shards"]]
    (copy / shards[0]).unlink()
    damaged = bytearray((copy / shards[1]).read_bytes())
    damaged[700] ^= 0xFF
    (copy / shards[1]).write_bytes(bytes(damaged))
    before = tree(copy)
    name, reports = pack_dataset(tiny_dataset, copy, views="all", shard_size=SMALL)
    assert (name, sum(r.written for r in reports), sum(r.kept for r in reports)) == ("all", 2, 4)
    after = tree(copy)
    assert all(after[shard] == before[shard] for shard in shards[2:])
    assert (copy / shards[1]).read_bytes() == (packed / shards[1]).read_bytes()
    assert (copy / shards[0]).read_bytes() == (packed / shards[0]).read_bytes()
    assert validate_packed(copy) == []


def test_an_interrupted_pack_is_reported_and_resumed_by_the_same_command(tiny_dataset, tmp_path, monkeypatch):
    out = tmp_path / "packed"
    real = pack_module.write_shard
    calls = []

    def dies_on_the_second_shard(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pack_module, "write_shard", dies_on_the_second_shard)
    with pytest.raises(KeyboardInterrupt):
        pack_dataset(tiny_dataset, out, views="all", shard_size=SMALL)
    problems = validate_packed(out)
    assert any(
        "split 'train' was not packed to the end" in problem.message and "clevr-remv pack" in problem.message
        for problem in problems
    )
    monkeypatch.setattr(pack_module, "write_shard", real)
    first = (out / "all/train-000000.tar").stat().st_mtime_ns
    _, reports = pack_dataset(tiny_dataset, out, views="all", shard_size=SMALL)
    assert (reports[0].kept, reports[0].written) == (1, 2)
    assert (out / "all/train-000000.tar").stat().st_mtime_ns == first
    assert validate_packed(out) == []


def test_validate_names_a_damaged_a_truncated_and_a_missing_shard(packed, tmp_path):
    copy = shutil.copytree(packed, tmp_path / "packed")
    shards = [shard["name"] for shard in read_manifest(copy)["subsets"]["all"]["shards"]]
    (copy / shards[0]).unlink()
    data = bytearray((copy / shards[1]).read_bytes())
    data[1000] ^= 0x01
    (copy / shards[1]).write_bytes(bytes(data))
    (copy / shards[2]).write_bytes((copy / shards[2]).read_bytes()[:5000])
    runner = CliRunner()
    result = runner.invoke(main, ["validate", "--data", str(copy)])
    assert result.exit_code == 1
    assert f"ERROR {copy / shards[0]}: missing; rerun `clevr-remv pack" in result.output
    assert f"ERROR {copy / shards[1]}: SHA-256 differs from manifest.json's (damaged)" in result.output
    assert f"ERROR {copy / shards[2]}: 5000 bytes, but manifest.json records" in result.output
    assert "3 errors" in result.output
    assert runner.invoke(main, ["validate", "--data", str(packed)]).exit_code == 0


def test_validate_decodes_every_member_and_checks_the_index(packed, tmp_path):
    """A shard whose manifest record was made to match damaged bytes still fails: its index and
    members are checked too."""
    copy = shutil.copytree(packed, tmp_path / "packed")
    manifest = read_manifest(copy)
    shard = manifest["subsets"]["center"]["shards"][0]
    index = json.loads((copy / shard["index"]["name"]).read_text())
    offset, size = index["samples"][0]["members"][2]  # the first sample's rgb PNG
    data = bytearray((copy / shard["name"]).read_bytes())
    data[offset + 8 : offset + size] = bytes(size - 8)  # keep the PNG signature, zero the chunks
    (copy / shard["name"]).write_bytes(bytes(data))
    shard["sha256"] = hashlib.sha256(data).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    problems = validate_packed(copy)
    member = f"{copy / shard['name']}:{index['samples'][0]['key']}.u2_v2.rgb.png"
    assert [problem.path for problem in problems] == [member]
    assert "cannot be decoded" in problems[0].message
    assert validate_packed(copy, quick=True) == []


def test_pack_refuses_an_out_inside_the_dataset_and_changes_nothing(tiny_dataset_copy):
    before = tree(tiny_dataset_copy)
    result = CliRunner().invoke(
        main, ["pack", "--data", str(tiny_dataset_copy), "--out", str(tiny_dataset_copy / "packed")]
    )
    assert result.exit_code == 2
    assert f"--out {tiny_dataset_copy / 'packed'}: lies inside --data" in result.output
    assert tree(tiny_dataset_copy) == before


def test_unpack_refuses_an_out_inside_the_packed_folder(packed):
    before = tree(packed)
    result = CliRunner().invoke(main, ["unpack", "--data", str(packed), "--out", str(packed / "scenes")])
    assert result.exit_code == 2 and "lies inside --data" in result.output
    assert tree(packed) == before


def test_a_manifest_of_another_version_is_refused_everywhere_and_nothing_changes(tiny_dataset, packed, tmp_path):
    copy = shutil.copytree(packed, tmp_path / "packed")
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(dict(manifest, version=2)))
    before = tree(copy)
    runner = CliRunner()
    for command in (
        ["pack", "--data", str(tiny_dataset), "--out", str(copy)],
        ["unpack", "--data", str(copy), "--out", str(tmp_path / "unpacked")],
    ):
        result = runner.invoke(main, command)
        assert result.exit_code == 2, command
        message = f"{copy / 'manifest.json'}: packed layout version 2, but this clevr-remv reads version 1"
        assert message in result.output
    assert tree(copy) == before and not (tmp_path / "unpacked").exists()
    result = runner.invoke(main, ["validate", "--data", str(copy)])
    assert result.exit_code == 1 and "packed layout version 2" in result.output


def test_unpack_of_a_truncated_or_damaged_shard_names_it_and_writes_nothing(packed, tmp_path):
    copy = shutil.copytree(packed, tmp_path / "packed")
    shard = read_manifest(copy)["subsets"]["all"]["shards"][-1]["name"]
    (copy / shard).write_bytes((copy / shard).read_bytes()[:-4096])
    result = CliRunner().invoke(main, ["unpack", "--data", str(copy), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"{copy / shard}: " in result.output and "truncated" in result.output and "clevr-remv pack" in result.output
    assert not (tmp_path / "out").exists()
    data = bytearray((packed / shard).read_bytes())
    data[600] ^= 0x10
    (copy / shard).write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["unpack", "--data", str(copy), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and f"{copy / shard}: SHA-256 differs" in result.output
    assert not (tmp_path / "out").exists()


def test_unpack_needs_every_view_packed(tiny_dataset, tmp_path):
    out = tmp_path / "centre"
    pack_dataset(tiny_dataset, out, views="center")
    with pytest.raises(ClevrRemvError, match=r"no subset holds every view of every split .* --split all --views all"):
        unpack_dataset(out, tmp_path / "unpacked")


def test_a_changed_dataset_or_shard_size_is_refused_on_resume(tiny_dataset_copy, packed, tmp_path):
    copy = shutil.copytree(packed, tmp_path / "packed")
    before = tree(copy)
    with pytest.raises(ClevrRemvError, match="--shard-size: .* holds subset 'all' packed with --shard-size 60000"):
        pack_dataset(tiny_dataset_copy, copy, views="all", shard_size="1MB")
    splits = tiny_dataset_copy / "splits.json"
    splits.write_text(splits.read_text() + "\n")
    with pytest.raises(ClevrRemvError, match=r"was packed from a dataset whose splits.json differ\(s\)"):
        pack_dataset(tiny_dataset_copy, copy, views="all", shard_size=SMALL)
    assert tree(copy) == before


def test_commands_that_need_the_folder_form_say_how_to_get_it(packed, tmp_path):
    for command in (
        ["stats", "--data", str(packed)],
        ["show", "--data", str(packed), "--scene", "0", "--out", str(tmp_path / "x.png")],
        ["evaluate", "--data", str(packed), "--predictor", "empty", "--out", str(tmp_path / "eval")],
        ["benchmark", "--model", "baseline", "--data", str(packed), "--out", str(tmp_path / "run")],
    ):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2
        assert "a packed dataset" in result.output and f"clevr-remv unpack --data {packed} --out DIR" in result.output


def test_pack_cli_reports_each_split_and_resumes(tiny_dataset, tmp_path):
    out = tmp_path / "packed"
    runner = CliRunner()
    args = ["pack", "--data", str(tiny_dataset), "--out", str(out), "--split", "train", "--views", "u1_v1,u3_v3"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "u1_v1+u3_v3/train: 1 shard (1 written, 0 kept), 3 scenes" in result.output
    assert list(read_manifest(out)["subsets"]["u1_v1+u3_v3"]["splits"]) == ["train"]
    assert "(0 written, 1 kept)" in runner.invoke(main, args).output


def test_views_and_shard_size_options():
    assert parse_views("center", 9) == ("center", [(5, 5)])
    assert parse_views("u9_v9,u1_v1,u9_v1,u1_v9", 9) == ("corners", [(1, 1), (9, 1), (1, 9), (9, 9)])
    assert parse_views("u1_v1, u5_v5", 9) == ("u1_v1+u5_v5", [(1, 1), (5, 5)])
    with pytest.raises(ClevrRemvError, match="--views: 'x1' is not a view"):
        parse_views("x1", 9)
    with pytest.raises(ClevrRemvError, match=r"\(10, 1\) does not exist"):
        parse_views("u10_v1", 9)
    assert [parse_size(text) for text in ("512MB", "1GB", "64MiB", "1000", "1.5kB")] == [
        512 * 10**6,
        10**9,
        64 * 2**20,
        1000,
        1500,
    ]
    for bad in ("big", "0MB", "5 parsecs"):
        with pytest.raises(ClevrRemvError, match="--shard-size"):
            parse_size(bad)


def test_shards_are_planned_up_to_the_shard_size(tiny_dataset, tmp_path):
    pack_dataset(tiny_dataset, tmp_path / "one", views="all", shard_size="1GB")
    shards = read_manifest(tmp_path / "one")["subsets"]["all"]["shards"]
    assert [(shard["split"], shard["samples"]) for shard in shards] == [("train", 3), ("val", 2), ("test", 1)]
    pack_dataset(tiny_dataset, tmp_path / "two", views="all", shard_size="130kB")
    sizes = [shard["bytes"] for shard in read_manifest(tmp_path / "two")["subsets"]["all"]["shards"]]
    assert max(sizes) <= 130_000 and len(sizes) > 3
    assert os.path.getsize(tmp_path / "two" / "manifest.json") > 0


# --- names in the manifest, one pack per folder, unlisted shards, unpack's scene lists -----------


def _edit_manifest(folder: Path, edit) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _fake_shard(name: str) -> dict:
    file = {"name": name, "bytes": 1, "sha256": "0" * 64}
    return dict(file, split="train", samples=1, scenes=[99], index=dict(file, name=name.replace(".tar", ".idx.json")))


@pytest.mark.parametrize("name", ["../victim.tar", "center/../../victim.tar", "ABSOLUTE", "README.md"])
def test_a_manifest_naming_files_outside_or_not_its_shards_is_refused_and_nothing_is_removed(
    tiny_dataset, packed, tmp_path, name
):
    copy = shutil.copytree(packed, tmp_path / "packed")
    victim = tmp_path / "victim.tar"
    victim.write_text("a file of the user's")
    name = str(victim) if name == "ABSOLUTE" else name
    _edit_manifest(copy, lambda manifest: manifest["subsets"]["center"]["shards"].append(_fake_shard(name)))
    before = tree(copy)
    runner = CliRunner()
    result = runner.invoke(main, ["pack", "--data", str(tiny_dataset), "--out", str(copy), "--views", "center"])
    assert result.exit_code == 2, result.output
    assert f"{copy / 'manifest.json'}: field 'subsets/center/shards/" in result.output
    assert "pack --data DIR --out NEW_FOLDER" in result.output
    assert victim.read_text() == "a file of the user's" and tree(copy) == before
    result = runner.invoke(main, ["validate", "--data", str(copy)])
    assert result.exit_code == 1 and f"ERROR {copy / 'manifest.json'}: field 'subsets/center/shards/" in result.output


def test_a_split_name_that_would_leave_the_folder_is_refused(tiny_dataset_copy, tmp_path):
    splits = json.loads((tiny_dataset_copy / "splits.json").read_text())
    splits["splits"]["../../escaped"] = splits["splits"].pop("test")
    (tiny_dataset_copy / "splits.json").write_text(json.dumps(splits))
    out = tmp_path / "a" / "packed"
    with pytest.raises(ClevrRemvError, match=r"splits.json: split '\.\./\.\./escaped' cannot be part of a shard's"):
        pack_dataset(tiny_dataset_copy, out, views="center")
    assert list(tmp_path.rglob("*escaped*")) == []


def _hold_the_lock(out: Path) -> subprocess.Popen:
    """Another process that holds ``out``'s pack lock until it is killed."""
    script = (
        "import sys, time; from clevr_remv.dataset.leases import exclusive; "
        "lock = exclusive(sys.argv[1]); lock.__enter__(); print('held', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(out / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_one_pack_per_folder_and_a_killed_one_leaves_it_free(tiny_dataset, packed, tmp_path):
    copy = shutil.copytree(packed, tmp_path / "packed")
    holder = _hold_the_lock(copy)
    try:
        before = tree(copy)
        args = ["pack", "--data", str(tiny_dataset), "--out", str(copy), "--views", "center"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert f"--out {copy}: another `clevr-remv pack` is writing this folder now (pid {holder.pid} on host" in (
            result.output
        )
        assert "wait for it to end" in result.output
        assert {path: entry for path, entry in tree(copy).items() if path != LOCK_NAME} == {
            path: entry for path, entry in before.items() if path != LOCK_NAME
        }
        warnings = [str(problem) for problem in validate_packed(copy)]
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith(f"WARNING {copy / LOCK_NAME}: `clevr-remv pack` (pid {holder.pid} on host ")
        assert "is writing this folder now" in warnings[0]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert "was killed" in validate_packed(copy)[0].message
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert not (copy / LOCK_NAME).exists() and validate_packed(copy) == []


def test_shards_of_a_subset_the_manifest_lost_are_reported_and_packing_again_lists_them(tiny_dataset, packed, tmp_path):
    copy = shutil.copytree(packed, tmp_path / "packed")
    _edit_manifest(copy, lambda manifest: manifest["subsets"].pop("center"))
    problems = validate_packed(copy)
    assert [(problem.path, problem.severity) for problem in problems] == [(str(copy / "center"), "warning")]
    assert "shard(s) of subset 'center', which manifest.json does not list" in problems[0].message
    assert f"clevr-remv pack --data {tiny_dataset} --out {copy} --split all --views center`" in problems[0].message
    pack_dataset(tiny_dataset, copy, views="center")
    assert validate_packed(copy) == []


def test_after_an_interrupted_pack_validate_says_to_pack_again_which_cleans_up(tiny_dataset, tmp_path, monkeypatch):
    out = tmp_path / "packed"
    real = pack_module.write_manifest
    calls = []

    def dies_after_the_first_shard(*args):
        calls.append(1)
        if len(calls) == 2:  # the first shard is complete but not yet listed
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(pack_module, "write_manifest", dies_after_the_first_shard)
    with pytest.raises(KeyboardInterrupt):
        pack_dataset(tiny_dataset, out, views="u1_v1,u3_v3", shard_size=SMALL)
    monkeypatch.undo()
    shutil.copy(out / "u1_v1+u3_v3/train-000000.tar", out / "u1_v1+u3_v3/train-000042.tar")
    strays = [problem for problem in validate_packed(out) if problem.severity == "warning"]
    assert [Path(problem.path).name for problem in strays] == ["train-000000.tar", "train-000042.tar"]
    for problem in strays:
        assert "left by an interrupted `clevr-remv pack`; rerun `clevr-remv pack" in problem.message
        assert "--split train --views u1_v1+u3_v3`" in problem.message and "move it out" not in problem.message
    pack_dataset(tiny_dataset, out, views="u1_v1+u3_v3", shard_size=SMALL)  # the folder's name, as validate says
    assert validate_packed(out) == [] and not (out / "u1_v1+u3_v3/train-000042.tar").exists()


def test_pack_with_a_listed_scene_missing_says_to_generate_it_again(tiny_dataset_copy, tmp_path):
    shutil.rmtree(tiny_dataset_copy / "scenes" / "000001")
    result = CliRunner().invoke(main, ["pack", "--data", str(tiny_dataset_copy), "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "not complete on disk; rerun `clevr-remv generate --out" in result.output
    assert "rerun `clevr-remv split`" not in result.output and not (tmp_path / "p").exists()


def test_validate_of_a_packed_folder_without_its_manifest_says_what_it_is(tiny_dataset, packed, tmp_path):
    copy = shutil.copytree(packed, tmp_path / "packed")
    (copy / "manifest.json").unlink()
    result = CliRunner().invoke(main, ["validate", "--data", str(copy)])
    assert result.exit_code == 1
    assert f"ERROR {copy / 'manifest.json'}: missing; {copy} is a packed folder" in result.output
    assert f"`clevr-remv pack --data DIR --out {copy} --views V`" in result.output
    assert "not a CLEVR-REMV dataset" not in result.output
    pack_dataset(tiny_dataset, copy, views="all", shard_size=SMALL)  # as the message says
    pack_dataset(tiny_dataset, copy, views="center")
    assert validate_packed(copy) == []


def test_unpack_checks_the_scene_lists_before_writing_anything(tiny_dataset, tmp_path):
    packed = tmp_path / "packed"
    pack_dataset(tiny_dataset, packed, views="all", shard_size="1GB")  # train: one shard of scenes 0, 2, 5

    def swap(manifest):
        manifest["subsets"]["all"]["shards"][0]["scenes"][:2] = manifest["subsets"]["all"]["shards"][0]["scenes"][1::-1]

    def drop(manifest):
        manifest["subsets"]["all"]["shards"][0]["scenes"].pop()

    for edit in (swap, drop):
        copy = shutil.copytree(packed, tmp_path / edit.__name__)
        _edit_manifest(copy, edit)
        out = tmp_path / f"unpacked-{edit.__name__}"
        result = CliRunner().invoke(main, ["unpack", "--data", str(copy), "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert f"{copy / 'manifest.json'}: shard all/train-000000.tar holds scenes " in result.output
        assert "field 'scenes' lists" in result.output and "wrong folders" in result.output
        assert not out.exists()
