"""`clevr-remv pack`: write a dataset's scenes as checksummed tar shards, resumably.

Shards are planned per split from the files' sizes: scenes in ascending order, a new shard when the
next scene would take the shard past ``--shard-size``, so the same dataset, views and size always
give the same shards. After each shard the manifest is rewritten (the split marked incomplete until
its last shard is written), so an interrupted run resumes with the same command: shards that are
present and match their manifest record (size and SHA-256, shard and index) are kept, the others
written again.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import time
from pathlib import Path

from tqdm import tqdm

from clevr_remv import __version__
from clevr_remv.dataset import outdir
from clevr_remv.dataset.atomic import TMP_PREFIX, atomic_path, write_text_atomic
from clevr_remv.dataset.croissant import write_croissant
from clevr_remv.dataset.leases import LockHeld, exclusive
from clevr_remv.dataset.packed.card import write_card
from clevr_remv.dataset.packed.layout import (
    DEFAULT_SHARD_SIZE,
    FORMAT,
    LOCK_NAME,
    META_DIR,
    PLAIN_NAME,
    ROOT_FILES,
    VERSION,
    format_size,
    index_name,
    member_path,
    parse_size,
    parse_views,
    sample_fields,
    scene_key,
    shard_name,
)
from clevr_remv.dataset.packed.manifest import manifest_path, read_manifest, write_manifest
from clevr_remv.dataset.packed.tarshard import archive_bytes, file_sha256, member_bytes, write_shard
from clevr_remv.dataset.splits import SPLIT_NAMES, split_scene_ids
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.schemas import validate


@dataclasses.dataclass
class SplitReport:
    """What one run did to one split: shards written and kept, samples, bytes of all its shards."""

    split: str
    written: int = 0
    kept: int = 0
    samples: int = 0
    bytes: int = 0


def pack_dataset(
    data, out, split: str = "all", views: str = "all", shard_size=DEFAULT_SHARD_SIZE, progress: bool = False
) -> tuple:
    """Pack ``split`` ("train", "val", "test" or "all") of the dataset folder ``data`` with ``views``
    (center, corners, all or view names) into the packed folder ``out``; return (subset name, list of
    `SplitReport`). Re-running writes only missing or damaged shards."""
    store = DatasetStore(data)
    store.require_finished_refexps()
    size = parse_size(shard_size)
    name, view_list = parse_views(views, store.grid)
    passes = list(store.passes)
    fields = sample_fields(view_list, passes)
    splits = _splits_to_pack(store, split)
    out = outdir.check_output_dir(out, "pack", {"--data": data})
    meta = _meta_files(store)
    plans = {split_name: _plan(store, scenes, view_list, passes, size) for split_name, scenes in splits.items()}
    if outdir.read_manifest(out) is None:
        outdir.write_manifest(out, "pack")  # a new folder: marked as pack's before its lock file appears
    with _only_pack_of(out):
        manifest = _start_manifest(store, out, meta)
        _start_subset(manifest, out, name, view_list, passes, fields, size)
        reports = _pack(store, out, meta, manifest, name, splits, plans, progress)
    return name, reports


@contextlib.contextmanager
def _only_pack_of(out: Path):
    """Run the body as the one `clevr-remv pack` writing ``out`` (a lock file that a crashed or
    killed run leaves free); ClevrRemvError naming the other run when one is at work."""
    try:
        with exclusive(out / LOCK_NAME):
            yield
    except LockHeld as held:
        owner = held.owner
        who = (
            f"pid {owner.get('pid')} on host {owner.get('host')}, run {owner.get('run')}, started "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(owner['started']))}"
            if isinstance(owner.get("started"), (int, float))
            else "just starting"
        )
        raise ClevrRemvError(
            f"--out {out}: another `clevr-remv pack` is writing this folder now ({who}; it holds "
            f"{held.path}); two packs into one folder would lose each other's shards: wait for it to "
            "end and run this pack again, or pack into another --out"
        ) from None


def _pack(store, out: Path, meta: list, manifest: dict, name: str, splits: dict, plans: dict, progress: bool) -> list:
    """Write the meta files, then every planned shard of ``splits`` into subset ``name``; the reports."""
    subset = manifest["subsets"][name]
    fields = subset["fields"]
    for entry in meta:
        target = out / entry["name"]
        if not target.is_file() or file_sha256(target) != entry["sha256"]:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                tmp.write_bytes((store.root / target.name).read_bytes())
    (out / name).mkdir(exist_ok=True)
    for leftover in (out / name).glob(TMP_PREFIX + "*"):
        leftover.unlink()  # a shard or index whose writing was killed
    for split_name, scenes in splits.items():
        subset["splits"][split_name] = {"scenes": len(scenes), "complete": False}
    write_manifest(out, manifest)

    bar = tqdm(total=sum(map(len, splits.values())), unit="scene", desc="pack", disable=not progress)
    reports = []
    with bar:
        for split_name, plan in plans.items():
            reports.append(_pack_split(store, out, manifest, name, split_name, plan, fields, bar))
    write_card(out, manifest)
    write_croissant(out, force=True)  # croissant.json beside the card, rewritten with it
    return reports


def _splits_to_pack(store: DatasetStore, split: str) -> dict:
    """{split name: scene ids} for ``split`` ("all": every split of splits.json)."""
    splits = store.load_splits()["splits"]
    if split == "all":
        listed = {scene for members in splits.values() for scene in members}
        outside = sorted(set(store.scene_ids()) - listed)
        if outside:
            raise ClevrRemvError(
                f"{store.splits_path}: scenes {outside[:5]} are in no split, so `--split all` would "
                f"leave them out; run `clevr-remv split --data {store.root}` again first"
            )
        names = list(splits)
    else:
        names = [split]
    for name in names:
        if not PLAIN_NAME.fullmatch(name):
            raise ClevrRemvError(
                f"{store.splits_path}: split {name!r} cannot be part of a shard's file name; rename it in "
                "that file (letters, digits and _ + = - . only, not starting with '.')"
            )
    return {name: split_scene_ids(store, name) for name in names}


def _meta_files(store: DatasetStore) -> list:
    """Records of the dataset root's own files (dataset.json, splits.json) as meta/ will hold them."""
    entries = []
    for file_name in ROOT_FILES:
        data = (store.root / file_name).read_bytes()
        entries.append(
            {"name": f"{META_DIR}/{file_name}", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
    return entries


def _start_manifest(store: DatasetStore, out: Path, meta: list) -> dict:
    """The existing manifest of ``out`` (checked to come from this very dataset) or a new one."""
    if not manifest_path(out).is_file():
        return {
            "format": FORMAT,
            "version": VERSION,
            "packer": f"clevr-remv {__version__}",
            "source": str(store.root.resolve()),
            "dataset": store.info(),
            "meta": meta,
            "subsets": {},
        }
    manifest = read_manifest(out)
    if manifest["meta"] != meta:
        changed = [entry["name"] for entry, now in zip(manifest["meta"], meta, strict=False) if entry != now]
        raise ClevrRemvError(
            f"{manifest_path(out)}: {out} was packed from a dataset whose "
            f"{', '.join(Path(name).name for name in changed) or 'meta files'} differ(s) from "
            f"{store.root}'s "
            "(another dataset, or this one changed since); pack into a new --out folder"
        )
    return manifest


def _start_subset(manifest: dict, out: Path, name: str, views: list, passes: list, fields: list, size: int) -> dict:
    subset = manifest["subsets"].get(name)
    if subset is None:
        subset = {
            "views": [list(view) for view in views],
            "passes": passes,
            "fields": fields,
            "shard_size": size,
            "splits": {},
            "shards": [],
        }
        manifest["subsets"][name] = subset
    elif subset["shard_size"] != size:
        raise ClevrRemvError(
            f"--shard-size: {manifest_path(out)} holds subset {name!r} packed with "
            f"--shard-size {subset['shard_size']} bytes ({format_size(subset['shard_size'])}); "
            "pass that size to resume or extend it, or pack into a new --out folder"
        )
    return subset


def _sources(store: DatasetStore, scene: int, views: list, passes: list) -> list:
    """The files of one sample, in field order."""
    sources = [store.scene_json_path(scene), store.refexps_path(scene)]
    readers = {"rgb": store.rgb_path, "index": store.index_path, "depth": store.depth_path}
    for u, v in views:
        sources += [readers[kind](scene, u, v) for kind in ("rgb", "index", *passes)]
    return sources


def _plan(store: DatasetStore, scenes: list, views: list, passes: list, size: int) -> list:
    """[(scenes of the shard, shard bytes)] for one split: consecutive scenes while they fit."""
    plan, current, current_bytes = [], [], 0
    for scene in scenes:
        try:
            sample = sum(member_bytes(os.stat(path).st_size) for path in _sources(store, scene, views, passes))
        except FileNotFoundError as error:
            raise ClevrRemvError(
                f"{error.filename}: missing, so scene {scene} cannot be packed; run `clevr-remv "
                f"validate --data {store.root}` and regenerate the broken scenes"
            ) from error
        if scene == scenes[0]:  # unpack puts members back by their field names: the two layouts must agree
            relative = [
                path.relative_to(store.scene_dir(scene)).as_posix() for path in _sources(store, scene, views, passes)
            ]
            assert relative == [member_path(field) for field in sample_fields(views, passes)], relative
        if current and archive_bytes(current_bytes + sample) > size:
            plan.append((current, archive_bytes(current_bytes)))
            current, current_bytes = [], 0
        current.append(scene)
        current_bytes += sample
    if current:
        plan.append((current, archive_bytes(current_bytes)))
    return plan


def _pack_split(store, out: Path, manifest: dict, name: str, split: str, plan: list, fields: list, bar) -> SplitReport:
    subset = manifest["subsets"][name]
    old = {shard["name"]: shard for shard in subset["shards"] if shard["split"] == split}
    records = []
    report = SplitReport(split)
    views = [tuple(view) for view in subset["views"]]
    for number, (scenes, _) in enumerate(plan):
        shard = shard_name(name, split, number)
        record = old.get(shard)
        if record is not None and record["scenes"] == scenes and _intact(out, record):
            bar.update(len(scenes))
            report.kept += 1
        else:
            bar.set_postfix_str(shard)
            samples = ((scene_key(scene), _sources(store, scene, views, subset["passes"])) for scene in scenes)
            record = _write(out, shard, split, scenes, _advancing(samples, bar), fields)
            report.written += 1
        records.append(record)
        report.samples += record["samples"]
        report.bytes += record["bytes"]
        subset["shards"] = _ordered([s for s in subset["shards"] if s["name"] != shard] + [record])
        write_manifest(out, manifest)
    _remove_unplanned(out / name, split, {Path(record["name"]).name.removesuffix(".tar") for record in records})
    subset["shards"] = _ordered([s for s in subset["shards"] if s["split"] != split] + records)
    subset["splits"][split]["complete"] = True
    write_manifest(out, manifest)
    return report


def _remove_unplanned(folder: Path, split: str, planned: set) -> None:
    """Remove the shards of ``split`` (and their indexes) in the subset folder ``folder`` that are
    not ``planned`` (shard names without .tar): those of older or interrupted runs. Only files named
    as pack names them, found by listing the folder, are removed (never what manifest.json names)."""
    pattern = re.compile(rf"({re.escape(split)}-\d{{6}})\.(tar|idx\.json)")
    for path in folder.iterdir():
        match = pattern.fullmatch(path.name)
        if match and match.group(1) not in planned and (path.is_symlink() or not path.is_dir()):
            path.unlink()


def _ordered(shards: list) -> list:
    """Shard records by split (train, val, test, then any other) and name."""
    order = {name: i for i, name in enumerate(SPLIT_NAMES)}
    return sorted(shards, key=lambda shard: (order.get(shard["split"], len(order)), shard["split"], shard["name"]))


def _advancing(samples, bar):
    """Yield ``samples``, moving ``bar`` on by one after each."""
    for sample in samples:
        yield sample
        bar.update(1)


def _write(out: Path, shard: str, split: str, scenes: list, samples, fields: list) -> dict:
    written = write_shard(out / shard, samples, fields)
    index = written["index"]
    validate(index, "packed_index", out / index_name(shard))
    text = json.dumps(index, separators=(",", ":"))
    write_text_atomic(out / index_name(shard), text)
    encoded = text.encode("utf-8")
    return {
        "name": shard,
        "split": split,
        "samples": len(index["samples"]),
        "bytes": written["bytes"],
        "sha256": written["sha256"],
        "scenes": scenes,
        "index": {"name": index_name(shard), "bytes": len(encoded), "sha256": hashlib.sha256(encoded).hexdigest()},
    }


def _intact(out: Path, record: dict) -> bool:
    """Whether a shard and its index on disk match their manifest record (size and SHA-256)."""
    for entry in (record["index"], record):
        path = out / entry["name"]
        if not path.is_file() or path.stat().st_size != entry["bytes"] or file_sha256(path) != entry["sha256"]:
            return False
    return True
