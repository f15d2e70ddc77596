"""Scene splits: assign whole scenes to train / val / test, and read back the scenes of a split.

A fresh assignment is a pure function of the scene indices, the ratios and the seed: scenes are
ordered by a SHA-256 hash of ``"<seed>:<scene>"`` (stable across Python and NumPy versions) and
cut into consecutive runs whose sizes follow the ratios by the largest-remainder rule, so
10,000 scenes at 0.7 / 0.15 / 0.15 give exactly 7,000 / 1,500 / 1,500. A scene's split never
changes once assigned: splitting again after more scenes were generated assigns only the new
ones (in the same hash order), so that each split's total follows the ratios as closely as the
scenes already assigned allow.
"""

import hashlib
from fractions import Fraction

from clevr_remv import FORMAT_VERSION
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.errors import ClevrRemvError
from clevr_remv.schemas import read_json
from clevr_remv.wording import plural

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_RATIOS = "0.7,0.15,0.15"
RATIO_TOLERANCE = Fraction(1, 10**6)


def parse_ratios(text) -> list:
    """Parse ``"0.7,0.15,0.15"`` (or a sequence of numbers) into exact fractions, one per
    split; they must sum to 1."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        ratios = [Fraction(str(part).strip()) for part in parts]
    except (ValueError, ZeroDivisionError) as error:
        raise ClevrRemvError(
            f"--ratios: {text!r} is not a comma-separated list of numbers; write e.g. {DEFAULT_RATIOS}"
        ) from error
    if len(ratios) != len(SPLIT_NAMES):
        raise ClevrRemvError(
            f"--ratios: {text!r} gives {plural(len(ratios), 'ratio')}, expected "
            f"{len(SPLIT_NAMES)} ({' / '.join(SPLIT_NAMES)}); write e.g. {DEFAULT_RATIOS}"
        )
    if any(ratio < 0 for ratio in ratios):
        raise ClevrRemvError(f"--ratios: {text!r} has a negative ratio; every ratio must be >= 0")
    if abs(sum(ratios) - 1) > RATIO_TOLERANCE:
        raise ClevrRemvError(
            f"--ratios: {text!r} sums to {float(sum(ratios)):g}, not 1; "
            f"adjust them so they add up to 1 (e.g. {DEFAULT_RATIOS})"
        )
    return ratios


def split_sizes(count: int, ratios) -> list:
    """Split ``count`` items by ``ratios`` (largest remainder): floors of the exact quotas, then
    one more item to the largest fractional parts (earlier split first on ties)."""
    total = sum(Fraction(ratio) for ratio in ratios)
    quotas = [Fraction(ratio) / total * count for ratio in ratios]
    sizes = [quota.numerator // quota.denominator for quota in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - sizes[i]), i))
    for i in by_remainder[: count - sum(sizes)]:
        sizes[i] += 1
    return sizes


def scenes_for_every_split(ratios) -> int:
    """The fewest scenes that give every split with a positive ratio at least one scene."""
    count = 1
    while any(size == 0 and ratio > 0 for size, ratio in zip(split_sizes(count, ratios), ratios, strict=False)):
        count += 1
    return count


def empty_split_warnings(document: dict) -> list:
    """One line per empty split of a splits.json document, with the fix."""
    ratios = [Fraction(str(ratio)) for ratio in document["ratios"]]
    scenes = sum(len(ids) for ids in document["splits"].values())
    lines = []
    for (name, ids), ratio in zip(document["splits"].items(), ratios, strict=False):
        if ids:
            continue
        fix = (
            f"generate at least {scenes_for_every_split(ratios)} scenes for these ratios"
            if ratio > 0
            else "its ratio is 0"
        )
        lines.append(
            f"split {name!r} is empty ({plural(scenes, 'scene')} at ratios "
            f"{','.join(f'{float(r):g}' for r in ratios)}); commands that read it (evaluate and "
            f"benchmark read val and test) will fail: {fix}"
        )
    return lines


def _shuffle_key(seed: int, scene: int) -> bytes:
    return hashlib.sha256(f"{seed}:{scene}".encode()).digest()


def assign_splits(scene_ids, ratios, seed: int) -> dict:
    """Map each split name to the sorted scene indices it receives (disjoint, covering all)."""
    return extend_splits({name: [] for name in SPLIT_NAMES}, scene_ids, ratios, seed)


def new_scene_counts(current, new: int, ratios) -> list:
    """How many of ``new`` scenes each split receives when its ``current`` sizes stay: the
    largest-remainder sizes of all scenes less what each split holds (a split that already holds
    more than its share gets none; the others then share the new scenes by what they lack)."""
    if new == 0:
        return [0] * len(current)
    targets = split_sizes(sum(current) + new, ratios)
    lacking = [max(0, target - size) for target, size in zip(targets, current, strict=True)]
    return lacking if sum(lacking) == new else split_sizes(new, lacking)


def extend_splits(splits: dict, scene_ids, ratios, seed: int) -> dict:
    """``splits`` (split name -> scene indices, in SPLIT_NAMES order) with every scene of
    ``scene_ids`` that none lists added: the new scenes in SHA-256 order of ``"<seed>:<scene>"``,
    cut into runs of `new_scene_counts`. Assigned scenes never move."""
    assigned = {scene for ids in splits.values() for scene in ids}
    order = sorted(
        (scene for scene in set(scene_ids) if scene not in assigned), key=lambda scene: _shuffle_key(seed, scene)
    )
    counts = new_scene_counts([len(splits[name]) for name in SPLIT_NAMES], len(order), ratios)
    extended, start = {}, 0
    for name, count in zip(SPLIT_NAMES, counts, strict=True):
        extended[name] = sorted(list(splits[name]) + order[start : start + count])
        start += count
    return extended


def _previous(store: DatasetStore, ratios, seed) -> tuple:
    """(splits, ratios, seed) of the existing splits.json (empty splits and the requested or
    default ratios and seed without one); ClevrRemvError when it cannot be extended as asked."""
    if not store.splits_path.is_file():
        return (
            {name: [] for name in SPLIT_NAMES},
            parse_ratios(DEFAULT_RATIOS if ratios is None else ratios),
            0 if seed is None else seed,
        )
    fresh = f"or delete {store.splits_path} to split every scene anew (which moves scenes between splits)"
    document = read_json(store.splits_path, "splits", fix=f"fix it, {fresh}")
    if list(document["splits"]) != list(SPLIT_NAMES):
        raise ClevrRemvError(
            f"{store.splits_path}: holds splits {', '.join(document['splits'])}, not "
            f"{', '.join(SPLIT_NAMES)}; new scenes cannot be added to it: {fresh}"
        )
    listed = [scene for ids in document["splits"].values() for scene in ids]
    if len(listed) != len(set(listed)):
        raise ClevrRemvError(f"{store.splits_path}: a scene is listed in two splits; fix it, {fresh}")
    stored = parse_ratios(document["ratios"])
    asked = None if ratios is None else [float(r) for r in parse_ratios(ratios)]
    if asked not in (None, [float(r) for r in stored]) or seed not in (None, document["seed"]):
        raise ClevrRemvError(
            f"--ratios / --seed: {store.splits_path} was made with ratios "
            f"{','.join(f'{float(r):g}' for r in stored)} and seed {document['seed']}; a scene's split never "
            "changes, and new scenes are assigned with the file's ratios and seed: leave out --ratios and "
            f"--seed, {fresh}"
        )
    return document["splits"], stored, document["seed"]


def write_splits(root, ratios=None, seed=None) -> tuple:
    """Assign the complete scenes of the dataset at ``root`` that splits.json does not list yet
    and write it; a scene it lists keeps its split.

    ``ratios`` (as for `parse_ratios`) and ``seed`` default to the file's, or without a
    file to DEFAULT_RATIOS and 0; passing others than the file's is refused. A fresh split of
    10,000 scenes at 0.7 / 0.15 / 0.15 gives exactly 7,000 / 1,500 / 1,500. Returns (splits
    document, number of newly assigned scenes, scenes listed but not complete on disk); the
    file is left untouched when nothing is new.
    """
    store = DatasetStore(root)
    scene_ids = store.scene_ids()
    if not scene_ids:
        raise ClevrRemvError(
            f"{store.scenes_dir}: the dataset has no complete scenes to split; "
            f"run `clevr-remv generate --out {store.root}` first"
        )
    existed = store.splits_path.is_file()
    splits, ratios, seed = _previous(store, ratios, seed)
    extended = extend_splits(splits, scene_ids, ratios, seed)
    new = sum(len(ids) for ids in extended.values()) - sum(len(ids) for ids in splits.values())
    document = {
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "ratios": [float(r) for r in ratios],
        "splits": extended,
    }
    if new or not existed:
        write_json_atomic(store.splits_path, document, "splits")
    missing = sorted({scene for ids in extended.values() for scene in ids} - set(scene_ids))
    return document, new, missing


def split_scene_ids(store: DatasetStore, split: str) -> list:
    """The scene indices of ``split`` from splits.json, checked to exist on disk."""
    splits = store.load_splits()["splits"]
    if split not in splits:
        raise ClevrRemvError(
            f"{store.splits_path}: no split named {split!r}; choose one of {', '.join(sorted(splits))}"
        )
    missing = sorted(set(splits[split]) - set(store.scene_ids()))
    if missing:
        raise ClevrRemvError(
            f"{store.splits_path}: split {split!r} lists scene(s) {missing[:5]} that are not complete on "
            f"disk; rerun `clevr-remv generate --out {store.root}` with the flags that made the dataset (it "
            "renders only the missing scenes; `clevr-remv split` keeps them listed, as a scene's split never "
            "changes)"
        )
    return list(splits[split])
