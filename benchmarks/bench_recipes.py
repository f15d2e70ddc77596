"""What makes RES training fit a CPU: an ablation of the levers, on the baseline, two seeds, with wall time.

On the multi-view experiment's training data (default rig, 160x112: 630 training and 135 val scenes
of centre views, from ``bench_multiview.py --stages render``), each arm adds one lever to the one
before and trains ``benchmark --model baseline`` with seeds 0 and 1:

1. ``scratch``: the default recipe from scratch, 15 epochs (the experiment's baseline);
2. ``pretrained``: the encoder initialised from ``clevr-remv pretrain`` (trained end to end);
3. ``frozen-stem``: its first two stages (stride 4) frozen, their output cached (recipe
   ``frozen-stem``): the same samples, less work per sample;
4. ``attributes``: the pretrained heads' per-cell attribute probabilities fused beside the features
   (recipe ``frozen-stem-attributes``);
5. ``iterations``: three times as many iterations (45 epochs);
6. ``scenes``: three times as many training scenes (1,890; the same 135 val scenes) for the same
   iterations as 5 (15 epochs).

Arms are compared on the val centre views (the best epoch's oIoU, which selects the checkpoint),
never on test; the test data is a centre-view rendering of the experiment's test scenes, only
because ``benchmark`` scores a test split (its one view is the "corners" of a 1x1 grid). Every run
resumes (run the command again). Results: one JSON per run and ``ablation.json`` /
``ablation.md`` in ``--results``; commands with their wall and CPU times in ``--cache``/commands.log
(CPU time is the fair cost where other jobs share the machine).

    nice -n 5 python benchmarks/bench_recipes.py --cache ~/.cache/clevr-remv/families \\
        --data ~/.cache/clevr-remv/multiview/35mm-b0.1/train --results docs/results/families/ablation
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from clevr_remv.dataset.splits import write_splits

ARMS = {  # name -> (recipe, pretrained encoder, epochs, training data ("small" or "large"))
    "scratch": ("default", False, 15, "small"),
    "pretrained": ("default", True, 15, "small"),
    "frozen-stem": ("frozen-stem", True, 15, "small"),
    "attributes": ("frozen-stem-attributes", True, 15, "small"),
    "iterations": ("frozen-stem-attributes", True, 45, "small"),
    "scenes": ("frozen-stem-attributes", True, 15, "large"),
}
RENDER = ["--grid", 1, "--width", 160, "--height", 112, "--samples", 2, "--min-pixels", 25, "--seed", 0]


def command(args: list, log: Path) -> dict:
    """Run a clevr-remv command; log it with its wall time and CPU time (user + system of the
    command's processes), which are returned in seconds. CPU time is the fair cost on a machine
    shared with other jobs, where wall time grows with the load."""
    line = "clevr-remv " + " ".join(map(str, args))
    print(f"$ {line}", flush=True)
    start, before = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "clevr_remv", *map(str, args)], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cost = {
        "wall_seconds": time.time() - start,
        "cpu_seconds": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
    }
    with open(log, "a") as stream:
        stream.write(f"{line}  # {cost['wall_seconds']:.0f} s wall, {cost['cpu_seconds']:.0f} s CPU\n")
    return cost


def large_training_set(small: Path, cache: Path, extra: int, log: Path) -> Path:
    """The small training set's scenes plus ``extra`` more of the same seed, rendered after the
    experiment's test scenes (index 900 on); train = every scene but the small set's val scenes."""
    splits = json.loads((small / "splits.json").read_text())
    large = cache / f"train-{len(splits['splits']['train']) + extra}"
    if not large.is_dir():
        copy = large.with_name(large.name + ".tmp")
        shutil.copytree(small, copy, ignore=shutil.ignore_patterns("splits.json"))
        copy.rename(large)
    command(["generate", "--out", large, "--scenes", extra, "--start", 900, *RENDER], log)
    if not (large / "splits.json").is_file():
        val = splits["splits"]["val"]
        scenes = sorted(int(path.name) for path in (large / "scenes").iterdir() if path.name.isdigit())
        splits["splits"] = {"train": sorted(set(scenes) - set(val)), "val": sorted(val), "test": []}
        splits["ratios"] = [1 - len(val) / len(scenes), len(val) / len(scenes), 0.0]
        (large / "splits.json").write_text(json.dumps(splits, indent=1))
    return large


def centre_test_set(cache: Path, log: Path) -> Path:
    """The experiment's 135 test scenes (index 765 on), centre views only, all in test."""
    test = cache / "test-centre"
    command(["generate", "--out", test, "--scenes", 135, "--start", 765, *RENDER], log)
    if not (test / "splits.json").is_file():
        write_splits(test, "0,0,1", seed=0)
    return test


def run_arm(name: str, seed: int, data: dict, encoder: Path, test: Path, runs: Path, log: Path) -> dict:
    """Train one arm with one seed (resumable); its val history, best val oIoU and wall time."""
    recipe, pretrained, epochs, which = ARMS[name]
    out = runs / f"{name}-seed{seed}"
    if not (out / "results.json").is_file():
        args = ["benchmark", "--model", "baseline", "--data", data[which], "--test-data", test, "--views", "corners"]
        args += ["--epochs", epochs, "--seed", seed, "--recipe", recipe, "--workers", 0, "--out", out, "--resume"]
        args += ["--vision-weights", encoder] if pretrained else []
        (out / "cost.json").write_text(json.dumps(command(args, log)))
    training = json.loads((out / "training.json").read_text())
    samples = json.loads((out / "results.json").read_text())
    return {
        "arm": name,
        "seed": seed,
        "recipe": recipe,
        "pretrained": pretrained,
        "epochs": epochs,
        "train_scenes": len(json.loads((Path(data[which]) / "splits.json").read_text())["splits"]["train"]),
        "best_val_oIoU": training["best_val_oIoU"],
        "best_epoch": training["best_epoch"],
        "history": training["history"],
        "test_centre_oIoU": samples["center"]["oIoU"],
        **json.loads((out / "cost.json").read_text()),
    }


def report(rows: list) -> str:
    """Markdown: per arm, the val centre oIoU of each seed and their mean, and the wall time."""
    lines = [
        "| arm | recipe | pretrained | epochs | train scenes | val oIoU seed 0 | seed 1 | mean | "
        "CPU time per run (min) | wall time per run (min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ARMS:
        runs = [row for row in rows if row["arm"] == name]
        if not runs:
            continue
        first = runs[0]
        scores = [f"{row['best_val_oIoU']:.2f}" for row in runs] + ["-"] * (2 - len(runs))
        mean = np.mean([row["best_val_oIoU"] for row in runs])
        cpu, wall = (np.mean([row[key] for row in runs]) / 60 for key in ("cpu_seconds", "wall_seconds"))
        lines.append(
            f"| {name} | {first['recipe']} | {'yes' if first['pretrained'] else 'no'} | {first['epochs']} | "
            f"{first['train_scenes']} | {' | '.join(scores[:2])} | {mean:.2f} | {cpu:.1f} | {wall:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "clevr-remv" / "families")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path.home() / ".cache" / "clevr-remv" / "multiview" / "35mm-b0.1" / "train",
        help="the experiment's training set of centre views (bench_multiview.py --stages render)",
    )
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--results", type=Path, default=Path("docs/results/families/ablation"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    log = args.cache / "commands.log"
    encoder = args.cache / "pretrain" / "encoder.pt"
    if not encoder.is_file():
        command(
            ["pretrain", "--data", args.data, "--out", encoder.parent, "--epochs", args.pretrain_epochs, "--resume"],
            log,
        )
    arms = args.arms.split(",")
    data = {"small": args.data}
    if any(ARMS[name][3] == "large" for name in arms):
        data["large"] = large_training_set(args.data, args.cache, 1260, log)
    test = centre_test_set(args.cache, log)
    rows = []
    for name in arms:
        for seed in map(int, args.seeds.split(",")):
            rows.append(run_arm(name, seed, data, encoder, test, args.cache / "ablation", log))
            args.results.mkdir(parents=True, exist_ok=True)
            shutil.copy2(
                args.cache / "ablation" / f"{name}-seed{seed}" / "results.json",
                args.results / f"{name}-seed{seed}.json",
            )
    pretrain = json.loads((encoder.parent / "pretrain.json").read_text())
    (args.results / "ablation.json").write_text(json.dumps({"pretrain": pretrain, "runs": rows}, indent=1))
    markdown = report(rows)
    (args.results / "ablation.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
