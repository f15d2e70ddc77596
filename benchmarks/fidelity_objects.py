"""Every shape in both materials, as this project renders them (procedural meshes with a bevel
modifier, Principled BSDF materials), in one small Cycles render of a CLEVR-lit scene: the
picture of the dataset's fidelity page (docs/fidelity.md). Rubber in the front row, metal behind;
one colour per shape, so only the material changes between the rows.

    python benchmarks/fidelity_objects.py --out docs/fidelity/objects.png

One view at 360x240, 8 samples with the denoiser (seconds on a CPU once Blender has started);
the scene's lights and camera are those of scene 0 of seed 0 (jitter included).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import RenderWorker, worker_command
from clevr_remv.generate.scene import scene_spec
from clevr_remv.geometry import project

SHAPES = (("cube", "red"), ("sphere", "blue"), ("cylinder", "yellow"))
MATERIALS = ("rubber", "metal")  # front row, back row
SPACING = 2.2  # between shapes
ROW_SPACING = 3.2  # between the rubber and the metal row


def objects_spec(width: int, height: int, samples: int) -> dict:
    """Scene 0's camera and lights with six large objects in a 3 x 2 grid facing the camera."""
    properties = load_properties()
    spec = scene_spec(GenerateConfig(grid=1, width=width, height=height, samples=samples, properties=properties), 0)
    right, behind = np.array(spec["directions"]["right"]), np.array(spec["directions"]["behind"])
    spec["objects"] = []
    for row, material in enumerate(MATERIALS):
        for column, (shape, color) in enumerate(SHAPES):
            x, y, _ = (column - 1) * SPACING * right + (row - 0.5) * ROW_SPACING * behind
            spec["objects"].append(
                {
                    "shape": shape,
                    "size": "large",
                    "material": material,
                    "color": color,
                    "3d_coords": [float(x), float(y), 0.7],
                    "rotation": 30.0,
                    "radius": 0.7,
                }
            )
    spec["relationships"] = {}
    return spec, properties


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/fidelity/objects.png")
    parser.add_argument("--width", type=int, default=360)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="Cycles threads")
    args = parser.parse_args()
    spec, properties = objects_spec(args.width, args.height, args.samples)
    worker = RenderWorker(worker_command(), threads=args.threads)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        try:
            events = []
            worker.request(
                {"op": "render", "spec": spec, "properties": properties, "out": folder, "passes": []},
                on_event=events.append,
            )
        finally:
            worker.close()
        seconds = time.perf_counter() - start
        view = spec["views"][0]
        image = np.asarray(Image.open(Path(folder) / "rgb" / f"{view['name']}.png").convert("RGB"))
    render_seconds = sum(event.get("seconds", 0.0) for event in events if event.get("event") == "view")
    figure = Figure(figsize=(args.width / 80, args.height / 80), dpi=80)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(image)
    axes.set_axis_off()
    for obj in spec["objects"]:  # the front row labelled below, the back row above
        front = obj["material"] == MATERIALS[0]
        x, y, _ = project([[*obj["3d_coords"][:2], 0.0 if front else 2 * obj["radius"]]], view)[0]
        axes.text(
            x,
            y + (4 if front else -4),
            f"{obj['material']} {obj['shape']}",
            ha="center",
            va="top" if front else "bottom",
            fontsize=8,
            color="white",
            bbox={"facecolor": "black", "alpha": 0.55, "pad": 1.5, "linewidth": 0},
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=80)
    print(
        f"wrote {args.out}: {args.width}x{args.height}, {args.samples} samples + denoiser; view rendered in "
        f"{render_seconds:.1f} s, {seconds:.1f} s with Blender's start-up"
    )


if __name__ == "__main__":
    main()
