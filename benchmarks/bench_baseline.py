"""Choosing the camera baseline: corner-view disparity against objects leaving the frame.

For each candidate baseline, over many layouts (pure geometry, no rendering): the mean shift
in pixels of object centres between a corner view and the centre view, and the share of
objects whose full box is inside the centre view but crosses the frame edge in some corner.

    python benchmarks/bench_baseline.py --layouts 500
"""
import argparse

import numpy as np

from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.masks import extent_points
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.scene import scene_spec, shape_kinds
from clevr_remv.geometry import project

CORNERS = ("u1_v1", "u9_v1", "u1_v9", "u9_v9")


def inside(points, width, height) -> bool:
    return bool(((points[:, 0] >= 0) & (points[:, 0] <= width) & (points[:, 1] >= 0) & (points[:, 1] <= height)).all())


def measure(baseline: float, layouts: int, properties: dict) -> dict:
    config = GenerateConfig(baseline=baseline, properties=properties)
    shifts, leaving, total = [], 0, 0
    for index in range(layouts):
        spec = scene_spec(config, index)
        views = {view["name"]: view for view in spec["views"]}
        for obj, kind in zip(spec["objects"], shape_kinds(spec, properties)):
            points = extent_points(obj, kind)
            if not inside(project(points, views["u5_v5"]), config.width, config.height):
                continue
            total += 1
            centre = project([obj["3d_coords"]], views["u5_v5"])[0, :2]
            shifts += [np.linalg.norm(project([obj["3d_coords"]], views[c])[0, :2] - centre) for c in CORNERS]
            leaving += not all(inside(project(points, views[c]), config.width, config.height) for c in CORNERS)
    return {"baseline": baseline, "mean_corner_shift_px": float(np.mean(shifts)),
            "leaving_frame_pct": 100.0 * leaving / total}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layouts", type=int, default=500)
    parser.add_argument("--baselines", default="0.05,0.1,0.15,0.2,0.3")
    args = parser.parse_args()
    properties = load_properties()
    print("| baseline | mean corner-vs-centre shift (px) | objects leaving the frame in a corner (%) |")
    print("|---|---|---|")
    for baseline in map(float, args.baselines.split(",")):
        row = measure(baseline, args.layouts, properties)
        print(f"| {baseline:g} | {row['mean_corner_shift_px']:.1f} | {row['leaving_frame_pct']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
