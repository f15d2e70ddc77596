"""The dataset card of a packed folder: README.md with the YAML header Hugging Face reads.

The header declares one config per packed view subset with its data files per split (so
``datasets.load_dataset(PACKED, "center")`` finds the shards), the features of a sample, the
licence and the split sizes; the text gives the sample layout, the mask and depth conventions,
how to load and check the shards, and how to cite.
"""

import json

from clevr_remv.dataset.atomic import write_text_atomic
from clevr_remv.dataset.packed.layout import CARD_NAME, JSON_FIELDS
from clevr_remv.dataset.packed.manifest import complete_splits, shards_of
from clevr_remv.wording import plural

LICENSE = "cc-by-4.0"  # as CLEVR and CLEVR-Ref+, whose scene and expression generators this dataset follows
CITATION = """@phdthesis{chen2023multimodal,
  title  = {Deep Learning Based Multimodal Retrieval},
  author = {Chen, J.},
  school = {INSA Rennes},
  year   = {2023},
  note   = {Chapter 6: the CLEVR-REMV dataset; chapter 7: the RES benchmark and MVR}
}
@inproceedings{johnson2017clevr,
  title     = {{CLEVR}: A Diagnostic Dataset for Compositional Language and Elementary Visual Reasoning},
  author    = {Johnson, Justin and Hariharan, Bharath and van der Maaten, Laurens and Fei-Fei, Li and
               Zitnick, C. Lawrence and Girshick, Ross},
  booktitle = {CVPR},
  year      = {2017}
}
@inproceedings{liu2019clevrref,
  title     = {{CLEVR-Ref+}: Diagnosing Visual Reasoning with Referring Expressions},
  author    = {Liu, Runtao and Liu, Chenxi and Bai, Yutong and Yuille, Alan L.},
  booktitle = {CVPR},
  year      = {2019}
}"""


def _card_splits(subset: dict) -> list:
    """The subset's splits a reader can load: packed to the end and holding a shard (an empty
    split has no data files, which Hugging Face refuses)."""
    return [split for split in complete_splits(subset) if shards_of(subset, split)]


def _size_category(samples: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if samples < limit:
            return name
    return "100K<n<1M"


def _yaml(value) -> str:
    """A YAML scalar: JSON's quoting is valid YAML."""
    return json.dumps(value)


def _header(subsets: dict, default: str) -> list:
    samples = sum(shard["samples"] for subset in subsets.values() for shard in subset["shards"])
    lines = [
        "---",
        f"license: {LICENSE}",
        "pretty_name: CLEVR-REMV",
        "language:",
        "- en",
        "task_categories:",
        "- image-segmentation",
        "tags:",
        "- referring-expression-segmentation",
        "- multi-view",
        "- light-field",
        "- clevr",
        "- synthetic",
        "- webdataset",
        "size_categories:",
        f"- {_size_category(samples)}",
        "configs:",
    ]
    for name, subset in subsets.items():
        lines += [f"- config_name: {_yaml(name)}"] + (["  default: true"] if name == default else [])
        lines += ["  data_files:"]
        for split in _card_splits(subset):
            lines += [f"  - split: {split}", f"    path: {_yaml(f'{name}/{split}-*.tar')}"]
    lines += ["dataset_info:"]
    for name, subset in subsets.items():
        lines += [f"- config_name: {_yaml(name)}", "  features:"]
        for field in subset["fields"]:
            lines += [f"  - name: {_yaml(field)}", f"    dtype: {'json' if field in JSON_FIELDS else 'image'}"]
        lines += ["  - name: __key__", "    dtype: string", "  - name: __url__", "    dtype: string", "  splits:"]
        for split in _card_splits(subset):
            shards = shards_of(subset, split)
            lines += [
                f"  - name: {split}",
                f"    num_bytes: {sum(shard['bytes'] for shard in shards)}",
                f"    num_examples: {sum(shard['samples'] for shard in shards)}",
            ]
    return lines + ["---"]


def _body(manifest: dict, subsets: dict, default: str) -> str:
    config = manifest["dataset"]["config"]
    split = _card_splits(subsets[default])[0] if default else "train"
    last = len(shards_of(subsets[default], split)) - 1 if default else 0
    grid, center = config["grid"], (config["grid"] + 1) // 2
    depth = "depth" in config.get("passes", ())
    rows = "\n".join(
        f"| `{name}` | {len(subset['views'])} | "
        + ", ".join(
            f"{split} {plural(sum(s['samples'] for s in shards_of(subset, split)), 'scene')} in "
            f"{plural(len(shards_of(subset, split)), 'shard')}"
            for split in _card_splits(subset)
        )
        + " |"
        for name, subset in subsets.items()
    )
    depth_text = (
        f"`uU_vV.depth.png`: 16-bit grey z-depth along the camera's optical axis, in counts of "
        f"`depth_scale` = {manifest['dataset'].get('depth_scale')} world units (in `meta/dataset.json`); "
        "**0 means no value** (sky, or farther than 65535 counts)."
        if depth
        else "This dataset was generated without the depth pass."
    )
    return f"""
# CLEVR-REMV (packed)

A synthetic multi-view referring-expression segmentation dataset: CLEVR scenes of 3 to 10 objects,
each rendered by a {grid}x{grid} light-field camera array ({config["width"]}x{config["height"]} per view), with an
object-index mask per view and referring expressions whose referent is visible in the listed views.
Written by `clevr-remv pack` ({manifest["packer"]}) as tar shards in the WebDataset convention.

| config | views per scene | splits |
|---|---|---|
{rows}

## Samples

One sample is one scene, key `NNNNNN` (the scene index). Its members are the dataset's own files,
byte for byte: `NNNNNN.scene.json` (objects, cameras, per-view visibility), `NNNNNN.refexps.json`
(expressions: `text`, `referent`, `views`, `program`; `referents` in generalized datasets), and per
packed view (u, v)
`NNNNNN.uU_vV.rgb.png` and `NNNNNN.uU_vV.index.png`{" and `NNNNNN.uU_vV.depth.png`" if depth else ""}.

- Views: u is the column (1 = leftmost camera), v the row (1 = top); the centre view is u{center}_v{center}.
- `uU_vV.index.png`: 8-bit grey object index, **0 = background, k = object k** (1-based, in
  `scene.json`'s `objects` order). The mask of an expression in a view is `index == referent`;
  in a generalized dataset it is the union over `referents` (empty for an expression naming none).
- An expression is valid in the views its `views` list names.
- {depth_text}

## Loading

```python
import webdataset as wds                     # pip install webdataset
ds = wds.WebDataset("{default}/{split}-{{000000..{last:06d}}}.tar", shardshuffle=False).decode("pil")

import datasets                              # pip install datasets
ds = datasets.load_dataset("path/to/this/folder", "{default}", split="{split}")

from clevr_remv.dataset.pytorch import ClevrRemvDataset   # pip install clevr-remv[torch]
ds = ClevrRemvDataset("path/to/this/folder", split="{split}", views="center")   # same items as the folder
```

`manifest.json` lists every shard with its split, sample count, bytes and SHA-256 (and the
generator's full config); `<shard>.idx.json` holds each member's offset for random access.
`clevr-remv validate --data FOLDER` checks every shard; `clevr-remv unpack --data FOLDER --out DIR`
gives back the dataset folder byte for byte.

## Licence and citation

{LICENSE.upper()}. If you use CLEVR-REMV, cite:

```bibtex
{CITATION}
```
"""


def write_card(root, manifest: dict) -> None:
    """Write ``root``/README.md from ``manifest`` (atomic): a config per subset with a loadable
    split, the one with the fewest views the default."""
    subsets = {name: subset for name, subset in manifest["subsets"].items() if _card_splits(subset)}
    default = min(subsets, key=lambda name: (len(subsets[name]["views"]), name)) if subsets else ""
    text = "\n".join(_header(subsets, default)) + "\n" + _body(manifest, subsets, default)
    write_text_atomic(root / CARD_NAME, text)
