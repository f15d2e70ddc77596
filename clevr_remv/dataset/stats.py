"""`clevr-remv stats`: per-split counts and distributions, stats.json and PNG plots.

A *pair* is one (referent object, referring expression) of a scene, as in the paper's counts
(55,966 / 11,992 / 11,989 pairs); a *sample* is one (pair, view) where the referent is visible.
Words are whitespace-separated tokens of the expression text. In a generalized dataset a pair's
referent may be several objects (their pixels add up) or none (no target: left out of the area
figures); ``targets_per_expression_histogram`` counts expressions by how many objects they name.
"""

from collections import Counter
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from clevr_remv.dataset.atomic import atomic_path
from clevr_remv.dataset.expressions import family_name, referents_of
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError

ALL_SCENES = "all"  # the one pseudo-split used when the dataset has no splits.json yet
AREA_RATIO_EDGES = np.linspace(0.0, 2.0, 41)  # visible area of a view / that of the centre view


def _mean(total, count):
    return total / count if count else None


def split_stats(store: DatasetStore, scene_ids, progress_label=None) -> dict:
    """Counts, means and histograms of the scenes ``scene_ids`` (a progress bar when
    ``progress_label`` is given).

    Visible area, from scene.json's per-view pixel counts of each pair's referent:
    ``referent_pixels_by_view[v-1][u-1]`` is its mean pixel count in view (u, v);
    ``area_vs_center_by_view[v-1][u-1]`` the mean of pixels(view) / pixels(centre view), and
    ``area_vs_center_histogram`` the distribution of that ratio over all (pair, view) (ratios
    above the last edge fall in the last bin). Pairs hidden in the centre view have no ratio.
    """
    grid = store.grid
    uc, vc = store.center
    objects_per_scene, objects_per_pair, words, families, targets = [], [], [], Counter(), Counter()
    views_total, samples, target_pairs = 0, 0, 0
    pixel_sums, ratio_sums, ratio_pairs = np.zeros((grid, grid)), np.zeros((grid, grid)), 0
    ratio_counts = np.zeros(len(AREA_RATIO_EDGES) - 1, np.int64)
    for scene_id in tqdm(scene_ids, desc=progress_label, unit="scene", disable=progress_label is None):
        scene = store.load_scene(scene_id, check=False)
        refexps = store.load_refexps(scene_id, check=False)
        try:
            expressions = refexps["expressions"]
            objects_per_scene.append(len(scene["objects"]))
            views_total += len(scene["views"])
            for expression in expressions:
                objects_per_pair.append(len(scene["objects"]))
                words.append(len(expression["text"].split()))
                families[family_name(expression)] += 1
                samples += len(expression["views"])
                referents = referents_of(expression)
                targets[len(referents)] += 1
                if not referents:
                    continue
                target_pairs += 1
                # scene.json lists views v-major: row v-1, column u-1 of the reshaped counts is view (u, v)
                pixels = sum(
                    np.array([entry["pixels"] for entry in scene["objects"][k - 1]["views"]], float) for k in referents
                ).reshape(grid, grid)
                pixel_sums += pixels
                if pixels[vc - 1, uc - 1] > 0:
                    ratios = pixels / pixels[vc - 1, uc - 1]
                    ratio_sums += ratios
                    ratio_pairs += 1
                    ratio_counts += np.histogram(np.minimum(ratios, AREA_RATIO_EDGES[-1]), AREA_RATIO_EDGES)[0]
        except (IndexError, KeyError, TypeError, ValueError) as error:
            raise ClevrRemvError(
                f"{store.scene_dir(scene_id)}: scene.json and refexps.json do not fit the "
                f"format ({error!r}); run `clevr-remv validate --data {store.root}`"
            ) from error
    pairs, scenes = len(words), len(scene_ids)
    return {
        "scenes": scenes,
        "views_per_scene": _mean(views_total, scenes),
        "pairs": pairs,
        "pairs_per_scene": _mean(pairs, scenes),
        "samples": samples,
        "mean_objects_per_image": _mean(sum(objects_per_scene), scenes),
        "mean_objects_per_pair": _mean(sum(objects_per_pair), pairs),
        "mean_words_per_expression": _mean(sum(words), pairs),
        "families": dict(sorted(families.items())),
        "objects_per_pair_histogram": {str(k): n for k, n in sorted(Counter(objects_per_pair).items())},
        "words_per_expression_histogram": {str(k): n for k, n in sorted(Counter(words).items())},
        "targets_per_expression_histogram": {str(k): n for k, n in sorted(targets.items())},
        "referent_pixels_by_view": (pixel_sums / target_pairs).tolist() if target_pairs else None,
        "area_vs_center_by_view": (ratio_sums / ratio_pairs).tolist() if ratio_pairs else None,
        "area_vs_center_histogram": {"edges": AREA_RATIO_EDGES.tolist(), "counts": ratio_counts.tolist()},
    }


def dataset_stats(root, progress: bool = False) -> dict:
    """``{"splits": {name: split_stats}}`` for every split in splits.json, or for one
    pseudo-split ``all`` holding every complete scene when the dataset is not split yet."""
    store = DatasetStore(root)
    if store.splits_path.is_file():
        names = list(store.load_splits()["splits"])
        scene_lists = {name: split_scene_ids(store, name) for name in names}
    else:
        scene_lists = {ALL_SCENES: store.scene_ids()}
    return {
        "grid": store.grid,
        "splits": {
            name: split_stats(store, ids, f"{name} scenes" if progress else None) for name, ids in scene_lists.items()
        },
    }


def _save_figure(figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120)


def _bar_histogram(axis, histogram: dict, xlabel: str, mean) -> None:
    values = [int(key) for key in histogram]
    axis.bar(values, list(histogram.values()), color="#4C72B0", width=0.8)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("pairs")
    if values:
        axis.set_xticks(range(min(values), max(values) + 1))
        axis.axvline(mean, color="#C44E52", linestyle="--", label=f"mean {mean:.2f}")
        axis.legend()
    else:
        axis.text(0.5, 0.5, "no pairs", ha="center", va="center", transform=axis.transAxes)


def write_plots(stats: dict, out_dir) -> list:
    """Write ``pairs_<split>.png`` (objects per pair, words per expression: the paper's
    figures 6.5-6.7) and ``visible_area.png``; return the paths written."""
    out_dir = Path(out_dir)
    written = []
    for name, split in stats["splits"].items():
        figure = Figure(figsize=(10, 4), layout="constrained")
        objects_axis, words_axis = figure.subplots(1, 2)
        _bar_histogram(
            objects_axis, split["objects_per_pair_histogram"], "objects in the image", split["mean_objects_per_pair"]
        )
        objects_axis.set_title("(a) number of objects")
        _bar_histogram(
            words_axis,
            split["words_per_expression_histogram"],
            "words in the expression",
            split["mean_words_per_expression"],
        )
        words_axis.set_title("(b) expression length")
        figure.suptitle(f"{name}: {split['pairs']} image-text pairs in {split['scenes']} scenes")
        written.append(out_dir / f"pairs_{name}.png")
        _save_figure(figure, written[-1])

    splits = [(name, split) for name, split in stats["splits"].items() if split["area_vs_center_by_view"]]
    figure = Figure(figsize=(4 * (len(splits) + 1), 4), layout="constrained")
    axes = figure.subplots(1, len(splits) + 1, squeeze=False)
    grid = stats["grid"]
    high = max([np.max(split["area_vs_center_by_view"]) for _, split in splits] + [1.0])
    for axis, (name, split) in zip(axes[0], splits, strict=False):
        heat = axis.imshow(
            split["area_vs_center_by_view"],
            cmap="viridis",
            vmin=0.0,
            vmax=high,
            extent=(0.5, grid + 0.5, grid + 0.5, 0.5),
        )
        axis.set(
            title=f"{name}: referent area / centre view",
            xlabel="u",
            ylabel="v",
            xticks=range(1, grid + 1),
            yticks=range(1, grid + 1),
        )
        figure.colorbar(heat, ax=axis, shrink=0.8)
    ratio_axis = axes[0][-1]
    for name, split in splits:
        histogram = split["area_vs_center_histogram"]
        ratio_axis.stairs(np.asarray(histogram["counts"]) / sum(histogram["counts"]), histogram["edges"], label=name)
    ratio_axis.set(
        title="over all (pair, view)", xlabel="pixels(view) / pixels(centre view)", ylabel="fraction of (pair, view)"
    )
    if splits:
        ratio_axis.legend()
    figure.suptitle("Visible area of the referent across views")
    written.append(out_dir / "visible_area.png")
    _save_figure(figure, written[-1])
    return written


def _format(value, pattern) -> str:
    return "-" if value is None else format(value, pattern)


def format_table(stats: dict) -> str:
    """The per-split numbers as a plain-text table, one column per split."""
    splits = stats["splits"]
    rows = [
        ("scenes", "scenes", "d"),
        ("views per scene", "views_per_scene", ".0f"),
        ("pairs", "pairs", "d"),
        ("pairs per scene", "pairs_per_scene", ".2f"),
        ("(pair, view) samples", "samples", "d"),
        ("objects per image", "mean_objects_per_image", ".3f"),
        ("words per expression", "mean_words_per_expression", ".3f"),
    ]
    lines = [f"{'':<22}" + "".join(f"{name:>12}" for name in splits)]
    for label, key, pattern in rows:
        lines.append(f"{label:<22}" + "".join(f"{_format(s[key], pattern):>12}" for s in splits.values()))
    if any(set(s["targets_per_expression_histogram"]) - {"1"} for s in splits.values()):
        for label, low, high in (("no-target %", 0, 0), ("one-target %", 1, 1), ("multi-target %", 2, None)):
            shares = [
                _format(
                    _mean(100 * _count_between(s["targets_per_expression_histogram"], low, high), s["pairs"]), ".1f"
                )
                for s in splits.values()
            ]
            lines.append(f"{label:<22}" + "".join(f"{share:>12}" for share in shares))
    for family in sorted({family for s in splits.values() for family in s["families"]}):
        shares = [_format(_mean(100 * s["families"].get(family, 0), s["pairs"]), ".1f") for s in splits.values()]
        lines.append(f"{'family ' + family + ' %':<22}" + "".join(f"{share:>12}" for share in shares))
    return "\n".join(lines)


def _count_between(histogram: dict, low: int, high) -> int:
    """Expressions of ``histogram`` (targets -> count) naming ``low`` to ``high`` objects (None: no upper end)."""
    return sum(n for k, n in histogram.items() if int(k) >= low and (high is None or int(k) <= high))
