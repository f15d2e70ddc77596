"""The plane sweep's settings side by side: scores and seconds per scene for each number of
disparity hypotheses and box-filter radius, on real renders made with ``--passes depth``.

Every setting runs on the same scenes in one run (the views are decoded once, untimed); the table
gives the mean scores over the scenes and the mean seconds per scene relative to the default.

    python benchmarks/bench_depth_sweep.py --data /tmp/depthbench --split all
"""

import argparse
import itertools
import time

import numpy as np

from clevr_remv.dataset.store import DatasetStore
from clevr_remv.depth_bench.estimators import SWEEP_HYPOTHESES, SWEEP_WINDOW, plane_sweep, sweep_hypotheses
from clevr_remv.depth_bench.evaluate import ground_truth, split_indices
from clevr_remv.depth_bench.metrics import METRICS, border_pixels, evaluation_mask, score


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset generated with --passes depth")
    parser.add_argument("--split", default="all")
    parser.add_argument("--hypotheses", default="32,64,128", help="comma-separated counts")
    parser.add_argument("--windows", default="1,2,4", help="comma-separated box-filter radii")
    args = parser.parse_args()
    store = DatasetStore(args.data)
    scenes = []
    for index in split_indices(store, args.split):
        _, truth, _ = ground_truth(store, index, store.load_scene(index, check=False))
        images = {(u, v): store.read_rgb(index, u, v) for u, v in store.views()}
        scenes.append((truth, images))
    height, width = scenes[0][0].shape
    mask = evaluation_mask((height, width), border_pixels(width, height))
    rows = []
    for count, window in itertools.product(map(int, args.hypotheses.split(",")), map(int, args.windows.split(","))):
        scores, seconds = [], []
        for truth, images in scenes:
            hypotheses = sweep_hypotheses(float(truth.min()), float(truth.max()), count)
            start = time.perf_counter()
            estimate = plane_sweep(images, store.center, hypotheses, window)
            seconds.append(time.perf_counter() - start)
            scores.append(score(estimate, truth, mask))
        rows.append((count, window, {key: np.mean([s[key] for s in scores]) for key in METRICS}, np.mean(seconds)))
    default = (
        next(s for c, w, _, s in rows if (c, w) == (SWEEP_HYPOTHESES, SWEEP_WINDOW))
        if any((c, w) == (SWEEP_HYPOTHESES, SWEEP_WINDOW) for c, w, _, _ in rows)
        else rows[0][3]
    )
    print(f"{len(scenes)} scenes, {width}x{height}, {store.grid}x{store.grid} views")
    print("| hypotheses | window | " + " | ".join(METRICS) + " | s/scene | time vs default |")
    print("|---" * (len(METRICS) + 4) + "|")
    for count, window, means, seconds in rows:
        print(
            f"| {count} | {2 * window + 1}x{2 * window + 1} | "
            + " | ".join(f"{means[k]:.2f}" for k in METRICS)
            + f" | {seconds:.2f} | {seconds / default:.2f}x |"
        )


if __name__ == "__main__":
    main()
