"""`clevr-remv validate`: check every file of a dataset and list each problem with its path.

Checks: dataset.json, scene.json, refexps.json and splits.json against their schemas; every
RGB image, index mask and (in datasets with the depth pass) depth map (present, decodable, right
size and mode, mask values within the object count, visible-pixel counts equal to scene.json);
expression referents and their view lists against the scene's visibility (in generalized
datasets every expression's ``referents``, and ``referent`` agreeing with them); split coverage;
the counts in dataset.json; leftover ``.tmp-*`` entries of interrupted runs (warnings only).
"""

import dataclasses
import multiprocessing
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from clevr_remv.dataset.expressions import PENDING, is_generalized, referents_of, refexps_command, unfinished_refexps
from clevr_remv.dataset.images import IMAGE_ERRORS
from clevr_remv.dataset.packed import is_packed
from clevr_remv.dataset.problems import WARNING, Problem
from clevr_remv.dataset.store import TMP_PREFIX, DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.schemas import validate as validate_schema

_REGENERATE = "delete the scene folder and rerun `clevr-remv generate` with the same flags to rebuild it"


@dataclasses.dataclass(frozen=True)
class _Expected:
    """What every scene must agree with (from dataset.json)."""

    grid: int
    width: int
    height: int
    properties: dict
    depth: bool
    generalized: bool | None  # expressions carry ``referents`` (refexps --expressions generalized); None: mid-switch
    remake: str  # the fix for expressions that do not fit: the refexps command of dataset.json's settings


def validate_dataset(root, quick: bool = False, workers: int = 1, progress: bool = False) -> list:
    """Check the dataset at ``root`` and return its problems (a list of `Problem`;
    empty when everything is fine). ``quick`` reads image headers only (no pixel decoding).

    Raises ClevrRemvError only when ``root`` is not a dataset at all (no dataset.json). A packed
    folder (``clevr-remv pack``) is checked shard by shard against its manifest instead.
    """
    if is_packed(root):
        from clevr_remv.dataset.packed.check import validate_packed

        return validate_packed(root, quick=quick, workers=workers, progress=progress)
    store = DatasetStore(root)
    try:
        info = store.info()
    except ClevrRemvError as error:
        return [Problem(str(store.dataset_json_path), _strip_source(error, store.dataset_json_path))]
    problems = _check_info(store, info)
    pending = info.get(PENDING)
    if pending is not None:
        problems.append(Problem(str(store.dataset_json_path), unfinished_refexps(store.root, pending)))
    expected = _Expected(
        info["config"]["grid"],
        info["config"]["width"],
        info["config"]["height"],
        info["config"]["properties"],
        "depth" in store.passes,
        None if pending else is_generalized(info),
        f"rerun `{refexps_command(store.root, pending or info['refexps'])}`",
    )
    problems += _leftovers(store.root) + _leftovers(store.scenes_dir)
    folders, strays = _scene_folders(store)
    problems += strays
    tasks = [(store, index, expected, quick) for index in folders]
    results = _run(tasks, workers, progress)
    expressions = 0
    for scene_problems, scene_expressions in results:
        problems += scene_problems
        expressions = None if None in (expressions, scene_expressions) else expressions + scene_expressions
    complete = store.scene_ids()
    problems += _check_counts(store, info, len(complete), expressions)
    problems += _check_splits(store, complete)
    return problems


def _strip_source(error: ClevrRemvError, path) -> str:
    """A store error's message without its leading ``<path>: `` (the Problem carries the path)."""
    text = str(error)
    prefix = f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _run(tasks: list, workers: int, progress: bool) -> list:
    bar = dict(total=len(tasks), unit="scene", desc="validate", disable=not progress)
    if workers <= 1 or len(tasks) <= 1:
        return [_check_scene_task(task) for task in tqdm(tasks, **bar)]
    with multiprocessing.Pool(workers) as pool:
        return list(tqdm(pool.imap(_check_scene_task, tasks, chunksize=4), **bar))


def _check_info(store: DatasetStore, info: dict) -> list:
    try:
        validate_schema(info["config"]["properties"], "properties", store.dataset_json_path)
    except ClevrRemvError as error:
        return [
            Problem(str(store.dataset_json_path), "config.properties: " + _strip_source(error, store.dataset_json_path))
        ]
    return []


def _leftovers(folder: Path) -> list:
    if not folder.is_dir():
        return []
    return [
        Problem(
            str(entry),
            "leftover of an interrupted run; rerun the command that made it (generate resumes) or delete it",
            WARNING,
        )
        for entry in sorted(folder.iterdir())
        if entry.name.startswith(TMP_PREFIX)
    ]


def _scene_folders(store: DatasetStore) -> tuple:
    """Indices of all scene folders (complete or not), and problems with other entries."""
    if not store.scenes_dir.is_dir():
        return [], [Problem(str(store.scenes_dir), "missing; the dataset has no scenes (run `clevr-remv generate`)")]
    folders, strays = [], []
    for entry in sorted(store.scenes_dir.iterdir()):
        if entry.name.isdigit() and entry.is_dir():
            folders.append(int(entry.name))
        elif not entry.name.startswith(TMP_PREFIX):
            strays.append(
                Problem(
                    str(entry),
                    "unexpected entry in scenes/ (scene folders are six-digit numbers); move it out of the dataset",
                    WARNING,
                )
            )
    return sorted(folders), strays


def _check_scene_task(task: tuple) -> tuple:
    store, index, expected, quick = task
    return _check_scene(store, index, expected, quick)


def _check_scene(store: DatasetStore, index: int, expected: _Expected, quick: bool = False) -> tuple:
    """Check one scene folder; return (problems, number of expressions or None when unreadable)."""
    problems = _leftovers(store.scene_dir(index))
    try:
        scene = store.load_scene(index)
    except ClevrRemvError as error:
        path = store.scene_json_path(index)
        return problems + [Problem(str(path), f"{_strip_source(error, path)}; {_REGENERATE}")], None
    problems += _check_scene_json(store, index, scene, expected)
    problems += _check_images(store, index, scene, expected, quick)
    try:
        refexps = store.load_refexps(index, unfinished_ok=True)
    except ClevrRemvError as error:
        return problems + [
            Problem(str(store.refexps_path(index)), _strip_source(error, store.refexps_path(index)))
        ], None
    problems += _check_refexps(store, index, scene, refexps, expected)
    return problems, len(refexps["expressions"])


def _check_scene_json(store: DatasetStore, index: int, scene: dict, expected: _Expected) -> list:
    path = str(store.scene_json_path(index))
    found = []
    if scene["index"] != index:
        found.append(f"index is {scene['index']} but the folder is scene {index}")
    if (scene["width"], scene["height"]) != (expected.width, expected.height):
        found.append(
            f"size {scene['width']}x{scene['height']} differs from dataset.json's {expected.width}x{expected.height}"
        )
    views = [(view["u"], view["v"]) for view in scene["views"]]
    grid_views = _grid_views(expected.grid)
    if views != grid_views:
        found.append(f"views are {_short(views)}, expected the {expected.grid}x{expected.grid} grid in v-major order")
    names = {"shapes": "shape", "colors": "color", "materials": "material", "sizes": "size"}
    for k, obj in enumerate(scene["objects"], start=1):
        if len(obj["views"]) != len(scene["views"]):
            found.append(f"object {k} has {len(obj['views'])} view entries for {len(scene['views'])} views")
        for table, key in names.items():
            if obj[key] not in expected.properties.get(table, {}):
                found.append(f"object {k} has {key} {obj[key]!r}, not one of dataset.json's {table}")
    return [Problem(path, f"{message}; {_REGENERATE}") for message in found]


def _check_images(store: DatasetStore, index: int, scene: dict, expected: _Expected, quick: bool) -> list:
    problems = []
    objects = scene["objects"]
    size = (expected.width, expected.height)
    for i, (u, v) in enumerate(_grid_views(expected.grid)):
        problems += _check_png(store.rgb_path(index, u, v), size, "RGB", quick)[1]
        if expected.depth:
            problems += _check_png(store.depth_path(index, u, v), size, "I;16", quick)[1]
        mask, mask_problems = _check_png(store.index_path(index, u, v), size, "L", quick)
        problems += mask_problems
        if mask is None:
            continue
        path = str(store.index_path(index, u, v))
        if int(mask.max()) > len(objects):
            problems.append(
                Problem(path, f"holds value {int(mask.max())} but the scene has {len(objects)} objects; {_REGENERATE}")
            )
            continue
        counts = np.bincount(mask.ravel(), minlength=len(objects) + 1)
        wrong = [
            k
            for k, obj in enumerate(objects, start=1)
            if i < len(obj["views"]) and obj["views"][i]["pixels"] != counts[k]
        ]
        if wrong:
            problems.append(
                Problem(path, f"visible pixels of object(s) {_short(wrong)} differ from scene.json; {_REGENERATE}")
            )
    return problems


def image_header_problems(store: DatasetStore, scene_views) -> list:
    """Problems of the RGB and index PNGs of the given (scene, (u, v)) pairs, from their headers
    alone as in ``validate --quick``: missing, not an image, wrong size or mode."""
    config = store.info()["config"]
    size = (config["width"], config["height"])
    problems = []
    for scene, (u, v) in scene_views:
        problems += _check_png(store.rgb_path(scene, u, v), size, "RGB", True)[1]
        problems += _check_png(store.index_path(scene, u, v), size, "L", True)[1]
    return problems


def _check_png(path: Path, size: tuple, mode: str, quick: bool) -> tuple:
    """Return (pixels or None, problems) of one PNG; pixels are decoded only when not ``quick``."""
    if not path.is_file():
        return None, [Problem(str(path), f"missing; {_REGENERATE}")]
    try:
        with Image.open(path) as image:
            found = []
            if image.size != size:
                found.append(f"size {image.size[0]}x{image.size[1]}, expected {size[0]}x{size[1]}")
            if image.mode != mode:
                found.append(f"mode {image.mode}, expected {mode}")
            if found:
                return None, [Problem(str(path), f"{', '.join(found)}; {_REGENERATE}")]
            if quick:
                return None, []
            image.load()
            return np.asarray(image), []
    except IMAGE_ERRORS as error:
        return None, [Problem(str(path), f"cannot be decoded ({error}); {_REGENERATE}")]


def _check_refexps(store: DatasetStore, index: int, scene: dict, refexps: dict, expected: _Expected) -> list:
    path = str(store.refexps_path(index))
    found = _kind_problems(refexps["expressions"], expected.generalized)
    if refexps["scene"] != index:
        found.append(f"scene is {refexps['scene']} but the folder is scene {index}")
    ids = [expression["id"] for expression in refexps["expressions"]]
    if len(set(ids)) != len(ids):
        found.append("expression ids are not unique")
    positions = {view: i for i, view in enumerate(_grid_views(expected.grid))}
    objects = scene["objects"]
    for expression in refexps["expressions"]:
        name = f"expression {expression['id']}"
        found += _referent_problems(name, expression)
        referents = referents_of(expression)
        if any(k > len(objects) for k in referents):
            named = f"referent {referents[0]}" if len(referents) == 1 else f"referents {referents}"
            found.append(f"{name}: {named} but the scene has {len(objects)} objects")
            continue
        views = [tuple(view) for view in expression["views"]]
        if len(set(views)) != len(views):
            found.append(f"{name}: views listed twice")
        outside = [view for view in views if view not in positions]
        if outside:
            found.append(f"{name}: views {_short(outside)} are not in the {expected.grid}x{expected.grid} grid")
        for referent in referents:
            entries = objects[referent - 1]["views"]
            hidden = [
                view
                for view in views
                if positions.get(view, len(entries)) < len(entries) and entries[positions[view]]["pixels"] == 0
            ]
            if hidden:
                found.append(f"{name}: referent {referent} is not visible in listed views {_short(hidden)}")
        for position, node in enumerate(expression["program"]):
            if any(source >= position for source in node["inputs"]):
                found.append(f"{name}: program node {position} reads a later node")
                break
    return [Problem(path, f"{message}; {expected.remake}") for message in found]


def _kind_problems(expressions: list, generalized) -> list:
    """How a scene's expressions disagree with dataset.json's kind (single-referent or generalized),
    as an interrupted `clevr-remv refexps` leaves them."""
    carrying = sum("referents" in expression for expression in expressions)
    if generalized is None:  # a `clevr-remv refexps` run at work or stopped: reported for the dataset
        return []
    if generalized and carrying < len(expressions):
        return [
            f"{len(expressions) - carrying} of {len(expressions)} expressions have no 'referents', but dataset.json "
            "says the expressions are generalized (each lists the objects it names; [] for no target)"
        ]
    if not generalized and carrying:
        return [
            f"{carrying} of {len(expressions)} expressions are generalized (they carry 'referents'), but "
            "dataset.json says the expressions are single-referent"
        ]
    return []


def _referent_problems(name: str, expression: dict) -> list:
    """How an expression's ``referent`` and ``referents`` disagree with each other."""
    if "referents" not in expression:
        return []
    referents = expression["referents"]
    if referents != sorted(set(referents)):
        return [f"{name}: referents {referents} are not sorted and distinct"]
    if "referent" in expression and referents != [expression["referent"]]:
        return [f"{name}: referent {expression['referent']} but referents {referents}"]
    if len(referents) == 1 and "referent" not in expression:
        return [f"{name}: names one object but has no 'referent' (readers of single-referent data need it)"]
    return []


def _check_counts(store: DatasetStore, info: dict, scenes: int, expressions) -> list:
    """Compare dataset.json's counts with the files (``expressions`` None: not countable)."""
    counts = info["counts"]
    grid = info["config"]["grid"]
    actual = {"scenes": scenes, "views_per_scene": grid * grid, "expressions": expressions}
    wrong = [
        f"counts.{key} is {counts[key]}, the dataset has {value}"
        for key, value in actual.items()
        if value is not None and counts[key] != value
    ]
    return [
        Problem(
            str(store.dataset_json_path),
            f"{message}; rerun `clevr-remv generate` with the same flags to refresh the counts",
        )
        for message in wrong
    ]


def _check_splits(store: DatasetStore, scene_ids: list) -> list:
    if not store.splits_path.is_file():
        return []
    path = str(store.splits_path)
    fix = f"rerun `clevr-remv split --data {store.root}`"
    try:
        splits = store.load_splits()["splits"]
    except ClevrRemvError as error:
        return [Problem(path, f"{_strip_source(error, store.splits_path)}; {fix}")]
    seen = {}
    problems = []
    for name, members in splits.items():
        for index in members:
            seen.setdefault(index, []).append(name)
    twice = sorted(index for index, names in seen.items() if len(names) > 1)
    missing = sorted(set(scene_ids) - set(seen))
    unknown = sorted(set(seen) - set(scene_ids))
    if twice:
        problems.append(f"scenes {_short(twice)} are in more than one split")
    if missing:
        problems.append(f"scenes {_short(missing)} are in no split")
    if unknown:
        problems.append(f"scenes {_short(unknown)} are listed but not in the dataset")
    return [Problem(path, f"{message}; {fix}") for message in problems]


def _grid_views(grid: int) -> list:
    return [(u, v) for v in range(1, grid + 1) for u in range(1, grid + 1)]


def _short(items: list, limit: int = 8) -> str:
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")
