"""`clevr-remv validate` of a packed folder: every shard against the manifest.

Checks: the manifest (readable, this layout version, schema); meta/ files and every shard and
index present with the size and SHA-256 the manifest records; each shard's tar headers against
its index (member names, offsets, sizes) and the manifest's sample count and scenes; without
``quick``, every member decoded (JSON parsed, PNG pixels read). Unfinished splits are errors;
leftover temporary files of a killed `pack`, tar files and subset folders the manifest does not
list, and a pack at work on the folder (its lock file) are warnings.
"""

import io
import json
import multiprocessing
import re
import tarfile
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from clevr_remv.dataset.atomic import TMP_PREFIX
from clevr_remv.dataset.images import IMAGE_ERRORS
from clevr_remv.dataset.leases import lock_holder
from clevr_remv.dataset.packed.layout import LOCK_NAME, META_DIR, PLAIN_NAME, SPLIT_CHOICES, scene_key
from clevr_remv.dataset.packed.manifest import manifest_path, read_manifest
from clevr_remv.dataset.packed.tarshard import file_sha256, member_headers
from clevr_remv.dataset.problems import ERROR, WARNING, Problem
from clevr_remv.errors import ClevrRemvError
from clevr_remv.schemas import read_json
from clevr_remv.wording import plural


def validate_packed(root, quick: bool = False, workers: int = 1, progress: bool = False) -> list:
    """The problems (`Problem` records of `clevr_remv.dataset.problems`) of the packed folder ``root``."""
    root = Path(root)
    try:
        manifest = read_manifest(root)
    except ClevrRemvError as error:
        return [Problem(str(manifest_path(root)), str(error).removeprefix(f"{manifest_path(root)}: "))]
    problems = _lock_problems(root) + [
        problem
        for entry in manifest["meta"]
        for problem in _check_file(root, entry, _repack(manifest, root, "all", "all"))
    ]
    problems += _unlisted_subsets(root, manifest)
    tasks = []
    for name, subset in manifest["subsets"].items():
        for split, state in subset["splits"].items():
            if not state["complete"]:
                problems.append(
                    Problem(
                        str(root / name),
                        f"split {split!r} was not packed to the end (the run "
                        f"stopped); {_repack(manifest, root, split, name)}",
                    )
                )
        problems += _strays(root, manifest, name)
        tasks += [
            (root, shard, subset["fields"], quick, _repack(manifest, root, shard["split"], name))
            for shard in subset["shards"]
        ]
    bar = dict(total=len(tasks), unit="shard", desc="validate", disable=not progress)
    if workers <= 1 or len(tasks) <= 1:
        results = [_check_shard_task(task) for task in tqdm(tasks, **bar)]
    else:
        with multiprocessing.Pool(workers) as pool:
            results = list(tqdm(pool.imap(_check_shard_task, tasks), **bar))
    return problems + [problem for result in results for problem in result]


def _pack_command(manifest: dict, root: Path, split: str, subset: str) -> str:
    split = split if split in SPLIT_CHOICES else "all"  # --split takes train, val, test or all
    return f"`clevr-remv pack --data {manifest['source']} --out {root} --split {split} --views {subset}`"


def _repack(manifest: dict, root: Path, split: str, subset: str) -> str:
    return f"rerun {_pack_command(manifest, root, split, subset)} (it rewrites only missing or damaged shards)"


def _strays(root: Path, manifest: dict, subset: str) -> list:
    """Leftover temporary files and unlisted shards in the folder of a listed subset."""
    folder = root / subset
    if not folder.is_dir():
        return []
    listed = {shard["name"] for shard in manifest["subsets"][subset]["shards"]}
    found = []
    for path in sorted(folder.iterdir()):
        shard = re.fullmatch(r"(.+)-\d{6}\.tar", path.name)
        if path.name.startswith(TMP_PREFIX):
            message = "leftover of an interrupted `clevr-remv pack`; rerun it (it removes these) or delete the file"
        elif path.suffix != ".tar" or f"{subset}/{path.name}" in listed:
            continue
        elif shard and PLAIN_NAME.fullmatch(shard.group(1)):
            message = (
                "a shard that manifest.json does not list (readers ignore it), left by an interrupted "
                f"`clevr-remv pack`; rerun {_pack_command(manifest, root, shard.group(1), subset)}: it writes "
                "the shard again and lists it, or removes it"
            )
        else:
            message = "a tar file that manifest.json does not list (readers ignore it); move it out of this folder"
        found.append(Problem(str(path), message, WARNING))
    return found


def _unlisted_subsets(root: Path, manifest: dict) -> list:
    """Folders of shards that manifest.json lists in no subset (a pack stopped before listing its
    subset, or one whose manifest another pack overwrote)."""
    found = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        shards = list(folder.glob("*.tar"))
        if folder.name in manifest["subsets"] or folder.name == META_DIR or not shards:
            continue
        found.append(
            Problem(
                str(folder),
                f"{len(shards)} shard(s) of subset {folder.name!r}, which manifest.json does not list (readers "
                f"ignore them); rerun {_pack_command(manifest, root, 'all', folder.name)} to pack and list "
                "it, or move the folder out of the packed folder",
                WARNING,
            )
        )
    return found


def _lock_problems(root: Path) -> list:
    """A pack at work on ``root`` now, or the lock file of one that was killed."""
    path = root / LOCK_NAME
    holder = lock_holder(path)
    if holder is not None:
        who = f" (pid {holder['pid']} on host {holder['host']})" if "pid" in holder else ""
        message = f"`clevr-remv pack`{who} is writing this folder now; validate again when it has ended"
    elif path.exists():
        message = "left by a `clevr-remv pack` that was killed; the next pack into this folder removes it, or delete it"
    else:
        return []
    return [Problem(str(path), message, WARNING)]


def _check_file(root: Path, entry: dict, fix: str) -> list:
    """Problems of one listed file: missing, other size, other SHA-256."""
    path = root / entry["name"]
    if not path.is_file():
        return [Problem(str(path), f"missing; {fix}")]
    size = path.stat().st_size
    if size != entry["bytes"]:
        return [
            Problem(
                str(path), f"{size} bytes, but manifest.json records {entry['bytes']} (truncated or damaged); {fix}"
            )
        ]
    if file_sha256(path) != entry["sha256"]:
        return [Problem(str(path), f"SHA-256 differs from manifest.json's (damaged); {fix}")]
    return []


def _check_shard_task(task: tuple) -> list:
    root, shard, fields, quick, fix = task
    problems = _check_file(root, shard, fix) + _check_file(root, shard["index"], fix)
    if problems:
        return problems
    path = root / shard["name"]
    index = read_json(root / shard["index"]["name"])
    expected = [
        (f"{sample['key']}.{field}", offset, size)
        for sample in index["samples"]
        for field, (offset, size) in zip(fields, sample["members"], strict=True)
    ]
    try:
        found = member_headers(path)
    except (tarfile.TarError, OSError) as error:
        return [Problem(str(path), f"cannot be read as a tar archive ({error}); {fix}")]
    if found != expected:
        wrong = next(
            (
                f"{have[0] if have else 'nothing'} where the index has {want[0]}"
                for have, want in zip(found + [None] * len(expected), expected, strict=False)
                if have != want
            ),
            f"{plural(len(found) - len(expected), 'member')} more than the index lists",
        )
        return [Problem(str(path), f"its members differ from {shard['index']['name']} (first: {wrong}); {fix}")]
    keys = [sample["key"] for sample in index["samples"]]
    if len(keys) != shard["samples"] or keys != [scene_key(scene) for scene in shard["scenes"]]:
        return [
            Problem(
                str(path),
                f"holds {plural(len(keys), 'sample')}, manifest.json records {shard['samples']} "
                f"(scenes {shard['scenes'][:5]}...); {fix}",
            )
        ]
    return [] if quick else _check_members(path, expected, fix)


def _check_members(path: Path, members: list, fix: str) -> list:
    """Decode every member: JSON parsed, PNG pixels read."""
    problems = []
    with open(path, "rb") as file:
        for name, offset, size in members:
            file.seek(offset)
            data = file.read(size)
            try:
                if name.endswith(".json"):
                    json.loads(data)
                else:
                    with Image.open(io.BytesIO(data)) as image:
                        image.load()
            except (ValueError, *IMAGE_ERRORS) as error:
                problems.append(Problem(f"{path}:{name}", f"cannot be decoded ({error}); {fix}", ERROR))
    return problems
