"""`clevr-remv unpack`: a packed folder back to a dataset folder, byte for byte.

It needs a subset holding every view of every split. Every shard is checked against its size and
SHA-256 before anything is written, so a damaged pack leaves no output; each scene folder is then
written whole and renamed into place, with the members' modification times; dataset.json and
splits.json come last. An interrupted unpack is resumed by the same command: a scene folder already
there is kept when its files equal the members (compared byte for byte, so no file needs flushing
to disk one by one), else written again.
"""

import os
import shutil
import tarfile
from pathlib import Path

from tqdm import tqdm

from clevr_remv.dataset import outdir
from clevr_remv.dataset.atomic import TMP_PREFIX, atomic_path
from clevr_remv.dataset.packed.layout import META_DIR, ROOT_FILES, member_path, scene_key
from clevr_remv.dataset.packed.manifest import complete_splits, manifest_path, read_manifest, views_of
from clevr_remv.dataset.packed.tarshard import BLOCK, file_sha256
from clevr_remv.dataset.store import scene_folder_name
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
            raise ClevrRemvError(
                f"{path}: missing or damaged (SHA-256 differs from manifest.json); "
                f"rerun `clevr-remv pack --data {manifest['source']} --out {packed}` to restore it"
            )
    out = outdir.check_output_dir(out, "unpack", {"--data": packed})
    shards = manifest["subsets"][name]["shards"]
    fields = manifest["subsets"][name]["fields"]
    _verify(packed, manifest, shards, progress)
    indexes = _indexes(packed, manifest, shards, fields)
    outdir.write_manifest(out, "unpack")
    written = kept = 0
    with tqdm(
        total=sum(shard["samples"] for shard in shards), unit="scene", desc="unpack", disable=not progress
    ) as bar:
        for shard, index in zip(shards, indexes, strict=True):
            shard_written, shard_kept = _unpack_shard(packed, manifest, shard, index, fields, out / "scenes", bar)
            written, kept = written + shard_written, kept + shard_kept
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
    raise ClevrRemvError(
        f"{manifest_path(packed)}: no subset holds every view of every split ({', '.join(splits)}), "
        "so the dataset folder cannot be rebuilt; pack the whole dataset: `clevr-remv pack --data "
        f"{manifest['source']} --out {packed} --split all --views all`"
    )


def _fix(packed: Path, manifest: dict, shard: dict) -> str:
    return (
        f"rerun `clevr-remv pack --data {manifest['source']} --out {packed} --split {shard['split']} --views all` "
        "to rewrite it (it rewrites only missing or damaged shards), then unpack again"
    )


def _verify(packed: Path, manifest: dict, shards: list, progress: bool) -> None:
    """Check every shard's size, then its SHA-256, against the manifest."""
    for shard in shards:
        path = packed / shard["name"]
        size = path.stat().st_size if path.is_file() else None
        if size != shard["bytes"]:
            found = "missing" if size is None else f"{size} bytes, manifest.json records {shard['bytes']} (truncated?)"
            raise ClevrRemvError(f"{path}: {found}; {_fix(packed, manifest, shard)}")
    with tqdm(
        total=sum(shard["bytes"] for shard in shards), unit="B", unit_scale=True, desc="verify", disable=not progress
    ) as bar:
        for shard in shards:
            if file_sha256(packed / shard["name"], bar.update) != shard["sha256"]:
                raise ClevrRemvError(
                    f"{packed / shard['name']}: SHA-256 differs from manifest.json's (damaged); "
                    f"{_fix(packed, manifest, shard)}"
                )


def _indexes(packed: Path, manifest: dict, shards: list, fields: list) -> list:
    """Every shard's member index, checked against the manifest before anything is written: its
    SHA-256, one member per field, and its keys, in order, the scenes the manifest lists for the
    shard; no scene in two shards, every scene of meta/splits.json in one."""
    source = manifest_path(packed)
    repack = f"pack the dataset again: `clevr-remv pack --data {manifest['source']} --out NEW_FOLDER --views all`"
    indexes, seen = [], {}
    for shard in shards:
        path, fix = packed / shard["index"]["name"], _fix(packed, manifest, shard)
        index = read_json(path, "packed_index", fix=fix)
        if file_sha256(path) != shard["index"]["sha256"]:
            raise ClevrRemvError(f"{path}: SHA-256 differs from manifest.json's (damaged); {fix}")
        keys = [sample["key"] for sample in index["samples"]]
        listed = [scene_key(scene) for scene in shard["scenes"]]
        if keys != listed or any(len(sample["members"]) != len(fields) for sample in index["samples"]):
            raise ClevrRemvError(
                f"{source}: shard {shard['name']} holds scenes {_short(keys)}, but field 'scenes' lists "
                f"{_short(listed)}; manifest.json or {path.name} was edited or damaged, and unpacking would put "
                f"scenes into the wrong folders; {repack}"
            )
        twice = [scene for scene in shard["scenes"] if scene in seen]
        if twice:
            raise ClevrRemvError(
                f"{source}: scene {twice[0]} is listed in shards {seen[twice[0]]} and {shard['name']}; "
                f"manifest.json was edited or damaged; {repack}"
            )
        seen.update(dict.fromkeys(shard["scenes"], shard["name"]))
        indexes.append(index)
    splits = read_json(packed / META_DIR / "splits.json")["splits"]
    missing = sorted({scene for members in splits.values() for scene in members} - set(seen))
    if missing:
        raise ClevrRemvError(f"{source}: no shard holds scene(s) {_short(missing)} of {META_DIR}/splits.json; {repack}")
    return indexes


def _short(items: list, limit: int = 5) -> str:
    return ", ".join(map(str, items[:limit])) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _unpack_shard(packed: Path, manifest: dict, shard: dict, index: dict, fields: list, scenes_dir: Path, bar) -> tuple:
    """Write the shard's scenes into ``scenes_dir``; return (written, kept). A scene folder already
    there (from an interrupted run) is kept when its files equal the members, else written again."""
    path = packed / shard["name"]
    fix = _fix(packed, manifest, shard)
    written = kept = 0
    scenes_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "rb") as tar:
        for scene, sample in zip(shard["scenes"], index["samples"], strict=True):
            files = {}
            for field, (offset, size) in zip(fields, sample["members"], strict=True):
                tar.seek(offset - BLOCK)
                header = tarfile.TarInfo.frombuf(tar.read(BLOCK), "utf-8", "surrogateescape")
                if header.name != f"{sample['key']}.{field}" or header.size != size:
                    raise ClevrRemvError(
                        f"{path}: member {header.name!r} at offset {offset - BLOCK} is not "
                        f"{sample['key']}.{field} as its index says; {fix}"
                    )
                files[member_path(field)] = (tar.read(size), header.mtime)
            final = scenes_dir / scene_folder_name(scene)
            if final.is_dir() and all(
                (final / name).is_file() and (final / name).read_bytes() == data for name, (data, _) in files.items()
            ):
                kept += 1
            else:
                _write_scene(final, files)
                written += 1
            bar.update(1)
    return written, kept


def _write_scene(final: Path, files: dict) -> None:
    """Write a scene folder whole into a temporary folder beside ``final``, then rename it into
    place (replacing a damaged copy left by an interrupted run)."""
    tmp = final.with_name(f"{TMP_PREFIX}{final.name}-unpack")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for name, (data, mtime) in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.utime(target, (mtime, mtime))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
