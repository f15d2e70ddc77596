"""Does the RES baseline learn on real renders? Val centre oIoU per epoch against the trivial floors.

Renders a small real dataset with `clevr-remv generate` into ``--cache`` (resumable: a second run
reuses the scenes), splits it 70/15/15, scores the four trivial predictors (`evaluate
--predictor`) on the val centre views, then trains `baseline` with each recipe side by side
through `clevr-remv benchmark`'s code (each run resumable in ``--cache``/runs), and plots val
centre oIoU per epoch against the floors. Recipes: the current defaults (``dice-aug-1e-3``:
cross-entropy plus the Dice term, flip-and-shift augmentation, lr 1e-3), without the augmentation
at lr 1e-3 and 3e-3 (``dice-1e-3``, ``dice-3e-3``), and the defaults before (``ce-1e-3``:
cross-entropy alone).

    python benchmarks/bench_learning.py --cache /tmp/remv-learn --scenes 300 \
        --recipes dice-aug-1e-3,dice-1e-3,dice-3e-3,ce-1e-3 --epochs 12,5,20,5 \
        --threads 1 --workers 0 --plot docs/images/baseline_learning.png
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from clevr_remv.dataset.splits import write_splits
from clevr_remv.res.benchmark import run_benchmark
from clevr_remv.res.evaluate import evaluate
from clevr_remv.res.trivial import PREDICTORS

# Recipe -> (peak learning rate, weight of the Dice term, flip-and-shift augmentation).
RECIPES = {"dice-aug-1e-3": (1e-3, 1.0, True), "dice-1e-3": (1e-3, 1.0, False), "dice-3e-3": (3e-3, 1.0, False),
           "ce-1e-3": (1e-3, 0.0, False)}
RENDER = ["--grid", "3", "--width", "160", "--height", "112", "--samples", "2", "--min-pixels", "25"]


def render(data: Path, scenes: int) -> None:
    """Generate (or finish) the cached dataset and split it."""
    subprocess.run([sys.executable, "-m", "clevr_remv", "generate", "--out", str(data), "--scenes", str(scenes),
                    *RENDER], check=True)
    write_splits(data, "0.7,0.15,0.15", seed=0)


def floors(data: Path, out: Path) -> dict:
    """Predictor -> val centre results of each trivial predictor."""
    return {name: evaluate(data, split="val", views="center", out=out / name, progress=False,
                           predictor=name)["center"] for name in PREDICTORS}


def label(recipe: str) -> str:
    lr, dice_weight, augment = RECIPES[recipe]
    loss = "CE + Dice" if dice_weight else "CE"
    return f"baseline, {loss}{', flip+shift' if augment else ''}, lr {lr:.0e}".replace("e-0", "e-")


def train(data: Path, out: Path, recipe: str, epochs: int, args) -> dict:
    """Train (or finish training) one recipe; returns the test results, its history and its wall
    time summed over every call that worked on it (kept in ``out``/bench_seconds.json)."""
    start = time.perf_counter()
    clock = out / "bench_seconds.json"
    spent = json.loads(clock.read_text())["seconds"] if clock.is_file() else 0.0
    lr, dice_weight, augment = RECIPES[recipe]
    results = run_benchmark(data, "baseline", out, epochs=epochs, batch_size=args.batch_size, lr=lr,
                            workers=args.workers, seed=args.seed, resume=True,
                            config_overrides={"dice_weight": dice_weight, "augment": augment})
    history = json.loads((out / "training.json").read_text())["history"]
    spent += time.perf_counter() - start
    clock.write_text(json.dumps({"seconds": spent}))
    return {"results": results, "history": history, "seconds": spent}


def plot(runs: dict, floor: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6, 3.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for recipe, run in runs.items():
        axes.plot([e["epoch"] for e in run["history"]], [e["val_oIoU"] for e in run["history"]], marker="o",
                  label=label(recipe))
    for (name, summary), style in zip(floor.items(), (":", "--", "-.", (0, (5, 1)))):
        axes.axhline(summary["oIoU"], color="gray", linestyle=style, linewidth=1, label=f"{name} predictor")
    highest = max([summary["oIoU"] for summary in floor.values()]
                  + [entry["val_oIoU"] for run in runs.values() for entry in run["history"]])
    axes.set(xlabel="epoch", ylabel="val centre oIoU (%)", ylim=(0, min(100, highest + 15)),
             title="baseline on real renders (160x112) vs trivial predictors")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize=7, loc="upper left", ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder for the dataset and the runs (reused)")
    parser.add_argument("--scenes", type=int, default=400)
    parser.add_argument("--epochs", default="12,5,20,5", help="epochs per recipe, comma-separated (one: for all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of {', '.join(RECIPES)}")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the curves (default: in --cache)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.cache / "dataset"
    render(data, args.scenes)
    floor = floors(data, args.cache / "floors")
    recipes = args.recipes.split(",")
    epochs = [int(e) for e in args.epochs.split(",")]
    epochs = dict(zip(recipes, epochs * len(recipes) if len(epochs) == 1 else epochs, strict=True))
    runs = {recipe: train(data, args.cache / "runs" / f"{recipe}-e{epochs[recipe]}-s{args.seed}", recipe,
                          epochs[recipe], args) for recipe in recipes}
    plot(runs, floor, args.plot or args.cache / "baseline_learning.png")
    print(f"\n{args.scenes} scenes, epochs {epochs}, batch {args.batch_size}, {args.threads} threads\n")
    print("| predictions | val centre oIoU (best epoch) | val centre mIoU | test centre oIoU | test centre mIoU "
          "| wall (min) |\n|---|---|---|---|---|---|")
    for recipe, run in runs.items():
        best = max(run["history"], key=lambda entry: entry["val_oIoU"])
        test = run["results"]["center"]
        print(f"| {label(recipe)} | {best['val_oIoU']:.2f} ({best['epoch']}) | {best['val_mIoU']:.2f} "
              f"| {test['oIoU']:.2f} | {test['mIoU']:.2f} | {run['seconds'] / 60:.1f} |")
    tests = next(iter(runs.values()))["results"]["trivial_predictors"]
    for name, summary in floor.items():
        print(f"| {name} | {summary['oIoU']:.2f} | {summary['mIoU']:.2f} | {tests[name]['center']['oIoU']:.2f} "
              f"| {tests[name]['center']['mIoU']:.2f} | |")


if __name__ == "__main__":
    main()
