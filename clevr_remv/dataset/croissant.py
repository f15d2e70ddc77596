"""Croissant metadata (MLCommons JSON-LD, version 1.1) for a dataset folder or a packed folder.

The document lists the files (dataset.json and splits.json with their SHA-256, and file sets of
the scenes' JSON and PNG files; in a packed folder manifest.json, meta/ and every shard with the
SHA-256 the manifest records, and file sets of the shards' members) and record sets that
``mlcroissant`` reads:

- ``config``: the generator's version, seed and light-field rig (rig, grid, baseline, lens,
  width, height) from dataset.json.
- ``expressions`` (folder): one record per expression: scene, id, text, referent (``referents`` in
  a generalized dataset) and the views where it holds, as [u, v] pairs.
- ``refexps`` (packed): one record per scene: its refexps.json as text. mlcroissant parses no JSON
  inside tar archives, so the packed form gives each scene's file whole.
- ``views``, ``index_masks``, ``depth_maps`` (``views-<subset>`` and so on in a packed folder):
  one record per view image with its scene, u and v. mlcroissant joins records on one key only,
  and no single part of a folder path names both the scene and the view, so each pass is a record
  set of its own, keyed by (scene, u, v).

Paths are relative to the dataset (or packed) folder: the file belongs there, as croissant.json.
"""

import datetime
import json
from pathlib import Path

from clevr_remv.dataset import outdir
from clevr_remv.dataset.atomic import write_text_atomic
from clevr_remv.dataset.expressions import is_generalized
from clevr_remv.dataset.packed import is_packed
from clevr_remv.dataset.packed.card import CITATION
from clevr_remv.dataset.packed.layout import META_DIR
from clevr_remv.dataset.packed.manifest import complete_splits, manifest_path, read_manifest
from clevr_remv.dataset.packed.tarshard import file_sha256
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError

CROISSANT_NAME = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"  # the card's LICENSE, cc-by-4.0
CREATOR = {"@type": "sc:Person", "name": "J. Chen", "affiliation": {"@type": "sc:Organization", "name": "INSA Rennes"}}
KEYWORDS = ["referring expression segmentation", "multi-view", "light field", "CLEVR", "synthetic"]
# The @context of Croissant 1.1 as mlcroissant writes it.
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
# config fields: (name, JSONPath in dataset.json, data type, description)
CONFIG_FIELDS = (
    ("generator_version", "$.generator_version", "sc:Text", "clevr-remv version that generated the dataset"),
    ("format_version", "$.format_version", "sc:Integer", "on-disk format version"),
    ("seed", "$.config.seed", "sc:Integer", "seed of the scene layouts"),
    ("rig", "$.config.rig", "sc:Text", "camera array: parallel or convergent"),
    ("grid", "$.config.grid", "sc:Integer", "views per side of the camera array (grid x grid views)"),
    ("baseline", "$.config.baseline", "sc:Float", "distance between neighbouring cameras, in world units"),
    ("lens", "$.config.lens", "sc:Float", "focal length in mm on a 32 mm sensor"),
    ("width", "$.config.width", "sc:Integer", "image width in pixels"),
    ("height", "$.config.height", "sc:Integer", "image height in pixels"),
    ("samples", "$.config.samples", "sc:Integer", "render samples per pixel"),
    ("depth_scale", "$.depth_scale", "sc:Float", "world units per count of the 16-bit depth PNGs (0 = no value)"),
)
# Where a view's image lies: the file property naming it, its regex with {scene}, {u}, {v} and {kind}
# slots, and the glob of its file set; in a dataset folder and in a shard.
FOLDER_NAMES = {
    "property": "fullpath",
    "regex": r"^scenes/{scene}/{kind}/u{u}_v{v}\.png$",
    "glob": "scenes/[0-9]*/{kind}/u*_v*.png",
}
PACKED_NAMES = {"property": "filename", "regex": r"^{scene}\.u{u}_v{v}\.{kind}\.png$", "glob": "*.u*_v*.{kind}.png"}
IMAGE_SETS = {  # pass -> (record set, data type, what the image holds)
    "rgb": ("views", "sc:ImageObject", "8-bit RGB image of view (u, v)"),
    "index": (
        "index_masks",
        ["cr:SegmentationMask", "sc:ImageObject"],
        "8-bit object index of view (u, v): 0 background, k object k (1-based, scene.json order)",
    ),
    "depth": ("depth_maps", "sc:ImageObject", "16-bit z-depth of view (u, v) in depth_scale units, 0 = no value"),
}


def croissant_document(root) -> dict:
    """The Croissant JSON-LD (a dict) of the dataset folder or packed folder ``root``."""
    root = Path(root)
    if is_packed(root):
        return _packed_document(root)
    return _folder_document(DatasetStore(root))


def write_croissant(root, out=None, force: bool = False) -> Path:
    """Write the Croissant file of ``root`` to ``out`` (default ``root``/croissant.json) and return
    its path. An ``out`` inside ``root`` other than the default, and an existing ``out`` without
    ``force``, are refused (ClevrRemvError)."""
    root = Path(root)
    default = root / CROISSANT_NAME
    out = Path(out) if out is not None else default
    outdir.refuse_overlap(out, {"--data": root}, allowed=[default])
    outdir.check_output_file(out, suffixes={"json", "jsonld"})
    if out.exists() and not force:
        raise ClevrRemvError(f"{out}: exists; pass --force to replace it, or write another file with --out FILE")
    document = croissant_document(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    return out


def _folder_document(store: DatasetStore) -> dict:
    """The document of a dataset folder: its root files, file sets under scenes/, records per expression."""
    info, root = store.info(), store.root
    files = [_file_object(root, "dataset.json", "application/json")]
    if store.splits_path.is_file():
        files.append(_file_object(root, "splits.json", "application/json"))
    passes = ("rgb", "index", *store.passes)
    files += [_file_set("scene-json", "scenes/[0-9]*/scene.json", "application/json")]
    files += [_file_set("refexps-json", "scenes/[0-9]*/refexps.json", "application/json")]
    files += [_file_set(kind, FOLDER_NAMES["glob"].format(kind=kind), "image/png") for kind in passes]
    record_sets = [_config_records("dataset.json", info), _expressions_records("refexps-json", is_generalized(info))]
    record_sets += [_image_records(IMAGE_SETS[kind][0], kind, kind, FOLDER_NAMES) for kind in passes]
    scenes = len(store.scene_ids())
    return _metadata(info, root, "dataset.json", f"{scenes} scenes in the dataset folder layout.", files, record_sets)


def _packed_document(root: Path) -> dict:
    """The document of a packed folder: manifest, meta/ and the shards of finished splits, per subset."""
    manifest = read_manifest(root)
    info = manifest["dataset"]
    subsets = {name: _listed_shards(subset) for name, subset in manifest["subsets"].items()}
    subsets = {name: shards for name, shards in subsets.items() if shards}
    if not subsets:
        raise ClevrRemvError(
            f"{manifest_path(root)}: no split of any subset is packed to the end, so there are no shards to "
            f"describe; rerun the pack that stopped (`clevr-remv pack --data {manifest['source']} --out {root} "
            "--views V`, V the subset folder it wrote) and it finishes the shards and writes croissant.json"
        )
    files = [_file_object(root, manifest_path(root).name, "application/json")]
    files += [_file_object(root, entry["name"], "application/json", entry) for entry in manifest["meta"]]
    record_sets = [_config_records(f"{META_DIR}/dataset.json", info)]
    for name, shards in subsets.items():
        files += [_file_object(root, shard["name"], "application/x-tar", shard) for shard in shards]
        inside = [{"@id": shard["name"]} for shard in shards]
        files += [_file_set(f"{name}-scene-json", "*.scene.json", "application/json", inside)]
        files += [_file_set(f"{name}-refexps-json", "*.refexps.json", "application/json", inside)]
        passes = ("rgb", "index", *manifest["subsets"][name]["passes"])
        for kind in passes:
            files.append(_file_set(f"{name}-{kind}", PACKED_NAMES["glob"].format(kind=kind), "image/png", inside))
            record_sets.append(_image_records(f"{IMAGE_SETS[kind][0]}-{name}", kind, f"{name}-{kind}", PACKED_NAMES))
    # the refexps of the subset with the most scenes, of those the one with the fewest views (the smallest to extract)
    cheapest = min(subsets, key=lambda name: (-sum(s["samples"] for s in subsets[name]), _views(manifest, name), name))
    record_sets.insert(1, _refexps_records(f"{cheapest}-refexps-json"))
    text = "WebDataset tar shards written by `clevr-remv pack`, subsets " + ", ".join(
        f"{name} ({_views(manifest, name)} views per scene, {sum(s['samples'] for s in shards)} scenes)"
        for name, shards in subsets.items()
    )
    return _metadata(info, root, f"{META_DIR}/dataset.json", text + ".", files, record_sets)


def _views(manifest: dict, subset: str) -> int:
    return len(manifest["subsets"][subset]["views"])


def _listed_shards(subset: dict) -> list:
    """The subset's shards of the splits packed to the end (the ones readers use)."""
    return [shard for shard in subset["shards"] if shard["split"] in complete_splits(subset)]


def _metadata(info: dict, root: Path, dataset_json: str, layout: str, files: list, record_sets: list) -> dict:
    """The dataset's description around ``files`` and ``record_sets``; ``dataset_json``: where
    dataset.json lies in ``root``, ``layout``: a sentence on the folder's form."""
    config = info["config"]
    grid = config["grid"]
    depth = " and a 16-bit depth map" if "depth" in config.get("passes", ()) else ""
    description = (
        "CLEVR-REMV: a synthetic multi-view referring-expression segmentation dataset. Each CLEVR scene is "
        f"rendered by a {grid}x{grid} light-field camera array ({config['rig']} rig, baseline "
        f"{config['baseline']} world units, {config.get('lens', 35.0)} mm lens on a 32 mm sensor, "
        f"{config['width']}x{config['height']} pixels per view) with an object-index mask{depth} per view; its "
        "referring expressions name 1-based objects (the values of the index masks) and list the views where "
        f"they hold. {layout} The generator's full config is in {dataset_json}."
    )
    modified = datetime.datetime.fromtimestamp((root / dataset_json).stat().st_mtime, datetime.UTC)
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": "CLEVR-REMV",
        "description": description,
        "version": info["generator_version"],
        "datePublished": modified.date().isoformat(),
        "license": LICENSE_URL,
        "citeAs": CITATION,
        "creator": CREATOR,
        "keywords": KEYWORDS,
        "distribution": files,
        "recordSet": record_sets,
    }


def _file_object(root: Path, name: str, encoding: str, record: dict | None = None) -> dict:
    """A FileObject for ``root``/``name``: its size and SHA-256 from the manifest's ``record``, else
    from the file."""
    if record is None:
        record = {"bytes": (root / name).stat().st_size, "sha256": file_sha256(root / name)}
    return {
        "@type": "cr:FileObject",
        "@id": name,
        "name": name,
        "contentUrl": name,
        "contentSize": f"{record['bytes']} B",
        "encodingFormat": encoding,
        "sha256": record["sha256"],
    }


def _file_set(name: str, includes: str, encoding: str, contained_in: list | None = None) -> dict:
    found = {"@type": "cr:FileSet", "@id": name, "name": name, "encodingFormat": encoding, "includes": includes}
    return found | ({"containedIn": contained_in} if contained_in else {})


def _field(record_set: str, name: str, data_type, description: str, source: dict, **extra) -> dict:
    return {
        "@type": "cr:Field",
        "@id": f"{record_set}/{name}",
        "name": name,
        "description": description,
        "dataType": data_type,
        "source": source,
        **extra,
    }


def _source(kind: str, node: str, extract: dict, regex: str | None = None) -> dict:
    """A field's source: ``extract`` from the file set or file object ``node``, then ``regex``."""
    return {kind: {"@id": node}, "extract": extract} | ({"transform": {"regex": regex}} if regex else {})


def _records(name: str, description: str, fields: list, key: list = ()) -> dict:
    keys = {"key": [{"@id": f"{name}/{field}"} for field in key]} if key else {}
    return {"@type": "cr:RecordSet", "@id": name, "name": name, "description": description, **keys, "field": fields}


def _config_records(dataset_json: str, info: dict) -> dict:
    fields = [
        _field("config", name, data_type, text, _source("fileObject", dataset_json, {"jsonPath": path}))
        for name, path, data_type, text in CONFIG_FIELDS
        if _holds(info, path)
    ]
    return _records("config", "The generator's version and light-field rig (one record).", fields)


def _holds(document: dict, path: str) -> bool:
    """Whether ``document`` has the key at the JSONPath ``path`` (e.g. ``$.config.lens``): mlcroissant
    reads no record from a path that finds nothing."""
    for key in path.removeprefix("$.").split("."):
        if not isinstance(document, dict) or key not in document:
            return False
        document = document[key]
    return True


def _expressions_records(file_set: str, generalized: bool) -> dict:
    def json_field(name, data_type, description, **extra):
        source = _source("fileSet", file_set, {"jsonPath": f"$.expressions[*].{name}"})
        return _field("expressions", name, data_type, description, source, **extra)

    scene = _source("fileSet", file_set, {"fileProperty": "fullpath"}, r"^scenes/(\d+)/refexps\.json$")
    fields = [
        _field("expressions", "scene", "sc:Integer", "scene index (its folder name)", scene),
        json_field("id", "sc:Integer", "expression id in the scene's refexps.json"),
        json_field("text", "sc:Text", "the referring expression"),
        json_field("referents", "sc:Integer", "the 1-based objects it names ([]: none)", isArray=True)
        if generalized
        else json_field("referent", "sc:Integer", "the 1-based object it names (its value in the index masks)"),
        json_field("views", "sc:Integer", "the views (u, v) where it holds", isArray=True, arrayShape="-1,2"),
    ]
    return _records("expressions", "One record per referring expression.", fields, ["scene", "id"])


def _refexps_records(file_set: str) -> dict:
    scene = _source("fileSet", file_set, {"fileProperty": "filename"}, r"^(\d+)\.refexps\.json$")
    text = _source("fileSet", file_set, {"fileProperty": "content"})
    fields = [
        _field("refexps", "scene", "sc:Integer", "scene index (the sample key)", scene),
        _field("refexps", "refexps", "sc:Text", "the scene's refexps.json (JSON text)", text),
    ]
    return _records("refexps", "One record per scene: its referring expressions.", fields, ["scene"])


def _image_records(name: str, kind: str, file_set: str, names: dict) -> dict:
    """The record set ``name`` of the ``kind`` images (rgb, index, depth) in ``file_set``."""
    _, data_type, text = IMAGE_SETS[kind]
    slots = {"scene": r"\d+", "u": r"\d+", "v": r"\d+"}
    fields = [
        _field(
            name,
            slot,
            "sc:Integer",
            "scene index" if slot == "scene" else f"view {slot} (1-based)",
            _source(
                "fileSet",
                file_set,
                {"fileProperty": names["property"]},
                names["regex"].format(kind=kind, **slots | {slot: r"(\d+)"}),
            ),
        )
        for slot in slots
    ]
    fields.append(_field(name, kind, data_type, text, _source("fileSet", file_set, {"fileProperty": "content"})))
    return _records(name, f"One record per {kind} image.", fields, ["scene", "u", "v"])
