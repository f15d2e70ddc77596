"""One process against two (torchrun, gloo, CPU) at the same global batch: `benchmark` val scores
per seed and training samples/s, side by side.

    nice -n 10 python benchmarks/bench_distributed.py \
        --data ~/.cache/clevr-remv/multiview/35mm-b0.1/train --out /var/tmp/clevr-remv-bench-distributed/runs \
        --seeds 0 1 --epochs 1 --batch-size 8

For each seed, `benchmark --model baseline` trains once per process count (``--processes``, default
1 and 2): one process as `python -m clevr_remv benchmark ...`, N as `python -m torch.distributed.run
--standalone --nproc_per_node N -m clevr_remv benchmark ...`, each process with one torch thread,
the order of the counts alternating from seed to seed. The table gives each run's best and last
val centre oIoU and mIoU, its training samples/s (an epoch's train samples over rank 0's
``train_seconds`` in training.json, summed over epochs) and wall time, then per count the mean
oIoU difference to one process and the samples/s ratio. Without ``--test-data`` and with no test
split in ``--data``, a synthetic test split of 20 scenes at the data's size is written to
``--out``/test-data (the runs need one; it is not what this measures). Finished runs in ``--out``
are reused (rerun the command to print the table again); results are also written to
``--out``/bench_distributed.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.dataset.splits import split_scene_ids, write_splits
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.generate.synthetic import write_synthetic_dataset


def command(processes: int) -> list:
    """The launch of ``processes`` processes of `python -m clevr_remv`."""
    if processes == 1:
        return [sys.executable, "-m", "clevr_remv"]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
        "clevr_remv",
    ]


def test_data(args) -> str:
    """--test-data, --data when it has a test split, else a synthetic test split of its size."""
    if args.test_data:
        return args.test_data
    store = DatasetStore(args.data)
    if split_scene_ids(store, "test"):
        return args.data
    root = Path(args.out) / "test-data"
    if not (root / "splits.json").is_file():
        config = store.info()["config"]
        write_synthetic_dataset(root, scenes=20, grid=1, width=config["width"], height=config["height"], start=900)
        write_splits(root, "0,0,1")
    return str(root)


def train(args, seed: int, processes: int, test: str) -> dict:
    """Run (or reuse) one benchmark run; its figures."""
    out = Path(args.out) / f"seed{seed}-n{processes}"
    wall_path = out.with_name(out.name + ".wall")
    if not (out / "results.json").is_file():
        arguments = ["benchmark", "--model", "baseline", "--data", args.data, "--test-data", test, "--out", str(out)]
        arguments += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--seed", str(seed)]
        arguments += ["--workers", "0", "--views", "corners", "--resume"]
        print("+ " + " ".join(command(processes) + arguments), flush=True)
        started = time.perf_counter()
        environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(command(processes) + arguments, env=environment, check=True)
        wall_path.write_text(f"{time.perf_counter() - started:.1f}")
    training = json.loads((out / "training.json").read_text())
    history = training["history"]
    samples = len(ClevrRemvDataset(args.data, split="train", views=[DatasetStore(args.data).center]))
    best = max(history, key=lambda entry: entry["val_oIoU"])
    return {
        "seed": seed,
        "processes": processes,
        "best_val_oIoU": best["val_oIoU"],
        "best_epoch": best["epoch"],
        "last_val_oIoU": history[-1]["val_oIoU"],
        "last_val_mIoU": history[-1]["val_mIoU"],
        "samples_per_s": samples * len(history) / sum(entry["train_seconds"] for entry in history),
        "wall_s": float(wall_path.read_text()) if wall_path.is_file() else None,
    }


def table(runs: list, counts: list) -> str:
    """The Markdown table of the runs, then the mean differences and ratios against one process."""
    lines = [
        "| seed | processes | best val oIoU (epoch) | last val oIoU | last val mIoU | train samples/s | wall (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        wall = f"{run['wall_s']:.0f}" if run["wall_s"] is not None else "-"
        lines.append(
            f"| {run['seed']} | {run['processes']} | {run['best_val_oIoU']:.2f} ({run['best_epoch']}) | "
            f"{run['last_val_oIoU']:.2f} | {run['last_val_mIoU']:.2f} | {run['samples_per_s']:.1f} | {wall} |"
        )
    lines.append("")
    reference = {run["seed"]: run for run in runs if run["processes"] == counts[0]}
    for count in counts[1:]:
        mine = [run for run in runs if run["processes"] == count]
        gaps = [run["best_val_oIoU"] - reference[run["seed"]]["best_val_oIoU"] for run in mine]
        ratios = [run["samples_per_s"] / reference[run["seed"]]["samples_per_s"] for run in mine]
        lines.append(
            f"{count} processes against {counts[0]}: best val oIoU {', '.join(f'{gap:+.2f}' for gap in gaps)} "
            f"(per seed; mean {sum(gaps) / len(gaps):+.2f}), train samples/s ratio "
            f"{', '.join(f'{ratio:.2f}' for ratio in ratios)} (mean {sum(ratios) / len(ratios):.2f})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset with train and val splits (read only)")
    parser.add_argument("--test-data", default=None, help="dataset whose test split the runs score")
    parser.add_argument("--out", required=True, help="folder of the runs and the results")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="process counts; the first is the reference"
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8, help="the global batch of every run")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    test = test_data(args)
    runs = []
    for index, seed in enumerate(args.seeds):
        order = args.processes if index % 2 == 0 else args.processes[::-1]
        runs += sorted((train(args, seed, count, test) for count in order), key=lambda run: run["processes"])
    (Path(args.out) / "bench_distributed.json").write_text(json.dumps(runs, indent=2) + "\n")
    print(table(runs, args.processes))


if __name__ == "__main__":
    main()
