"""The packed form of a dataset: checksummed tar shards in the WebDataset convention.

A packed folder holds ``manifest.json`` (every shard with its split, sample count, bytes and
SHA-256), a dataset card (``README.md`` for Hugging Face), ``meta/`` (the dataset's own
dataset.json and splits.json, byte for byte) and one folder of shards per view subset
(``center/train-000000.tar`` with its member index ``center/train-000000.idx.json``).
One sample is one scene: its scene.json and refexps.json and the packed views' PNGs, under the
scene's key (``000042.refexps.json``, ``000042.u5_v5.rgb.png``, ...). See docs/shards.md.
"""

from pathlib import Path

from clevr_remv.dataset.packed.layout import META_DIR

MANIFEST_NAME = "manifest.json"


def is_packed(root) -> bool:
    """Whether ``root`` is a packed folder: no dataset.json, but manifest.json or meta/dataset.json
    (a packed folder that lost its manifest is still one, to be told so)."""
    root = Path(root)
    marks = (root / MANIFEST_NAME, root / META_DIR / "dataset.json")
    return any(path.is_file() for path in marks) and not (root / "dataset.json").exists()
