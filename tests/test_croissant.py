"""Croissant metadata (`clevr-remv croissant` and `pack`): mlcroissant validates the files of a
dataset folder and of its packed form and reads their records offline, equal to the dataset's own
files; the command refuses to write over the dataset or an existing file."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.dataset.croissant import CROISSANT_NAME, write_croissant
from clevr_remv.dataset.packed.pack import pack_dataset
from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import DatasetStore

mlc = pytest.importorskip("mlcroissant")
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")  # in rdflib


@pytest.fixture(autouse=True)
def private_extract_cache(tmp_path, monkeypatch):
    """mlcroissant extracts a shard once into its cache, under a name from the shard's relative path
    alone, and reuses it: another dataset's shard of the same name would be read. Each test gets its
    own cache (CROISSANT_CACHE is read when mlcroissant is imported, so the module constant is set)."""
    from etils import epath  # mlcroissant's path type (it walks folders with epath.Path.walk)

    monkeypatch.setattr(
        "mlcroissant._src.operation_graph.operations.extract.EXTRACT_PATH", epath.Path(tmp_path / "extract")
    )


@pytest.fixture(scope="module")
def folder(tiny_dataset, tmp_path_factory):
    """A copy of the tiny dataset with its croissant.json (written by the command)."""
    root = shutil.copytree(tiny_dataset, tmp_path_factory.mktemp("croissant") / "dataset")
    result = CliRunner().invoke(main, ["croissant", "--data", str(root)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def packed(tiny_dataset, tiny_depth_dataset, tmp_path_factory):
    """The tiny dataset packed (every view in shards of about one scene, and the centre views), and
    the depth dataset packed (corners); pack writes croissant.json."""
    out = tmp_path_factory.mktemp("croissant-packed")
    pack_dataset(tiny_dataset, out / "packed", views="all", shard_size="60kB")
    pack_dataset(tiny_dataset, out / "packed", views="center")
    depth = shutil.copytree(tiny_depth_dataset, out / "depth")
    write_splits(depth, "0.5,0.5,0", seed=0)
    pack_dataset(depth, out / "depth-packed", views="corners")
    return out


def records(croissant, record_set: str) -> list:
    """The records of ``record_set``, read by a Dataset of their own (an mlcroissant 1.1.1 Dataset
    yields a record set of files in tar archives once: read again, it is empty)."""
    dataset = mlc.Dataset(jsonld=str(croissant))
    return [{key.split("/", 1)[1]: value for key, value in record.items()} for record in dataset.records(record_set)]


def valid(croissant) -> list:
    """The record set ids of ``croissant`` after checking that mlcroissant finds no error or warning."""
    metadata = mlc.Dataset(jsonld=str(croissant)).metadata
    assert not metadata.issues.errors and not metadata.issues.warnings, metadata.issues.report()
    return [record_set.uuid for record_set in metadata.record_sets]


def image(record_image) -> np.ndarray:
    return np.asarray(record_image)


def test_the_folder_form_validates_and_its_expressions_are_those_of_refexps_json(folder):
    store = DatasetStore(folder)
    assert valid(folder / CROISSANT_NAME) == ["config", "expressions", "views", "index_masks"]
    expected = sorted(
        (scene, e["id"], e["text"], e["referent"], e["views"])
        for scene in store.scene_ids()
        for e in store.load_refexps(scene)["expressions"]
    )
    found = sorted(
        (r["scene"], r["id"], r["text"].decode(), r["referent"], r["views"])
        for r in records(folder / CROISSANT_NAME, "expressions")
    )
    assert found == expected and len(found) == store.info()["counts"]["expressions"] > 0
    document = json.loads((folder / CROISSANT_NAME).read_text())
    assert document["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert "chen2023multimodal" in document["citeAs"] and document["creator"]["name"] == "J. Chen"
    assert document["version"] == store.info()["generator_version"]
    dataset_json = next(entry for entry in document["distribution"] if entry["@id"] == "dataset.json")
    assert dataset_json["sha256"] == hashlib.sha256(store.dataset_json_path.read_bytes()).hexdigest()


def test_the_folder_form_gives_the_rig_and_every_view_image(folder):
    store = DatasetStore(folder)
    (config,) = records(folder / CROISSANT_NAME, "config")
    info = store.info()
    for name in ("grid", "baseline", "lens", "width", "height", "seed"):
        assert config[name] == info["config"][name], name
    assert config["rig"].decode() == info["config"]["rig"]
    views = {(r["scene"], r["u"], r["v"]): r["rgb"] for r in records(folder / CROISSANT_NAME, "views")}
    masks = {(r["scene"], r["u"], r["v"]): r["index"] for r in records(folder / CROISSANT_NAME, "index_masks")}
    everything = {(scene, u, v) for scene in store.scene_ids() for u, v in store.views()}
    assert set(views) == set(masks) == everything
    for scene, u, v in everything:
        assert np.array_equal(image(views[scene, u, v]), store.read_rgb(scene, u, v))
        # mlcroissant gives a PNG read from a folder as 8-bit RGB: the index in every channel
        assert np.array_equal(image(masks[scene, u, v])[..., 0], store.read_index(scene, u, v))


def test_a_generalized_dataset_gives_the_referents_of_every_expression(tiny_generalized_dataset, tmp_path):
    root = shutil.copytree(tiny_generalized_dataset, tmp_path / "dataset")
    store = DatasetStore(root)
    croissant = write_croissant(root)
    valid(croissant)
    expected = sorted(
        (scene, e["id"], e["referents"])
        for scene in store.scene_ids()
        for e in store.load_refexps(scene)["expressions"]
    )
    found = sorted((r["scene"], r["id"], r["referents"]) for r in records(croissant, "expressions"))
    assert found == expected
    assert {len(referents) for *_, referents in found} >= {0, 1, 2}


def test_pack_writes_a_croissant_file_whose_refexps_and_images_are_the_datasets(tiny_dataset, packed):
    store = DatasetStore(tiny_dataset)
    croissant = packed / "packed" / CROISSANT_NAME
    assert valid(croissant) == [
        "config",
        "refexps",
        "views-all",
        "index_masks-all",
        "views-center",
        "index_masks-center",
    ]
    document = json.loads(croissant.read_text())
    manifest = json.loads((packed / "packed" / "manifest.json").read_text())
    shards = {entry["@id"]: entry["sha256"] for entry in document["distribution"] if entry["@id"].endswith(".tar")}
    assert shards == {s["name"]: s["sha256"] for subset in manifest["subsets"].values() for s in subset["shards"]}
    # the refexps of the subset with the fewest views: the cheapest to extract
    assert any(
        entry["@id"] == "center-refexps-json" for entry in document["distribution"] if entry["@type"] == "cr:FileSet"
    )
    refexps = {r["scene"]: r["refexps"] for r in records(croissant, "refexps")}
    assert refexps == {scene: store.refexps_path(scene).read_bytes() for scene in store.scene_ids()}
    masks = {(r["scene"], r["u"], r["v"]): r["index"] for r in records(croissant, "index_masks-all")}
    assert set(masks) == {(scene, u, v) for scene in store.scene_ids() for u, v in store.views()}
    for (scene, u, v), mask in masks.items():
        assert mask.mode == "L" and np.array_equal(image(mask), store.read_index(scene, u, v))
    centre = {(r["scene"], r["u"], r["v"]): r["rgb"] for r in records(croissant, "views-center")}
    assert set(centre) == {(scene, *store.center) for scene in store.scene_ids()}
    for (scene, u, v), rgb in centre.items():
        assert np.array_equal(image(rgb), store.read_rgb(scene, u, v))


def test_the_packed_depth_maps_keep_their_16_bit_values(tiny_depth_dataset, packed):
    store = DatasetStore(tiny_depth_dataset)
    croissant = packed / "depth-packed" / CROISSANT_NAME
    assert "depth_maps-corners" in valid(croissant)
    (config,) = records(croissant, "config")
    assert config["depth_scale"] == store.info()["depth_scale"] and config["rig"] == b"convergent"
    depths = records(croissant, "depth_maps-corners")
    assert len(depths) == len(store.scene_ids()) * 4
    for record in depths:
        with Image.open(store.depth_path(record["scene"], record["u"], record["v"])) as png:
            assert record["depth"].mode == png.mode == "I;16"
            assert np.array_equal(image(record["depth"]), np.asarray(png))


def test_the_command_writes_into_the_dataset_only_croissant_json_and_never_over_a_file(folder, packed, tmp_path):
    runner = CliRunner()
    before = (folder / CROISSANT_NAME).read_bytes()
    again = runner.invoke(main, ["croissant", "--data", str(folder)])
    assert again.exit_code == 2 and "croissant.json: exists; pass --force" in again.output
    assert runner.invoke(main, ["croissant", "--data", str(folder), "--force"]).exit_code == 0
    assert (folder / CROISSANT_NAME).read_bytes() == before  # the same dataset, the same document
    dataset_json = (folder / "dataset.json").read_bytes()
    inside = runner.invoke(main, ["croissant", "--data", str(folder), "--out", str(folder / "dataset.json"), "--force"])
    assert inside.exit_code == 2 and "lies inside --data" in inside.output
    assert (folder / "dataset.json").read_bytes() == dataset_json
    wrong = runner.invoke(main, ["croissant", "--data", str(folder), "--out", str(tmp_path / "meta.txt")])
    assert wrong.exit_code == 2 and "unsupported extension '.txt'" in wrong.output
    outside = runner.invoke(main, ["croissant", "--data", str(folder), "--out", str(tmp_path / "remv.jsonld")])
    assert outside.exit_code == 0 and "put it there" in outside.output
    assert json.loads((tmp_path / "remv.jsonld").read_bytes()) == json.loads(before)
    repacked = runner.invoke(main, ["croissant", "--data", str(packed / "packed"), "--force"])
    assert repacked.exit_code == 0 and "refexps, views-all" in repacked.output
    missing = runner.invoke(main, ["croissant", "--data", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "not a CLEVR-REMV dataset" in missing.output
