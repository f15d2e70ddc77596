"""Choosing the camera rig: corner-view disparity against objects leaving the frame.

For each candidate rig (lens in mm, baseline in world units), over many layouts (pure geometry, no
rendering, 480x320 views): the mean shift in pixels of object centres between a corner view and
the centre view, the share of objects whose full box is inside the centre view but crosses the
frame edge in some corner, the share of objects cut by the centre view's own frame, and the mean
size of an object (the side of its projected box's bounding square) in the centre view.

    python benchmarks/bench_baseline.py --layouts 500
    python benchmarks/bench_baseline.py --layouts 300 --rigs 35:0.1,25:0.1,35:0.025
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


def measure(
    baseline: float, layouts: int, properties: dict, lens: float = 35.0, rig: str = "parallel", size=(480, 320)
) -> dict:
    """The rig's figures over the first ``layouts`` layouts (the module docstring's), on a 9x9 ``rig``
    (parallel or convergent) of ``size`` (width, height) views."""
    config = GenerateConfig(baseline=baseline, lens=lens, rig=rig, width=size[0], height=size[1], properties=properties)
    shifts, sizes, leaving, total, cut = [], [], 0, 0, 0
    for index in range(layouts):
        spec = scene_spec(config, index)
        views = {view["name"]: view for view in spec["views"]}
        for obj, kind in zip(spec["objects"], shape_kinds(spec, properties), strict=True):
            points = extent_points(obj, kind)
            box = project(points, views["u5_v5"])[:, :2]
            if not inside(box, config.width, config.height):
                cut += 1
                continue
            total += 1
            sizes.append(float(np.sqrt(np.prod(box.max(axis=0) - box.min(axis=0)))))
            centre = project([obj["3d_coords"]], views["u5_v5"])[0, :2]
            shifts += [np.linalg.norm(project([obj["3d_coords"]], views[c])[0, :2] - centre) for c in CORNERS]
            leaving += not all(inside(project(points, views[c]), config.width, config.height) for c in CORNERS)
    return {
        "lens": lens,
        "baseline": baseline,
        "rig": rig,
        "mean_corner_shift_px": float(np.mean(shifts)),
        "leaving_frame_pct": 100.0 * leaving / total,
        "cut_in_centre_pct": 100.0 * cut / (cut + total),
        "mean_object_px": float(np.mean(sizes)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layouts", type=int, default=500)
    parser.add_argument(
        "--baselines",
        default="0.05,0.1,0.15,0.2,0.3",
        help="baselines to compare with CLEVR's 35 mm lens (ignored with --rigs)",
    )
    parser.add_argument(
        "--rigs", default=None, metavar="LENS:BASELINE,...", help="rigs to compare, e.g. 35:0.1,25:0.1,35:0.025"
    )
    args = parser.parse_args()
    properties = load_properties()
    rigs = (
        [tuple(map(float, rig.split(":"))) for rig in args.rigs.split(",")]
        if args.rigs
        else [(35.0, float(baseline)) for baseline in args.baselines.split(",")]
    )
    print(
        "| lens (mm) | baseline | mean corner-vs-centre shift (px) | objects leaving the frame in a corner (%) "
        "| objects cut by the centre view's frame (%) | mean object size in the centre view (px) |"
    )
    print("|---|---|---|---|---|---|")
    for lens, baseline in rigs:
        row = measure(baseline, args.layouts, properties, lens)
        print(
            f"| {lens:g} | {baseline:g} | {row['mean_corner_shift_px']:.1f} | {row['leaving_frame_pct']:.2f} "
            f"| {row['cut_in_centre_pct']:.2f} | {row['mean_object_px']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
