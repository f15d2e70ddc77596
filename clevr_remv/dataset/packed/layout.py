"""Names inside a packed folder, and the pack options that choose them (views, shard size).

A sample is one scene under the key ``NNNNNN`` (its folder name); its members, in this order:
``scene.json``, ``refexps.json``, then for each packed view (v-major) ``u{u}_v{v}.rgb.png``,
``u{u}_v{v}.index.png`` and, in datasets with depth, ``u{u}_v{v}.depth.png``.
"""

import re

from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import VIEW_SETS, select_views, view_name

FORMAT = "clevr-remv-shards"
VERSION = 1
JSON_FIELDS = ("scene.json", "refexps.json")
IMAGE_PASSES = ("rgb", "index")  # always packed; optional passes (depth) follow when the dataset has them
META_DIR = "meta"
ROOT_FILES = ("dataset.json", "splits.json")  # copied into meta/ byte for byte
CARD_NAME = "README.md"
LOCK_NAME = ".clevr-remv-pack.lock"  # held by the one `clevr-remv pack` writing the folder
# A split or subset name, part of shard file names: never "", ".", ".." or hidden (manifest schema: plain_name).
PLAIN_NAME = re.compile(r"[A-Za-z0-9_+=-][A-Za-z0-9_+=.-]*")
DEFAULT_SHARD_SIZE = "512MB"
SPLIT_CHOICES = ("train", "val", "test", "all")
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def view_fields(u: int, v: int, passes) -> list:
    """The member fields of view (u, v): rgb, index, then the optional ``passes``."""
    return [f"{view_name(u, v)}.{name}.png" for name in IMAGE_PASSES + tuple(passes)]


def sample_fields(views, passes) -> list:
    """Every member field of a sample packing ``views`` (in v-major order) with ``passes``."""
    return list(JSON_FIELDS) + [field for u, v in views for field in view_fields(u, v, passes)]


def member_path(field: str) -> str:
    """Where a member field lies in its scene folder: ``u5_v5.rgb.png`` -> ``rgb/u5_v5.png``,
    ``scene.json`` -> ``scene.json``."""
    if field in JSON_FIELDS:
        return field
    view, kind, extension = field.split(".")
    return f"{kind}/{view}.{extension}"


def scene_key(scene: int) -> str:
    """The WebDataset key of scene ``scene``: its folder name, e.g. ``000042``."""
    return f"{scene:06d}"


def shard_name(subset: str, split: str, number: int) -> str:
    """The relative path of shard ``number`` of ``split`` in ``subset``, e.g. ``center/train-000000.tar``."""
    return f"{subset}/{split}-{number:06d}.tar"


def index_name(shard: str) -> str:
    """The member index beside a shard: ``center/train-000000.tar`` -> ``center/train-000000.idx.json``."""
    return shard.removesuffix(".tar") + ".idx.json"


def parse_views(text: str, grid: int) -> tuple:
    """``--views`` (center, corners, all, or view names such as ``u1_v1,u9_v9``, or ``u1_v1+u9_v9``
    as the subset's folder is named) -> (subset name, views in v-major order). A list equal to a
    preset takes the preset's name."""
    text = text.strip()
    if text in VIEW_SETS:
        return text, select_views(text, grid)
    views = []
    for part in filter(None, (part.strip() for part in re.split("[,+]", text))):
        match = re.fullmatch(r"u(\d+)_v(\d+)", part)
        if match is None:
            raise ClevrRemvError(
                f"--views: {part!r} is not a view; use {', '.join(VIEW_SETS)} or view names "
                f"such as u1_v1,u{grid}_v{grid} (u and v from 1 to {grid})"
            )
        views.append((int(match.group(1)), int(match.group(2))))
    views = select_views(views, grid)
    for preset in VIEW_SETS:
        if select_views(preset, grid) == views:
            return preset, views
    return "+".join(view_name(u, v) for u, v in views), views


def parse_size(text) -> int:
    """``--shard-size`` such as 512MB, 1GB, 64MiB or a plain number of bytes -> bytes (> 0)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if match is None or match.group(2).lower() not in _UNITS:
        raise ClevrRemvError(
            f"--shard-size: {text!r} is not a size; write a number with a unit such as "
            f"{DEFAULT_SHARD_SIZE}, 2GB or 256MiB"
        )
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < 1:
        raise ClevrRemvError(f"--shard-size: {text!r} is empty; give a positive size such as {DEFAULT_SHARD_SIZE}")
    return size


def format_size(size: int) -> str:
    """Bytes as a short decimal figure, e.g. 536870912 -> '537 MB'."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} B"
