"""The paper's multi-view experiment on the full 9x9 grid (chapter 7: Tables 7.1, 7.3, 7.4, Figure 7.16).

For each rig (lens in mm, baseline in world units), in ``--cache/<rig>/`` (every stage resumable: run
the same command again after an interruption and finished stages are skipped):

1. renders a training dataset of centre views only (``generate --grid 1``: scenes 0 .. T-1, split
   train / val) and a test dataset on the full grid (``generate --grid 9 --start T``: other scenes of
   the same seed, all in test). Scene i is the same layout and centre camera in both forms, so the
   training set is the 9x9 dataset's centre views at 1/81 of the rendering; the only difference is
   the referent filter, which in a 1-view dataset sees the centre view alone;
2. scores the three floors and the ``attributes`` perception oracle (``evaluate --predictor``) on
   all 81 views of the test scenes;
3. trains each of ``--models`` on the training centre views, once per ``--seeds``
   (``benchmark --test-data``), tests on all 81 views (protocol ``heldout``), then fine-tunes the same
   checkpoint on the test scenes' centre views and tests again (protocol ``finetune-test``). The
   default is the baseline (its defaults, from scratch); ``baseline-blind`` is the same on a constant
   image (``--blind``, the no-vision floor); ``baseline-pretrained``, ``cmsa`` and ``lavt-cnn`` are the
   fusion families, all from the training set's ``clevr-remv pretrain`` encoder with the recipe that
   ``bench_recipes.py`` chose on val, for ``--family-epochs``;
4. writes, per rig, every run's results.json and a summary (centre row of Table 7.1, Table 7.3's
   corners, average and SD, Table 7.4's MVR and MRD, the mean over seeds, IoU against the camera's
   distance from the centre, per view the samples whose referent touches the frame edge or changes
   occlusion state against the centre view, scored apart, and the corner drop and left-right
   difference with intervals from resampling the test scenes) into ``--results``, the heat maps
   (mean over seeds, one per protocol) and curves into ``--figures``, and the tables as Markdown on
   stdout and in ``--results``/report.md.

    nice -n 5 python benchmarks/bench_multiview.py --cache ~/.cache/clevr-remv/multiview \\
        --rigs 35:0.1,25:0.1 --seeds 0,1,2 --results docs/results/multiview --figures docs/multiview

The fusion families (docs/families.md) reuse the same cache, and the baseline's runs above:

    python benchmarks/bench_multiview.py --rigs 35:0.1 --seeds 0,1 --models baseline-pretrained,cmsa,lavt-cnn \\
        --stages models
    python benchmarks/bench_multiview.py --rigs 35:0.1 --seeds 0 --models baseline-blind --protocols heldout \
        --stages models
    python benchmarks/bench_multiview.py --rigs 35:0.1 --seeds 0,1,2 --stages floors,report \\
        --models baseline,baseline-blind,baseline-pretrained,cmsa,lavt-cnn \\
        --results docs/results/families --figures docs/families
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.geometry import view_name
from clevr_remv.metrics import mean_relative_drop, mvr, mvr_valid, summarize
from clevr_remv.refexp.engine import OCCLUSION_THRESHOLD
from clevr_remv.res.evaluate import (
    NOT_COMPARABLE_NOTE,
    draw_heatmap,
    format_cell,
    format_mvr,
    open_predictions,
)
from clevr_remv.res.models.registry import attention_parts
from clevr_remv.res.trivial import ORACLES, PREDICTORS, TrivialPredictions

CORNERS = ((1, 1), (1, 9), (9, 1), (9, 9))  # the paper's I11, I19, I91, I99 (I_uv: u column, v row)
PROTOCOLS = ("heldout", "finetune-test")
CENTRE_COLUMNS = ("P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9", "mIoU", "oIoU")
FAMILY_RECIPE = "frozen-stem-attributes"  # chosen by benchmarks/bench_recipes.py on val
FAMILY_EPOCHS = 10  # what the family runs could afford on a 2-core machine (docs/families.md)
MODEL_RUNS = {  # --models name -> (registered model, recipe, trained from a `pretrain` encoder, more flags)
    "baseline": ("baseline", "default", False, ()),  # the experiment's baseline, from scratch
    "baseline-blind": ("baseline", "default", False, ("--blind",)),  # the no-vision floor
    "baseline-pretrained": ("baseline", FAMILY_RECIPE, True, ()),
    "cmsa": ("cmsa", FAMILY_RECIPE, True, ()),
    "lavt-cnn": ("lavt-cnn", FAMILY_RECIPE, True, ()),
}


def command(args: list, log: Path) -> None:
    """Run a clevr-remv command (logged with its wall time)."""
    line = "clevr-remv " + " ".join(map(str, args))
    print(f"$ {line}", flush=True)
    start = time.time()
    subprocess.run([sys.executable, "-m", "clevr_remv", *map(str, args)], check=True)
    with open(log, "a") as stream:
        stream.write(f"{line}  # {time.time() - start:.0f} s\n")


def render(rig_dir: Path, lens: float, baseline: float, args, log: Path) -> tuple:
    """(train dataset, test dataset) of one rig, generated and split (resumes unfinished renders)."""
    common = [
        "--width",
        args.width,
        "--height",
        args.height,
        "--samples",
        args.samples,
        "--min-pixels",
        args.min_pixels,
        "--lens",
        lens,
        "--baseline",
        baseline,
        "--seed",
        args.seed,
    ]
    train, test = rig_dir / "train", rig_dir / "test"
    scenes = args.train_scenes + args.val_scenes
    command(["generate", "--out", train, "--scenes", scenes, "--grid", 1, *common], log)
    command(["generate", "--out", test, "--scenes", args.test_scenes, "--start", scenes, "--grid", 9, *common], log)
    if not (train / "splits.json").is_file():
        write_splits(train, f"{args.train_scenes}/{scenes},{args.val_scenes}/{scenes},0", seed=0)
    if not (test / "splits.json").is_file():
        write_splits(test, "0,0,1", seed=0)
    return train, test


def run_floors(test: Path, runs: Path, log: Path) -> dict:
    """Predictor name -> its run folder (all 81 views of the test scenes)."""
    folders = {}
    for name in PREDICTORS:
        folders[name] = runs / f"floor-{name}"
        if not (folders[name] / "results.json").is_file():
            command(["evaluate", "--data", test, "--predictor", name, "--views", "all", "--out", folders[name]], log)
    return folders


def run_models(train: Path, test: Path, runs: Path, rig_dir: Path, args, log: Path) -> dict:
    """(model run, seed, protocol) -> run folder: each of ``args.models`` trained once per seed and
    tested under ``args.protocols`` (``heldout`` always: ``finetune-test`` fine-tunes its checkpoint;
    the pretrained families after ``clevr-remv pretrain`` on the training set)."""
    folders = {}
    encoder = rig_dir / "pretrain" / "encoder.pt"
    for name in args.models:
        model, recipe, pretrained, flags = MODEL_RUNS[name]
        if pretrained and not encoder.is_file():
            command(
                ["pretrain", "--data", train, "--out", encoder.parent, "--epochs", args.pretrain_epochs, "--resume"],
                log,
            )
        epochs = args.family_epochs if pretrained else args.epochs
        for seed in args.seeds:
            common = ["--model", model, "--data", train, "--test-data", test, "--views", "all", "--epochs", epochs]
            common += ["--seed", seed, "--workers", 0, "--recipe", recipe, "--resume"]
            common += (["--vision-weights", encoder] if pretrained else []) + list(flags)
            heldout = runs / f"{name}-seed{seed}-heldout"
            if not (heldout / "results.json").is_file():
                command(["benchmark", *common, "--out", heldout], log)
            folders[name, seed, "heldout"] = heldout
            if "finetune-test" not in args.protocols:
                continue
            finetune = runs / f"{name}-seed{seed}-finetune-test"
            if not (finetune / "results.json").is_file():
                (finetune / "checkpoints").mkdir(parents=True, exist_ok=True)
                for checkpoint in ("best.pt", "last.pt"):
                    shutil.copy2(heldout / "checkpoints" / checkpoint, finetune / "checkpoints" / checkpoint)
                protocol = ["--protocol", "finetune-test", "--finetune-epochs", args.finetune_epochs]
                command(["benchmark", *common, *protocol, "--out", finetune], log)
            folders[name, seed, "finetune-test"] = finetune
    return folders


def camera_distance(view, center) -> float:
    """Euclidean distance of view (u, v) from the centre, in camera steps."""
    return float(np.hypot(view[0] - center[0], view[1] - center[1]))


def by_distance(results: dict, center) -> dict:
    """Camera distance (steps, rounded: rings 0 .. 6 on a 9x9 grid, the corners in ring 6) -> oIoU
    mean, SD and min / max over the views of that ring."""
    groups = defaultdict(list)
    for summary in results["per_view"].values():
        groups[round(camera_distance((summary["u"], summary["v"]), center))].append(summary["oIoU"])
    return {
        distance: {
            "views": len(values),
            "mean": float(np.mean(values)),
            "sd": float(np.std(values)),
            "min": float(np.min(values)),
            "max": float(np.max(values)),
        }
        for distance, values in sorted(groups.items())
    }


def scored_samples(store: DatasetStore, source, views=None, keep=None):
    """(scene, view, truth mask, ``source``'s predicted mask, the referent's occlusion per view) for
    every test sample, or only those in ``views`` (a set of (u, v)) and of the expressions in ``keep``
    (a set of (scene, expression id)); ``source``: a prediction source (``open_predictions`` or a
    trivial predictor)."""
    for scene in store.load_splits()["splits"]["test"]:
        document = store.load_scene(scene)
        positions = {(view["u"], view["v"]): i for i, view in enumerate(document["views"])}
        for expression in store.load_refexps(scene, check=False)["expressions"]:
            if keep is not None and (scene, expression["id"]) not in keep:
                continue
            entries = document["objects"][expression["referent"] - 1]["views"]
            occlusion = {view: entries[i]["occlusion"] for view, i in positions.items()}
            for view in map(tuple, expression["views"]):
                if views is not None and view not in views:
                    continue
                truth = store.read_index(scene, *view) == expression["referent"]
                prediction = source.mask((scene, expression["id"], *view), truth.shape)
                prediction = np.zeros_like(truth) if prediction is None else prediction
                yield scene, view, truth, prediction, occlusion


def explain(test: Path, source) -> dict:
    """oIoU of the samples whose referent touches the frame edge in that view, or whose visibility
    state (partially visible: >= 20 % of its box covered) differs from the centre view's, against
    the others; per camera distance ring (steps, rounded) and overall."""
    store = DatasetStore(test)
    center = store.center
    sums = defaultdict(lambda: ([], []))
    for _, view, truth, prediction, occlusion in scored_samples(store, source):
        centre_partial = occlusion[center] >= OCCLUSION_THRESHOLD
        edge = bool(truth[0].any() or truth[-1].any() or truth[:, 0].any() or truth[:, -1].any())
        changed = (occlusion[view] >= OCCLUSION_THRESHOLD) != centre_partial
        ring = round(camera_distance(view, center))
        for group in (
            f"edge={edge}",
            f"occlusion_changed={changed}",
            "plain" if not (edge or changed) else "edge_or_changed",
        ):
            for where in (ring, "all"):
                intersections, unions = sums[group, where]
                intersections.append(int(np.logical_and(truth, prediction).sum()))
                unions.append(int(np.logical_or(truth, prediction).sum()))
    table = defaultdict(dict)
    for (group, where), (intersections, unions) in sums.items():
        summary = summarize(intersections, unions)
        table[group][str(where)] = {"samples": summary["samples"], "oIoU": summary["oIoU"], "mIoU": summary["mIoU"]}
    return dict(table)


def corner_contrasts(test: Path, sources: list, resamples: int = 2000, corners=CORNERS, keep=None) -> dict:
    """Two differences of oIoU (points) and two robustness figures, averaged over the runs whose
    prediction ``sources`` are given, with 95 % intervals from resampling the test scenes (those
    with samples) with replacement (paired: a resampled scene brings its samples in every view and
    every run): the four corners' mean minus the centre ("corners - centre") and the left corners I11, I19 minus
    the right ones I91, I99 ("left - right", the asymmetry of the paper's Table 7.3); and the mean
    relative drop of the corners ("MRD corners", %, as `mean_relative_drop` over equidistant
    corners) and their MVR ("MVR corners", %, the mean of the runs' MVRs). ``corners``: the four
    corner views in CORNERS' order (another grid's); ``keep``: score only these (scene, expression
    id) pairs (`scored_samples`)."""
    store = DatasetStore(test)
    views = [tuple(store.center), *corners]  # centre, I11, I19, I91, I99
    scenes = store.load_splits()["splits"]["test"]
    rows = {scene: i for i, scene in enumerate(scenes)}
    sums = np.zeros((len(sources), len(scenes), len(views), 2))  # run, scene, view, (intersection, union)
    for run, source in enumerate(sources):
        for scene, view, truth, prediction, _ in scored_samples(store, source, set(views), keep):
            overlap = np.logical_and(truth, prediction).sum(), np.logical_or(truth, prediction).sum()
            sums[run, rows[scene], views.index(view)] += overlap
    sums = sums[:, sums[..., 1].sum(axis=(0, 2)) > 0]  # the scenes with samples (a set may leave some without)
    count = sums.shape[1]

    def contrasts(sample) -> np.ndarray:
        intersection, union = np.moveaxis(sample.sum(axis=1), -1, 0)  # each (run, view)
        iou = 100 * intersection / union
        differences = [iou[:, 1:].mean(axis=1) - iou[:, 0], iou[:, 1:3].mean(axis=1) - iou[:, 3:].mean(axis=1)]
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN where the centre scores 0, as MRD
            differences.append(100 * (1 - iou[:, 1:] / iou[:, :1]).mean(axis=1))
        differences.append([mvr(dict(zip(views, run_ious, strict=True)), views[0]) for run_ious in iou])
        return np.array(differences).mean(axis=1)

    rng = np.random.default_rng(0)
    draws = np.array([contrasts(sums[:, rng.integers(0, count, count)]) for _ in range(resamples)])
    lows, highs = np.percentile(draws, [2.5, 97.5], axis=0)
    return {
        name: {"value": float(value), "low": float(low), "high": float(high)}
        for name, value, low, high in zip(
            ("corners - centre", "left - right", "MRD corners", "MVR corners"),
            contrasts(sums),
            lows,
            highs,
            strict=True,
        )
    } | {"runs": len(sources), "scenes": count, "resamples": resamples}


def mean_of(values: list):
    """The element-wise mean of equally shaped summaries (nested dicts); a field equal in all keeps
    its value, one that is not a number in every summary and differs is None."""
    first = values[0]
    if isinstance(first, dict):
        return {key: mean_of([value[key] for value in values]) for key in first}
    if all(value == first for value in values):
        return first
    if all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        return float(np.mean(values))
    return None


def per_view_truth_effect(test: Path) -> dict:
    """On the test scenes: objects whose visibility state (partially: >= 20 % of the box covered)
    differs between some view and the centre, and the visibility-family expressions that the old
    rule (the centre view's occlusion decides for all views) makes but that are false in some view."""
    from clevr_remv.generate.properties import load_properties
    from clevr_remv.refexp import generator
    from clevr_remv.refexp.engine import SceneFacts, referent_of

    store = DatasetStore(test)
    info = store.info()
    properties = info["config"]["properties"] or load_properties()
    settings = info["refexps"]
    objects = changing = old_visibility = old_false = new_visibility = 0
    real_views = generator.ViewTruth.views
    for scene in store.load_splits()["splits"]["test"]:
        document = store.load_scene(scene)
        for obj in document["objects"]:
            states = {entry["occlusion"] >= OCCLUSION_THRESHOLD for entry in obj["views"]}
            objects += 1
            changing += len(states) > 1
        positions = {(view["u"], view["v"]): i for i, view in enumerate(document["views"])}
        generator.ViewTruth.views = lambda self, program, referent: self.referent_views[referent]
        try:
            old = generator.generate_refexps(document, properties=properties, **settings)["expressions"]
        finally:
            generator.ViewTruth.views = real_views
        for expression in old:
            if expression["family"]["template"] != "visibility.json":
                continue
            old_visibility += 1
            old_false += any(
                referent_of(expression["program"], SceneFacts.from_scene(document, positions[tuple(v)]))
                != expression["referent"] - 1
                for v in expression["views"]
            )
        new_visibility += sum(
            e["family"]["template"] == "visibility.json" for e in store.load_refexps(scene, check=False)["expressions"]
        )
    return {
        "objects": objects,
        "objects_changing_state": changing,
        "old_visibility_expressions": old_visibility,
        "old_false_in_some_view": old_false,
        "new_visibility_expressions": new_visibility,
    }


def all_view_ious(results: dict) -> dict:
    """{(u, v): oIoU} of every scored view of a results.json."""
    return {(view["u"], view["v"]): view["oIoU"] for view in results["per_view"].values()}


def summarise(folder: Path, center, corner_views=CORNERS) -> dict:
    """The figures the report needs from one run's results.json (``corner_views``: the four corners
    in CORNERS' order, another grid's)."""
    results = json.loads((folder / "results.json").read_text())
    corners = {f"I{u}{v}": results["per_view"][view_name(u, v)]["oIoU"] for u, v in corner_views}
    values = list(corners.values())
    # The paper scored the centre and the four corners only: its MVR sums over those four views.
    corner_ious = {(u, v): results["per_view"][view_name(u, v)]["oIoU"] for u, v in corner_views}
    corner_ious[tuple(center)] = results["center"]["oIoU"]
    benchmark = results.get("benchmark", {})
    return {
        "center": results["center"],
        "corners": corners,
        "corner_average": float(np.mean(values)),
        "corner_sd": float(np.std(values, ddof=1)),
        "MVR": results["MVR"],
        "MVR_valid": results.get("mvr_valid", mvr_valid(all_view_ious(results), center)),
        "MRD": results["MRD"],
        "MVR_corners": mvr(corner_ious, center),
        "MVR_corners_valid": mvr_valid(corner_ious, center),
        "MRD_corners": mean_relative_drop(corner_ious, center),
        "a_num": benchmark.get("a_num", sum(attention_parts(benchmark["model"]).values())) if benchmark else None,
        "overall": results["overall"],
        "by_distance": by_distance(results, center),
        "samples": results["samples"],
    }


def run_name(model: str, seed: int, protocol: str) -> str:
    return f"{model} seed {seed}, {protocol}"


def mean_name(model: str, seeds: int, protocol: str) -> str:
    return f"{model}, mean of {seeds} seeds, {protocol}"


def reference_name(predictor: str) -> str:
    """How the report names a trivial predictor: `name`, and the perception oracle as one."""
    return f"`{predictor}`" + (" (oracle)" if predictor in ORACLES else "")


def is_floor(name: str) -> bool:
    """Whether a summary's name is a trivial predictor's (a floor or the oracle: written `name`)."""
    return name.startswith("`")


def with_seed_means(summaries: dict, models: list, seeds: list) -> dict:
    """``summaries`` with, for each model and protocol run with several seeds, the seeds' mean
    (placed after that model's runs; its corner SD is that of the mean corners), the floors last.
    The mean of seeds is the mean of each figure, MVR and MRD included (the mean of the per-seed
    MVRs, `clevr_remv.metrics`), valid only when every seed's MVR is."""
    ordered = {}
    for model in models:
        for protocol in PROTOCOLS:
            seed_runs = [
                summaries[run_name(model, s, protocol)] for s in seeds if run_name(model, s, protocol) in summaries
            ]
            ordered |= {
                run_name(model, s, protocol): summaries[run_name(model, s, protocol)]
                for s in seeds
                if run_name(model, s, protocol) in summaries
            }
            if len(seed_runs) > 1:
                mean = mean_of(seed_runs)
                mean["corner_sd"] = float(np.std(list(mean["corners"].values()), ddof=1))
                for key in ("MVR_valid", "MVR_corners_valid"):
                    flags = [run[key] for run in seed_runs]
                    mean[key] = None if None in flags else all(flags)
                ordered[mean_name(model, len(seed_runs), protocol)] = mean
    return ordered | {name: summary for name, summary in summaries.items() if is_floor(name)}


def contrast_report(contrasts: dict) -> str:
    """Markdown: each run's corner drop, left-right difference, MRD and MVR with their intervals."""
    lines = [
        "Are these differences larger than the test set can tell? oIoU differences (points), and the "
        "corners' MRD and MVR (%), with 95 % intervals from resampling the test scenes; an interval of a "
        "difference that holds 0 shows no difference:",
        "",
        "| predictions | corners - centre | 95 % interval | left (I11, I19) - right (I91, I99) | 95 % interval "
        "| MRD corners | 95 % interval | MVR corners | 95 % interval |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("corners - centre", "left - right", "MRD corners", "MVR corners")
    for name, figures in contrasts.items():
        cells = [
            f"{figures[key]['value']:+.2f} | {figures[key]['low']:+.2f} to {figures[key]['high']:+.2f}"
            if key in figures
            else "- | -"
            for key in keys
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report(rig: str, summaries: dict) -> str:
    """Markdown: Table 7.1 centre row, Table 7.3, Table 7.4 and IoU against camera distance."""
    lines = [
        f"### Rig {rig}",
        "",
        "Centre view (Table 7.1's row):",
        "",
        "| predictions | P@0.5 | P@0.6 | P@0.7 | P@0.8 | P@0.9 | mIoU | oIoU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | "
            + " | ".join(
                format_cell(s["center"][k]) for k in ("P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9", "mIoU", "oIoU")
            )
            + " |"
        )
    lines += [
        "",
        "Four corners, oIoU (Table 7.3; I_uv = view (u, v): I11 = u1_v1 top-left, I19 = u1_v9 bottom-left, "
        "I91 = u9_v1 top-right, I99 = u9_v9 bottom-right), and robustness (Table 7.4; lower is better) over "
        "the centre and four corners (the paper's protocol) and over all 81 views:",
        "",
        "| predictions | A-Num | centre | I11 | I19 | I91 | I99 | average | SD | MVR corners (%) | MRD corners (%) "
        "| all 81 views | MVR 81 (%) | MRD 81 (%) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | {'' if s.get('a_num') is None else s['a_num']} | {format_cell(s['center']['oIoU'])} | "
            + " | ".join(format_cell(value) for value in s["corners"].values())
            + " | "
            + " | ".join(format_cell(s[key]) for key in ("corner_average", "corner_sd"))
            + f" | {format_mvr(s['MVR_corners'], s['MVR_corners_valid'])} | {format_cell(s['MRD_corners'])}"
            + f" | {format_cell(s['overall']['oIoU'])} | {format_mvr(s['MVR'], s['MVR_valid'])} "
            + f"| {format_cell(s['MRD'])} |"
        )
    if any(s["MVR_valid"] is False or s["MVR_corners_valid"] is False for s in summaries.values()):
        lines += ["", NOT_COMPARABLE_NOTE]
    distances = list(next(iter(summaries.values()))["by_distance"])
    lines += [
        "",
        "oIoU against the camera's distance from the centre (camera steps, rounded; mean over the "
        "views of each ring, min-max in brackets):",
        "",
        "| predictions | " + " | ".join(f"{d:g}" for d in distances) + " |",
        "|---|" + "---|" * len(distances),
    ]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{s['by_distance'][d]['mean']:.1f} ({s['by_distance'][d]['min']:.1f}-{s['by_distance'][d]['max']:.1f})"
                for d in distances
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def explanation_report(explained: dict, truth: dict) -> str:
    """Markdown: oIoU per camera-distance ring for samples whose referent touches the frame edge,
    whose visibility state differs from the centre's, and the rest; and the per-view truth counts."""
    lines = [
        "Where the drop comes from: oIoU (samples) per distance ring of samples whose referent touches the "
        "frame edge in that view, whose visibility state differs from the centre view's, and the others:",
        "",
    ]
    for name, table in explained.items():
        rings = sorted((key for key in table.get("plain", {}) if key != "all"), key=int)
        lines += [f"*{name}*", "", "| samples | " + " | ".join(rings) + " | all |", "|---|" + "---|" * (len(rings) + 1)]
        for group, label in (
            ("plain", "neither"),
            ("edge=True", "touching the edge"),
            ("occlusion_changed=True", "visibility state changed"),
        ):
            row = table.get(group, {})
            lines.append(
                f"| {label} | "
                + " | ".join(
                    f"{row[k]['oIoU']:.1f} ({row[k]['samples']})" if k in row else "-" for k in rings + ["all"]
                )
                + " |"
            )
        lines.append("")
    lines += [
        f"Per-view truth on these test scenes: {truth['objects_changing_state']} of {truth['objects']} objects "
        "change visibility state (partially / fully visible) between some view and the centre; the old rule "
        f"(centre-view occlusion for every view) would have made {truth['old_visibility_expressions']} "
        f"visibility expressions, {truth['old_false_in_some_view']} of them false in some view they listed; "
        f"the per-view rule made {truth['new_visibility_expressions']}, all true in every listed view.",
        "",
    ]
    return "\n".join(lines)


def draw_curves(rig: str, summaries: dict, path: Path) -> None:
    """oIoU against camera distance (mean, with the min-max band over views): every run on the left,
    the trained models' change from their centre view on the right (where a drop of a point shows).
    Where several seeds were run, their mean stands for them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if any(", mean of " in name for name in summaries):
        summaries = {name: s for name, s in summaries.items() if " seed " not in name}
    figure = Figure(figsize=(11, 4), dpi=100)
    FigureCanvasAgg(figure)
    absolute, relative = figure.subplots(1, 2)
    for name, s in summaries.items():
        distances = list(s["by_distance"])
        rings = [s["by_distance"][d] for d in distances]
        centre = rings[0]["mean"]
        panels = [(absolute, 0.0)] + ([(relative, centre)] if not is_floor(name) else [])
        for axes, offset in panels:
            (line,) = axes.plot(
                distances, [ring["mean"] - offset for ring in rings], marker="o", markersize=3, label=name
            )
            axes.fill_between(
                distances,
                [ring["min"] - offset for ring in rings],
                [ring["max"] - offset for ring in rings],
                color=line.get_color(),
                alpha=0.15,
            )
    absolute.set(xlabel="camera distance from the centre (steps)", ylabel="oIoU (%)", title=f"oIoU, rig {rig}")
    relative.axhline(0, color="grey", linewidth=0.8)
    relative.set(
        xlabel="camera distance from the centre (steps)",
        ylabel="oIoU minus the centre view's (points)",
        title="trained models, change from the centre",
    )
    absolute.legend(fontsize=7)
    relative.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "clevr-remv" / "multiview")
    parser.add_argument("--rigs", default="35:0.1,25:0.1", help="LENS:BASELINE,... (mm, world units)")
    parser.add_argument("--train-scenes", type=int, default=630)
    parser.add_argument("--val-scenes", type=int, default=135)
    parser.add_argument("--test-scenes", type=int, default=135)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=112)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--min-pixels", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--seeds", default="0,1", help="training seeds")
    parser.add_argument(
        "--models",
        default="baseline",
        help=f"model runs, of {', '.join(MODEL_RUNS)} (baseline: from scratch; baseline-blind: from scratch on "
        "a constant image; the others from a pretrained encoder)",
    )
    parser.add_argument(
        "--protocols",
        default=",".join(PROTOCOLS),
        help="heldout, or both: finetune-test fine-tunes the heldout run's checkpoint",
    )
    parser.add_argument("--epochs", type=int, default=15, help="epochs of the baseline from scratch")
    parser.add_argument("--family-epochs", type=int, default=FAMILY_EPOCHS, help="epochs of the pretrained models")
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument(
        "--stages",
        default="render,floors,models,report",
        help="what to run now (e.g. render alone, to render while the machine is busy)",
    )
    parser.add_argument("--results", type=Path, default=Path("docs/results/multiview"))
    parser.add_argument("--figures", type=Path, default=Path("docs/multiview"))
    args = parser.parse_args()
    args.seeds = [int(seed) for seed in args.seeds.split(",")]
    args.models = args.models.split(",")
    unknown = sorted(set(args.models) - set(MODEL_RUNS))
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODEL_RUNS)}")
    args.protocols = args.protocols.split(",")
    if "heldout" not in args.protocols or not set(args.protocols) <= set(PROTOCOLS):
        parser.error(f"--protocols: heldout, or {','.join(PROTOCOLS)}; not {','.join(args.protocols)}")
    stages = set(args.stages.split(","))
    args.cache.mkdir(parents=True, exist_ok=True)
    log = args.cache / "commands.log"
    markdown = []
    for rig in args.rigs.split(","):
        lens, baseline = map(float, rig.split(":"))
        label = f"{lens:g}mm-b{baseline:g}"
        rig_dir, runs = args.cache / label, args.cache / label / "runs"
        train, test = rig_dir / "train", rig_dir / "test"
        if "render" in stages:
            train, test = render(rig_dir, lens, baseline, args, log)
        if "floors" in stages:
            run_floors(test, runs, log)
        if "models" in stages:
            run_models(train, test, runs, rig_dir, args, log)
        if "report" not in stages:
            continue
        store = DatasetStore(test)
        center = store.center
        folders = {
            run_name(model, seed, protocol): runs / f"{model}-seed{seed}-{protocol}"
            for model in args.models
            for seed in args.seeds
            for protocol in PROTOCOLS
        }
        folders.update({reference_name(name): runs / f"floor-{name}" for name in PREDICTORS})
        folders = {name: folder for name, folder in folders.items() if (folder / "results.json").is_file()}
        summaries = with_seed_means(
            {name: summarise(folder, center) for name, folder in folders.items()}, args.models, args.seeds
        )
        out = args.results / label
        out.mkdir(parents=True, exist_ok=True)
        for folder in folders.values():
            shutil.copy2(folder / "results.json", out / f"{folder.name}.json")
        scored = {name: folder / "predictions.jsonl" for name, folder in folders.items()}
        scored = {name: open_predictions(path) for name, path in scored.items() if path.is_file()}
        explained = {name: explain(test, source) for name, source in scored.items()}
        contrasts = {name: corner_contrasts(test, [source]) for name, source in scored.items()}
        for model in args.models:
            for protocol in PROTOCOLS:
                names = [run_name(model, s, protocol) for s in args.seeds if run_name(model, s, protocol) in scored]
                if len(names) > 1:
                    contrasts[mean_name(model, len(names), protocol)] = corner_contrasts(
                        test, [scored[n] for n in names]
                    )
        for name in PREDICTORS:
            if name != "empty":  # no overlap anywhere: no difference to test
                contrasts[reference_name(name)] = corner_contrasts(test, [TrivialPredictions(store, name)])
        truth = per_view_truth_effect(test)
        (out / "summary.json").write_text(
            json.dumps(
                {
                    "rig": {"lens": lens, "baseline": baseline},
                    "runs": summaries,
                    "contrasts": contrasts,
                    "edge_and_occlusion": explained,
                    "per_view_truth": truth,
                },
                indent=1,
                default=str,
            )
        )
        markdown.append(report(label, summaries))
        markdown.append(contrast_report(contrasts))
        markdown.append(explanation_report(explained, truth))
        draw_curves(label, summaries, args.figures / f"{label}-distance.png")
        for model in args.models:
            for protocol in PROTOCOLS:
                per_view = [
                    json.loads((folders[run_name(model, seed, protocol)] / "results.json").read_text())["per_view"]
                    for seed in args.seeds
                    if run_name(model, seed, protocol) in folders
                ]
                if per_view:
                    results = {"robustness_iou": "oIoU", "split": "test", "per_view": mean_of(per_view)}
                    name = (
                        f"{label}-heatmap-{protocol}.png"
                        if model == "baseline"
                        else f"{label}-{model}-heatmap-{protocol}.png"
                    )
                    draw_heatmap(results, store.grid, center, args.figures / name)
    if markdown:
        (args.results / "report.md").write_text("\n".join(markdown))
        print("\n".join(markdown))


if __name__ == "__main__":
    main()
