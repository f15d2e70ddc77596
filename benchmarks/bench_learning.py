"""Does the RES baseline learn on real renders? Val centre oIoU per epoch against the floors.

Renders a small real dataset with `clevr-remv generate` into ``--cache`` (resumable: a second run
reuses the scenes), splits it 70/15/15, scores the three floors and the attributes perception
oracle (`evaluate --predictor`) on the val centre views, then trains `baseline` with each recipe
side by side through `clevr-remv benchmark`'s code (each run resumable in ``--cache``/runs), and
plots val centre oIoU per epoch against them. Recipes: the current defaults (``product-context``:
product fusion, the dilated context head, cross-entropy plus the Dice term, flip-and-shift
augmentation, lr 1e-3); the same with Hu et al.'s concat fusion (``concat-context``); Hu et al.'s
model, concat fusion and pointwise head, as in the defaults before (``dice-aug-1e-3``), also
without the augmentation at lr 1e-3 and 3e-3 (``dice-1e-3``, ``dice-3e-3``) and with
cross-entropy alone (``ce-1e-3``, the first defaults). For each run the table also says how often
its test centre prediction covers the referent more than any other object, and whether its
wrong picks share the referent's colour more often than chance (does it read the words?).

    python benchmarks/bench_learning.py --cache /tmp/remv-learn --scenes 900 \
        --recipes product-context,concat-context,dice-aug-1e-3 --epochs 15 \
        --threads 2 --workers 0 --plot docs/evaluating/baseline_learning.png
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clevr_remv.dataset.splits import split_scene_ids, write_splits
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.res.benchmark import run_benchmark
from clevr_remv.res.evaluate import JsonlPredictions, evaluate, predictor_label
from clevr_remv.res.models.baseline import CONTEXT_DILATIONS
from clevr_remv.res.trivial import PREDICTORS

# Recipe -> (fusion, context head, peak learning rate, weight of the Dice term, flip-and-shift augmentation).
RECIPES = {
    "product-context": ("product", True, 1e-3, 1.0, True),
    "concat-context": ("concat", True, 1e-3, 1.0, True),
    "dice-aug-1e-3": ("concat", False, 1e-3, 1.0, True),
    "dice-1e-3": ("concat", False, 1e-3, 1.0, False),
    "dice-3e-3": ("concat", False, 3e-3, 1.0, False),
    "ce-1e-3": ("concat", False, 1e-3, 0.0, False),
}
RENDER = ["--grid", "3", "--width", "160", "--height", "112", "--samples", "2", "--min-pixels", "25"]


def render(data: Path, scenes: int) -> None:
    """Generate (or finish) the cached dataset and split it."""
    subprocess.run(
        [sys.executable, "-m", "clevr_remv", "generate", "--out", str(data), "--scenes", str(scenes), *RENDER],
        check=True,
    )
    write_splits(data, "0.7,0.15,0.15", seed=0)


def floors(data: Path, out: Path) -> dict:
    """Predictor -> val centre results of each trivial predictor."""
    return {
        name: evaluate(data, split="val", views="center", out=out / name, progress=False, predictor=name)["center"]
        for name in PREDICTORS
    }


def referent_picks(data: Path, predictions: Path) -> dict:
    """On the test centre views: % of predictions that cover the referent more than any other object
    (``picked``), and % of the rest whose most-covered object has the referent's colour
    (``same_colour``; chance is about 1 in 8): does the model read the words, or just find objects?"""
    store, source = DatasetStore(data), JsonlPredictions(predictions)
    u, v = store.center
    picked, same_colour, wrong = 0, 0, 0
    for scene in split_scene_ids(store, "test"):
        index, objects = store.read_index(scene, u, v), store.load_scene(scene, check=False)["objects"]
        for expression in store.load_refexps(scene, check=False)["expressions"]:
            mask = source.mask((scene, expression["id"], u, v), index.shape)
            covered = np.bincount(index[mask], minlength=len(objects) + 1)[1:] if mask is not None else []
            if not np.any(covered):
                continue
            choice, referent = int(np.argmax(covered)), expression["referent"] - 1
            picked += choice == referent
            wrong += choice != referent
            same_colour += choice != referent and objects[choice]["color"] == objects[referent]["color"]
    return {"picked": 100 * picked / max(1, picked + wrong), "same_colour": 100 * same_colour / max(1, wrong)}


def label(recipe: str) -> str:
    fusion, context, lr, dice_weight, augment = RECIPES[recipe]
    loss = "CE + Dice" if dice_weight else "CE"
    return (
        f"baseline, {fusion}, {'context' if context else 'pointwise'} head, {loss}"
        f"{', flip+shift' if augment else ''}, lr {lr:.0e}"
    ).replace("e-0", "e-")


def train(data: Path, out: Path, recipe: str, epochs: int, args) -> dict:
    """Train (or finish training) one recipe; returns the test results, its history and its wall
    time summed over every call that worked on it (kept in ``out``/bench_seconds.json)."""
    start = time.perf_counter()
    clock = out / "bench_seconds.json"
    spent = json.loads(clock.read_text())["seconds"] if clock.is_file() else 0.0
    fusion, context, lr, dice_weight, augment = RECIPES[recipe]
    overrides = {
        "fusion": fusion,
        "context_dilations": list(CONTEXT_DILATIONS) if context else [],
        "dice_weight": dice_weight,
        "augment": augment,
    }
    results = run_benchmark(
        data,
        "baseline",
        out,
        epochs=epochs,
        batch_size=args.batch_size,
        lr=lr,
        workers=args.workers,
        seed=args.seed,
        resume=True,
        config_overrides=overrides,
    )
    history = json.loads((out / "training.json").read_text())["history"]
    spent += time.perf_counter() - start
    clock.write_text(json.dumps({"seconds": spent}))
    return {
        "results": results,
        "history": history,
        "seconds": spent,
        "picks": referent_picks(data, out / "predictions.jsonl"),
    }


def plot(runs: dict, floor: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6, 3.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for recipe, run in runs.items():
        axes.plot(
            [e["epoch"] for e in run["history"]],
            [e["val_oIoU"] for e in run["history"]],
            marker="o",
            label=label(recipe),
        )
    for (name, summary), style in zip(floor.items(), (":", "--", "-.", (0, (5, 1))), strict=True):
        axes.axhline(summary["oIoU"], color="gray", linestyle=style, linewidth=1, label=predictor_label(name))
    highest = max(
        [summary["oIoU"] for summary in floor.values()]
        + [entry["val_oIoU"] for run in runs.values() for entry in run["history"]]
    )
    axes.set(
        xlabel="epoch",
        ylabel="val centre oIoU (%)",
        ylim=(0, min(100, highest + 25)),
        title="baseline on real renders (160x112) vs the floors and the oracle",
    )
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize=7, loc="upper left", ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder for the dataset and the runs (reused)")
    parser.add_argument("--scenes", type=int, default=900)
    parser.add_argument("--epochs", default="15", help="epochs per recipe, comma-separated (one: for all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--recipes",
        default="product-context,concat-context,dice-aug-1e-3",
        help=f"comma-separated, of {', '.join(RECIPES)}",
    )
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the curves (default: in --cache)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.cache / "dataset"
    render(data, args.scenes)
    floor = floors(data, args.cache / "floors")
    recipes = args.recipes.split(",")
    epochs = [int(e) for e in args.epochs.split(",")]
    epochs = dict(zip(recipes, epochs * len(recipes) if len(epochs) == 1 else epochs, strict=True))
    runs = {
        recipe: train(
            data, args.cache / "runs" / f"{recipe}-e{epochs[recipe]}-s{args.seed}", recipe, epochs[recipe], args
        )
        for recipe in recipes
    }
    plot(runs, floor, args.plot or args.cache / "baseline_learning.png")
    print(f"\n{args.scenes} scenes, epochs {epochs}, batch {args.batch_size}, {args.threads} threads\n")
    print(
        "| predictions | val centre oIoU (best epoch) | val centre mIoU | test centre oIoU | test centre mIoU "
        "| test centre + corners oIoU | referent picked (%) | wrong picks of its colour (%) | wall (min) |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for recipe, run in runs.items():
        best = max(run["history"], key=lambda entry: entry["val_oIoU"])
        test = run["results"]
        print(
            f"| {label(recipe)} | {best['val_oIoU']:.2f} ({best['epoch']}) | {best['val_mIoU']:.2f} "
            f"| {test['center']['oIoU']:.2f} | {test['center']['mIoU']:.2f} | {test['overall']['oIoU']:.2f} "
            f"| {run['picks']['picked']:.1f} | {run['picks']['same_colour']:.1f} | {run['seconds'] / 60:.1f} |"
        )
    tests = next(iter(runs.values()))["results"]["trivial_predictors"]
    for name, summary in floor.items():
        print(
            f"| {predictor_label(name)} | {summary['oIoU']:.2f} | {summary['mIoU']:.2f} "
            f"| {tests[name]['center']['oIoU']:.2f} | {tests[name]['center']['mIoU']:.2f} "
            f"| {tests[name]['overall']['oIoU']:.2f} | | | |"
        )


if __name__ == "__main__":
    main()
