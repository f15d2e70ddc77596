"""`clevr-remv unpack`: a packed folder back to a dataset folder, byte for byte.

It needs a subset holding every view of every split. Each shard is checked against its SHA-256
before its scenes are written; each scene folder is written whole and renamed into place (as
`generate` writes them), with the members' modification times; dataset.json and splits.json come
last, so an interrupted unpack is resumed by the same command (scenes already there are kept).
"""
import os
import tarfile
from pathlib import Path

from tqdm import tqdm

from clevr_remv.dataset import outdir
from clevr_remv.dataset.atomic import atomic_path
from clevr_remv.dataset.packed.layout import ROOT_FILES, member_path
from clevr_remv.dataset.packed.manifest import complete_splits, manifest_path, read_manifest, views_of
from clevr_remv.dataset.packed.tarshard import BLOCK, file_sha256
from clevr_remv.dataset.store import atomic_scene_dir, scene_folder_name
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import select_views
from clevr_remv.schemas import read_json


def unpack_dataset(packed, out, progress: bool = False) -> tuple:
    """Write the dataset folder ``out`` from the packed folder ``packed``; return (scenes written,
    scenes that an earlier, interrupted unpack had already written)."""
    packed = Path(packed)
    manifest = read_manifest(packed)
    name = _full_subset(manifest, packed)
    for entry in manifest["meta"]:
        path = packed / entry["name"]
        if not path.is_file() or file_sha256(path) != entry["sha256"]:
            raise ClevrRemvError(f"{path}: missing or damaged (SHA-256 differs from manifest.json); "
                                 f"rerun `clevr-remv pack --data {manifest['source']} --out {packed}` to restore it")
    out = outdir.check_output_dir(out, "unpack", {"--data": packed})
    outdir.write_manifest(out, "unpack")
    shards = manifest["subsets"][name]["shards"]
    fields = manifest["subsets"][name]["fields"]
    written = kept = 0
    with tqdm(total=sum(shard["samples"] for shard in shards), unit="scene", desc="unpack",
              disable=not progress) as bar:
        for shard in shards:
            done = [scene for scene in shard["scenes"]
                    if (out / "scenes" / scene_folder_name(scene) / "scene.json").is_file()]
            kept += len(done)
            bar.update(len(done))
            if len(done) < len(shard["scenes"]):
                written += _unpack_shard(packed, manifest, shard, fields, out, set(done), bar)
    for file_name in ROOT_FILES:  # last: the folder is a dataset only once every scene is in place
        with atomic_path(out / file_name) as tmp:
            tmp.write_bytes((packed / "meta" / file_name).read_bytes())
    (out / outdir.MANIFEST).unlink()
    return written, kept


def _full_subset(manifest: dict, packed: Path) -> str:
    """The subset with every view and every split of meta/splits.json packed completely."""
    splits = list(read_json(packed / "meta" / "splits.json")["splits"])
    grid = select_views("all", manifest["dataset"]["config"]["grid"])
    for name, subset in manifest["subsets"].items():
        if views_of(subset) == grid and set(splits) <= set(complete_splits(subset)):
            return name
    raise ClevrRemvError(f"{manifest_path(packed)}: no subset holds every view of every split ({', '.join(splits)}), "
                         "so the dataset folder cannot be rebuilt; pack the whole dataset: `clevr-remv pack --data "
                         f"{manifest['source']} --out {packed} --split all --views all`")


def _unpack_shard(packed: Path, manifest: dict, shard: dict, fields: list, out: Path, done: set, bar) -> int:
    path = packed / shard["name"]
    fix = f"rerun `clevr-remv pack --data {manifest['source']} --out {packed} --split {shard['split']} --views all`"
    if not path.is_file() or file_sha256(path) != shard["sha256"]:
        raise ClevrRemvError(f"{path}: missing or damaged (SHA-256 differs from manifest.json); {fix} to rewrite it, "
                             "then unpack again (scenes already unpacked are kept)")
    index = read_json(packed / shard["index"]["name"], "packed_index", fix=fix)
    written = 0
    with open(path, "rb") as tar:
        for scene, sample in zip(shard["scenes"], index["samples"], strict=True):
            if scene in done:
                continue
            with atomic_scene_dir(out / "scenes", scene) as tmp:
                for field, (offset, size) in zip(fields, sample["members"], strict=True):
                    tar.seek(offset - BLOCK)
                    header = tarfile.TarInfo.frombuf(tar.read(BLOCK), "utf-8", "surrogateescape")
                    if header.name != f"{sample['key']}.{field}" or header.size != size:
                        raise ClevrRemvError(f"{path}: member {header.name!r} at offset {offset - BLOCK} is not "
                                             f"{sample['key']}.{field} as its index says; {fix}")
                    target = tmp / member_path(field)
                    target.parent.mkdir(exist_ok=True)
                    target.write_bytes(tar.read(size))
                    os.utime(target, (header.mtime, header.mtime))
            written += 1
            bar.update(1)
    return written
