"""manifest.json of a packed folder: read (version and schema checked), write, and look up."""

import json
import re
from pathlib import Path

from clevr_remv.dataset.atomic import write_text_atomic
from clevr_remv.dataset.packed import MANIFEST_NAME
from clevr_remv.dataset.packed.layout import FORMAT, META_DIR, ROOT_FILES, VERSION, index_name, shard_name
from clevr_remv.errors import ClevrRemvError
from clevr_remv.schemas import read_json, validate


def manifest_path(root) -> Path:
    return Path(root) / MANIFEST_NAME


def read_manifest(root) -> dict:
    """The manifest of the packed folder ``root``; ClevrRemvError naming the file and the fix when it
    is unreadable, of another format or version, or breaks its schema."""
    path = manifest_path(root)
    repack = "pack the dataset folder again with this clevr-remv: `clevr-remv pack --data DIR --out NEW_FOLDER`"
    if not path.exists() and (Path(root) / META_DIR).is_dir():
        raise ClevrRemvError(
            f"{path}: missing; {root} is a packed folder (`clevr-remv pack` wrote its {META_DIR}/ and shards), but "
            "without manifest.json, the list of its shards and their checksums, nothing can read or check them; "
            f"put manifest.json back from a copy, or pack the dataset again into this folder: `clevr-remv pack "
            f"--data DIR --out {root} --views V` for each subset folder V it holds"
        )
    document = read_json(path, fix=f"the manifest is damaged; {repack}")
    found = document.get("format") if isinstance(document, dict) else None
    if found != FORMAT:
        raise ClevrRemvError(
            f"{path}: not a clevr-remv packed manifest (format is {found!r}, expected {FORMAT!r}); "
            "pass a folder written by `clevr-remv pack`"
        )
    if document.get("version") != VERSION:
        raise ClevrRemvError(
            f"{path}: packed layout version {document.get('version')!r}, but this clevr-remv reads "
            f"version {VERSION}; install the clevr-remv that packed it (manifest field 'packer': "
            f"{document.get('packer')!r}), or {repack}"
        )
    validate(document, "packed_manifest", path, fix=f"the manifest is damaged; {repack}")
    for field, name, pattern, shown in _names(document):
        if not re.fullmatch(pattern, name):
            raise ClevrRemvError(
                f"{path}: field '{field}' is {name!r}, but `clevr-remv pack` names that file {shown}; "
                f"the manifest was edited or damaged, so none of its files is read or removed; {repack}"
            )
    return document


def _names(document: dict):
    """(field, name, pattern, pattern for people) of every file the manifest names: meta/ files,
    shards (``<subset>/<split>-NNNNNN.tar``) and the index beside each shard."""
    meta = [f"{META_DIR}/{name}" for name in ROOT_FILES]
    for number, entry in enumerate(document["meta"]):
        yield f"meta/{number}/name", entry["name"], "|".join(map(re.escape, meta)), " or ".join(meta)
    for subset_name, subset in document["subsets"].items():
        for number, shard in enumerate(subset["shards"]):
            field = f"subsets/{subset_name}/shards/{number}"
            prefix = shard_name(subset_name, shard["split"], 0).removesuffix("000000.tar")
            yield f"{field}/name", shard["name"], re.escape(prefix) + r"\d{6}\.tar", f"{prefix}NNNNNN.tar"
            index = index_name(shard["name"])
            yield f"{field}/index/name", shard["index"]["name"], re.escape(index), index


def write_manifest(root, document: dict) -> None:
    """Validate ``document`` and write it as ``root``/manifest.json atomically."""
    path = manifest_path(root)
    validate(document, "packed_manifest", path)
    write_text_atomic(path, json.dumps(document, indent=1))


def complete_splits(subset: dict) -> list:
    """Names of the subset's splits whose packing finished."""
    return [name for name, split in subset["splits"].items() if split["complete"]]


def views_of(subset: dict) -> list:
    return [tuple(view) for view in subset["views"]]


def shards_of(subset: dict, split: str) -> list:
    """The subset's shard records of ``split``, in order."""
    return [shard for shard in subset["shards"] if shard["split"] == split]


def choose_subset(manifest: dict, root, split: str, views, passes) -> str:
    """The name of the smallest subset (fewest views) that holds ``views`` and ``passes`` of a
    completely packed ``split``; ClevrRemvError with the pack command that would make one."""
    fitting = [
        (len(subset["views"]), name)
        for name, subset in manifest["subsets"].items()
        if split in complete_splits(subset)
        and set(views) <= set(views_of(subset))
        and set(passes) <= set(subset["passes"])
    ]
    if fitting:
        return min(fitting)[1]
    packed = (
        "; ".join(
            f"{name}: {', '.join(complete_splits(subset)) or 'no complete split'}"
            for name, subset in manifest["subsets"].items()
        )
        or "nothing"
    )
    names = ",".join(f"u{u}_v{v}" for u, v in views)
    raise ClevrRemvError(
        f"{manifest_path(root)}: no packed subset holds split {split!r} with views {names} "
        f"(packed: {packed}); pack them from the dataset folder: `clevr-remv pack --data "
        f"{manifest['source']} --out {root} --split {split} --views {names}` "
        "(or --views all), or read the dataset folder itself"
    )
