"""ClevrRemvDataset throughput against plain PIL decoding of the same PNGs, in one run.

Each sample needs two PNGs (the RGB view and its index mask). The baseline opens and decodes
exactly those two files per sample with PIL into NumPy arrays; the Dataset does that plus the
float conversion, the mask comparison and the dict. The DataLoader runs use 2 worker
processes and include their start-up; the "blank tensors" row moves samples of the same shapes
without reading anything, i.e. the cost of shipping float32 images between processes.

    python benchmarks/bench_data.py --scenes 24 --grid 3 --width 480 --height 320
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset

from clevr_remv import ClevrRemvDataset
from clevr_remv.dataset.splits import write_splits
from clevr_remv.generate.synthetic import write_synthetic_dataset


def decode_only(dataset, indices) -> None:
    for index in indices:
        sample = dataset.describe(index)
        for path in (
            dataset.store.rgb_path(sample["scene"], *sample["view"]),
            dataset.store.index_path(sample["scene"], *sample["view"]),
        ):
            with Image.open(path) as image:
                np.asarray(image)


def dataset_loop(dataset, indices) -> None:
    for index in indices:
        dataset[index]


def loader_loop(dataset, indices, workers: int, batch_size: int) -> None:
    for _ in DataLoader(Subset(dataset, indices), batch_size=batch_size, num_workers=workers):
        pass


class BlankSamples(Dataset):
    """Samples shaped like ``template`` but never decoded: what worker processes cost alone."""

    def __init__(self, template: dict, count: int):
        self.shapes = {
            key: (value.shape, value.dtype) for key, value in template.items() if isinstance(value, torch.Tensor)
        }
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        return {key: torch.zeros(shape, dtype=dtype) for key, (shape, dtype) in self.shapes.items()}


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="existing split dataset (default: write a synthetic one)")
    parser.add_argument("--scenes", type=int, default=24, help="scenes of the synthetic dataset")
    parser.add_argument("--grid", type=int, default=3, help="views per side of the synthetic dataset")
    parser.add_argument("--width", type=int, default=480, help="view width of the synthetic dataset")
    parser.add_argument("--height", type=int, default=320, help="view height of the synthetic dataset")
    parser.add_argument("--split", default="train", help="split to read (the synthetic dataset is all train)")
    parser.add_argument("--samples", type=int, default=600, help="samples per measurement (at most)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--batch-size", type=int, default=8, help="DataLoader batch size")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per method")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as scratch:
        root = args.data
        if root is None:
            root = Path(scratch) / "dataset"
            print(
                f"writing {args.scenes} synthetic scenes, {args.grid}x{args.grid} views "
                f"of {args.width}x{args.height} ..."
            )
            write_synthetic_dataset(
                root, scenes=args.scenes, grid=args.grid, width=args.width, height=args.height, seed=0
            )
            write_splits(root, "1,0,0", seed=0)
        dataset = ClevrRemvDataset(root, split=args.split, views="all")
        indices = list(range(min(args.samples, len(dataset))))
        decode_only(dataset, indices)  # warm the page cache for every method alike

        runs = [
            ("PIL decode only (rgb + index PNG)", decode_only, (dataset, indices)),
            ("ClevrRemvDataset, single process", dataset_loop, (dataset, indices)),
            (
                f"DataLoader, {args.workers} workers, batch {args.batch_size}",
                loader_loop,
                (dataset, indices, args.workers, args.batch_size),
            ),
            (
                "  same, blank tensors (transfer only)",
                loader_loop,
                (BlankSamples(dataset[0], len(indices)), indices, args.workers, args.batch_size),
            ),
        ]
        best = {name: float("inf") for name, _, _ in runs}
        for _ in range(args.repeats):  # interleaved, so a change in machine load hits every method
            for name, function, call_args in runs:
                best[name] = min(best[name], timed(function, *call_args))
        rows = list(best.items())

    baseline = rows[0][1]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\n{len(indices)} samples of {args.width}x{args.height}, best of {args.repeats}; "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    print(f"{'method':<38}{'seconds':>9}{'samples/s':>11}{'time / decode-only':>20}")
    for name, seconds in rows:
        print(f"{name:<38}{seconds:>9.3f}{len(indices) / seconds:>11.1f}{seconds / baseline:>20.2f}")


if __name__ == "__main__":
    main()
