"""Evaluate speed: seconds per 10,000 samples, JSON Lines (COCO RLE) against a PNG-mask folder.

A synthetic dataset at the native 480x320 is split entirely into test; predictions equal the
ground truth (so every mask is decoded and compared). Both formats are scored on all views in
one run, after one untimed warm-up; the ratio compares the two. Writing predictions is not timed.

    python benchmarks/bench_evaluate.py --scenes 30 --grid 3
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from clevr_remv.dataset.store import write_json_atomic
from clevr_remv.generate.synthetic import write_synthetic_dataset
from clevr_remv.geometry import view_name
from clevr_remv.res.evaluate import evaluate, prediction_record


def write_predictions(store, jsonl_path: Path, folder: Path) -> int:
    """Ground-truth masks in both formats; returns the number of samples."""
    count = 0
    with open(jsonl_path, "w") as stream:
        for scene in store.scene_ids():
            for expression in store.load_refexps(scene)["expressions"]:
                for u, v in expression["views"]:
                    mask = store.read_index(scene, u, v) == expression["referent"]
                    stream.write(json.dumps(prediction_record(scene, expression["id"], (u, v), mask)) + "\n")
                    path = folder / f"{scene:06d}" / str(expression["id"]) / f"{view_name(u, v)}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
                    count += 1
    return count


def timed(data, predictions, out) -> tuple:
    start = time.perf_counter()
    results = evaluate(data, predictions, split="test", views="all", out=out, progress=False)
    return time.perf_counter() - start, results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=30, help="synthetic scenes (all in test)")
    parser.add_argument("--grid", type=int, default=3, help="views per side of the camera grid")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=320)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = write_synthetic_dataset(
            tmp / "data", scenes=args.scenes, grid=args.grid, width=args.width, height=args.height
        )
        write_json_atomic(
            store.splits_path,
            {
                "format_version": 1,
                "seed": 0,
                "ratios": [0.0, 0.0, 1.0],
                "splits": {"train": [], "val": [], "test": store.scene_ids()},
            },
            "splits",
        )
        samples = write_predictions(store, tmp / "p.jsonl", tmp / "masks")
        timed(tmp / "data", tmp / "p.jsonl", tmp / "warm-up")  # imports, caches: not measured
        jsonl_seconds, jsonl_results = timed(tmp / "data", tmp / "p.jsonl", tmp / "out-jsonl")
        png_seconds, png_results = timed(tmp / "data", tmp / "masks", tmp / "out-png")
    assert jsonl_results["overall"] == png_results["overall"]
    print(
        f"{samples} samples ({args.scenes} scenes, {args.grid}x{args.grid} views, "
        f"{args.width}x{args.height}), reports included"
    )
    print("| predictions | seconds | seconds per 10,000 samples | samples/s |")
    print("|---|---|---|---|")
    for name, seconds in (("JSON Lines (RLE)", jsonl_seconds), ("PNG folder", png_seconds)):
        print(f"| {name} | {seconds:.2f} | {seconds * 10000 / samples:.1f} | {samples / seconds:.0f} |")
    print(f"PNG folder / JSON Lines time ratio: {png_seconds / jsonl_seconds:.2f}")


if __name__ == "__main__":
    main()
