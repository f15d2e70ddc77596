"""Scene splits: assign whole scenes to train / val / test, and read back the scenes of a split.

The assignment is a pure function of the scene indices, the ratios and the seed: scenes are
ordered by a SHA-256 hash of ``"<seed>:<scene>"`` (stable across Python and NumPy versions) and
cut into consecutive runs whose sizes follow the ratios by the largest-remainder rule, so
10,000 scenes at 0.7 / 0.15 / 0.15 give exactly 7,000 / 1,500 / 1,500.
"""
import hashlib
import json
from fractions import Fraction

from clevr_remv import FORMAT_VERSION
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.errors import ClevrRemvError

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
        raise ClevrRemvError(f"--ratios: {text!r} is not a comma-separated list of numbers; "
                             f"write e.g. {DEFAULT_RATIOS}") from error
    if len(ratios) != len(SPLIT_NAMES):
        raise ClevrRemvError(f"--ratios: {text!r} gives {len(ratios)} ratio(s), expected "
                             f"{len(SPLIT_NAMES)} ({' / '.join(SPLIT_NAMES)}); write e.g. {DEFAULT_RATIOS}")
    if any(ratio < 0 for ratio in ratios):
        raise ClevrRemvError(f"--ratios: {text!r} has a negative ratio; every ratio must be >= 0")
    if abs(sum(ratios) - 1) > RATIO_TOLERANCE:
        raise ClevrRemvError(f"--ratios: {text!r} sums to {float(sum(ratios)):g}, not 1; "
                             f"adjust them so they add up to 1 (e.g. {DEFAULT_RATIOS})")
    return ratios


def split_sizes(count: int, ratios) -> list:
    """Split ``count`` items by ``ratios`` (largest remainder): floors of the exact quotas, then
    one more item to the largest fractional parts (earlier split first on ties)."""
    total = sum(Fraction(ratio) for ratio in ratios)
    quotas = [Fraction(ratio) / total * count for ratio in ratios]
    sizes = [quota.numerator // quota.denominator for quota in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - sizes[i]), i))
    for i in by_remainder[:count - sum(sizes)]:
        sizes[i] += 1
    return sizes


def scenes_for_every_split(ratios) -> int:
    """The fewest scenes that give every split with a positive ratio at least one scene."""
    count = 1
    while any(size == 0 and ratio > 0 for size, ratio in zip(split_sizes(count, ratios), ratios)):
        count += 1
    return count


def empty_split_warnings(document: dict) -> list:
    """One line per empty split of a splits.json document, with the fix."""
    ratios = [Fraction(str(ratio)) for ratio in document["ratios"]]
    scenes = sum(len(ids) for ids in document["splits"].values())
    lines = []
    for (name, ids), ratio in zip(document["splits"].items(), ratios):
        if ids:
            continue
        fix = (f"generate at least {scenes_for_every_split(ratios)} scenes for these ratios" if ratio > 0
               else "its ratio is 0")
        lines.append(f"split {name!r} is empty ({scenes} scene(s) at ratios "
                     f"{','.join(f'{float(r):g}' for r in ratios)}); commands that read it (evaluate and "
                     f"benchmark read val and test) will fail: {fix}")
    return lines


def _shuffle_key(seed: int, scene: int) -> bytes:
    return hashlib.sha256(f"{seed}:{scene}".encode()).digest()


def assign_splits(scene_ids, ratios, seed: int) -> dict:
    """Map each split name to the sorted scene indices it receives (disjoint, covering all)."""
    order = sorted(scene_ids, key=lambda scene: _shuffle_key(seed, scene))
    splits, start = {}, 0
    for name, size in zip(SPLIT_NAMES, split_sizes(len(order), ratios)):
        splits[name] = sorted(order[start:start + size])
        start += size
    return splits


def write_splits(root, ratios=DEFAULT_RATIOS, seed: int = 0) -> tuple:
    """Assign the complete scenes of the dataset at ``root`` by ``ratios`` (as for
    :func:`parse_ratios`) and write ``splits.json``.

    Returns (splits document, changed): when the file already holds exactly this assignment it
    is left untouched and ``changed`` is False.
    """
    store = DatasetStore(root)
    ratios = parse_ratios(ratios)
    scene_ids = store.scene_ids()
    if not scene_ids:
        raise ClevrRemvError(f"{store.scenes_dir}: the dataset has no complete scenes to split; "
                             f"run `clevr-remv generate --out {store.root}` first")
    document = {"format_version": FORMAT_VERSION, "seed": seed, "ratios": [float(r) for r in ratios],
                "splits": assign_splits(scene_ids, ratios, seed)}
    if store.splits_path.is_file():
        try:
            if json.loads(store.splits_path.read_text()) == document:
                return document, False
        except ValueError:
            pass  # an unreadable old file is simply replaced
    write_json_atomic(store.splits_path, document, "splits")
    return document, True


def split_scene_ids(store: DatasetStore, split: str) -> list:
    """The scene indices of ``split`` from splits.json, checked to exist on disk."""
    splits = store.load_splits()["splits"]
    if split not in splits:
        raise ClevrRemvError(f"{store.splits_path}: no split named {split!r}; "
                             f"choose one of {', '.join(sorted(splits))}")
    missing = sorted(set(splits[split]) - set(store.scene_ids()))
    if missing:
        raise ClevrRemvError(f"{store.splits_path}: split {split!r} lists scene(s) {missing[:5]} that are "
                             f"not complete on disk; finish `clevr-remv generate` or rerun `clevr-remv split`")
    return list(splits[split])
