"""The paper's multi-view experiment on the full 9x9 grid (chapter 7: Tables 7.1, 7.3, 7.4, Figure 7.16).

For each rig (lens in mm, baseline in world units), in ``--cache/<rig>/`` (every stage resumable: run
the same command again after an interruption and finished stages are skipped):

1. renders a training dataset of centre views only (``generate --grid 1``: scenes 0 .. T-1, split
   train / val) and a test dataset on the full grid (``generate --grid 9 --start T``: other scenes of
   the same seed, all in test). Scene i is the same layout and centre camera in both forms, so the
   training set is the 9x9 dataset's centre views at 1/81 of the rendering; the only difference is
   the referent filter, which in a 1-view dataset sees the centre view alone;
2. scores the trivial predictors (``evaluate --predictor``) on all 81 views of the test scenes;
3. trains the baseline (its defaults) on the training centre views, once per ``--seeds``
   (``benchmark --test-data``), tests on all 81 views (protocol ``heldout``), then fine-tunes the same
   checkpoint on the test scenes' centre views and tests again (protocol ``finetune-test``);
4. writes, per rig, every run's results.json and a summary (centre row of Table 7.1, Table 7.3's
   corners, average and SD, Table 7.4's MVR and MRD, IoU against the camera's distance from the
   centre, and per view the samples whose referent touches the frame edge or changes occlusion
   state against the centre view, scored apart) into ``--results``, the heat maps and curves into
   ``--figures``, and the tables as Markdown on stdout and in ``--results``/report.md.

    nice -n 5 python benchmarks/bench_multiview.py --cache ~/.cache/clevr-remv/multiview \\
        --rigs 35:0.1,25:0.1 --results docs/results/multiview --figures docs/multiview
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
from clevr_remv.metrics import mean_relative_drop, mvr, summarize
from clevr_remv.refexp.engine import OCCLUSION_THRESHOLD
from clevr_remv.res.evaluate import format_cell, open_predictions
from clevr_remv.res.trivial import PREDICTORS

CORNERS = ((1, 1), (1, 9), (9, 1), (9, 9))  # the paper's I11, I19, I91, I99 (I_uv: u column, v row)
PROTOCOLS = ("heldout", "finetune-test")
CENTRE_COLUMNS = ("P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9", "mIoU", "oIoU")


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


def run_models(train: Path, test: Path, runs: Path, args, log: Path) -> dict:
    """(seed, protocol) -> run folder of the baseline, trained once per seed and tested both ways."""
    folders = {}
    for seed in args.seeds:
        common = [
            "--model",
            "baseline",
            "--data",
            train,
            "--test-data",
            test,
            "--views",
            "all",
            "--epochs",
            args.epochs,
            "--seed",
            seed,
            "--workers",
            0,
            "--resume",
        ]
        heldout = runs / f"baseline-seed{seed}-heldout"
        if not (heldout / "results.json").is_file():
            command(["benchmark", *common, "--out", heldout], log)
        finetune = runs / f"baseline-seed{seed}-finetune-test"
        if not (finetune / "results.json").is_file():
            (finetune / "checkpoints").mkdir(parents=True, exist_ok=True)
            for name in ("best.pt", "last.pt"):
                shutil.copy2(heldout / "checkpoints" / name, finetune / "checkpoints" / name)
            command(
                [
                    "benchmark",
                    *common,
                    "--protocol",
                    "finetune-test",
                    "--finetune-epochs",
                    args.finetune_epochs,
                    "--out",
                    finetune,
                ],
                log,
            )
        folders[seed, "heldout"], folders[seed, "finetune-test"] = heldout, finetune
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


def explain(test: Path, predictions: Path) -> dict:
    """oIoU of the samples whose referent touches the frame edge in that view, or whose visibility
    state (partially visible: >= 20 % of its box covered) differs from the centre view's, against
    the others; per camera distance ring (steps, rounded) and overall."""
    store = DatasetStore(test)
    source = open_predictions(predictions)
    center = store.center
    sums = defaultdict(lambda: ([], []))
    for scene in store.load_splits()["splits"]["test"]:
        document = store.load_scene(scene)
        views = {(view["u"], view["v"]): i for i, view in enumerate(document["views"])}
        for expression in store.load_refexps(scene, check=False)["expressions"]:
            entries = document["objects"][expression["referent"] - 1]["views"]
            centre_partial = entries[views[center]]["occlusion"] >= OCCLUSION_THRESHOLD
            for view in map(tuple, expression["views"]):
                truth = store.read_index(scene, *view) == expression["referent"]
                prediction = source.mask((scene, expression["id"], *view), truth.shape)
                prediction = np.zeros_like(truth) if prediction is None else prediction
                edge = bool(truth[0].any() or truth[-1].any() or truth[:, 0].any() or truth[:, -1].any())
                changed = (entries[views[view]]["occlusion"] >= OCCLUSION_THRESHOLD) != centre_partial
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


def summarise(folder: Path, center) -> dict:
    """The figures the report needs from one run's results.json."""
    results = json.loads((folder / "results.json").read_text())
    corners = {f"I{u}{v}": results["per_view"][view_name(u, v)]["oIoU"] for u, v in CORNERS}
    values = list(corners.values())
    # The paper scored the centre and the four corners only: its MVR sums over those four views.
    corner_ious = {(u, v): results["per_view"][view_name(u, v)]["oIoU"] for u, v in CORNERS}
    corner_ious[tuple(center)] = results["center"]["oIoU"]
    return {
        "center": results["center"],
        "corners": corners,
        "corner_average": float(np.mean(values)),
        "corner_sd": float(np.std(values, ddof=1)),
        "MVR": results["MVR"],
        "MRD": results["MRD"],
        "MVR_corners": mvr(corner_ious, center),
        "MRD_corners": mean_relative_drop(corner_ious, center),
        "overall": results["overall"],
        "by_distance": by_distance(results, center),
        "samples": results["samples"],
    }


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
        "| predictions | centre | I11 | I19 | I91 | I99 | average | SD | MVR corners (%) | MRD corners (%) "
        "| all 81 views | MVR 81 (%) | MRD 81 (%) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | {format_cell(s['center']['oIoU'])} | "
            + " | ".join(format_cell(value) for value in s["corners"].values())
            + " | "
            + " | ".join(format_cell(s[key]) for key in ("corner_average", "corner_sd", "MVR_corners", "MRD_corners"))
            + f" | {format_cell(s['overall']['oIoU'])} | {format_cell(s['MVR'])} | {format_cell(s['MRD'])} |"
        )
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
    """oIoU against camera distance (mean, with the min-max band over views) per run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, s in summaries.items():
        distances = list(s["by_distance"])
        means = [s["by_distance"][d]["mean"] for d in distances]
        (line,) = axes.plot(distances, means, marker="o", markersize=3, label=name)
        axes.fill_between(
            distances,
            [s["by_distance"][d]["min"] for d in distances],
            [s["by_distance"][d]["max"] for d in distances],
            color=line.get_color(),
            alpha=0.15,
        )
    axes.set(
        xlabel="camera distance from the centre (steps)",
        ylabel="oIoU (%)",
        title=f"oIoU against camera distance, rig {rig}",
    )
    axes.legend(fontsize=7)
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
    parser.add_argument("--epochs", type=int, default=15)
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
            run_models(train, test, runs, args, log)
        if "report" not in stages:
            continue
        center = DatasetStore(test).center
        folders = {
            f"baseline seed {seed}, {protocol}": runs / f"baseline-seed{seed}-{protocol}"
            for seed in args.seeds
            for protocol in PROTOCOLS
        }
        folders.update({f"`{name}`": runs / f"floor-{name}" for name in PREDICTORS})
        folders = {name: folder for name, folder in folders.items() if (folder / "results.json").is_file()}
        summaries = {name: summarise(folder, center) for name, folder in folders.items()}
        out = args.results / label
        out.mkdir(parents=True, exist_ok=True)
        for folder in folders.values():
            shutil.copy2(folder / "results.json", out / f"{folder.name}.json")
        explained = {
            name: explain(test, folder / "predictions.jsonl")
            for name, folder in folders.items()
            if (folder / "predictions.jsonl").is_file()
        }
        truth = per_view_truth_effect(test)
        (out / "summary.json").write_text(
            json.dumps(
                {
                    "rig": {"lens": lens, "baseline": baseline},
                    "runs": summaries,
                    "edge_and_occlusion": explained,
                    "per_view_truth": truth,
                },
                indent=1,
                default=str,
            )
        )
        markdown.append(report(label, summaries))
        markdown.append(explanation_report(explained, truth))
        draw_curves(label, summaries, args.figures / f"{label}-distance.png")
        heldout = runs / f"baseline-seed{args.seeds[0]}-heldout" / "iou_heatmap.png"
        if heldout.is_file():
            shutil.copy2(heldout, args.figures / f"{label}-heatmap.png")
    if markdown:
        (args.results / "report.md").write_text("\n".join(markdown))
        print("\n".join(markdown))


if __name__ == "__main__":
    main()
