"""Render speed and quality: seconds per 480x320 view and PSNR against a high-sample reference.

Renders the centre view of one CLEVR scene with several settings in one run, side by side:
CLEVR's original settings (512 samples, no denoiser), this project's default, and any extra
candidates, each compared with a reference render (1024 samples by default).

    python benchmarks/bench_render.py                      # full comparison (~10 min on 2 cores)
    python benchmarks/bench_render.py --reference-samples 256 --candidates 4:max_bounces=4 8
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import RenderWorker, worker_command
from clevr_remv.generate.scene import scene_spec
from clevr_remv.geometry import grid_center, view_name


def psnr(image, reference) -> float:
    error = np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255.0 ** 2 / error)


def _parse_value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def render_centre(worker, spec, properties, render, folder) -> tuple:
    """Render the centre view of ``spec`` with ``render`` settings; return (seconds, rgb)."""
    centre = view_name(*grid_center(spec["rig"]["grid"]))
    job_spec = dict(spec, render=render, views=[v for v in spec["views"] if v["name"] == centre])
    seconds = []
    worker.request({"op": "render", "spec": job_spec, "properties": properties, "out": str(folder)},
                   lambda event: seconds.append(event["seconds"]))
    return seconds[0], np.asarray(Image.open(Path(folder) / "rgb" / f"{centre}.png").convert("RGB"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", type=int, default=0)
    parser.add_argument("--reference-samples", type=int, default=1024)
    parser.add_argument("--candidates", nargs="*", default=[],
                        help="extra settings, each SAMPLES[:ATTRIBUTE=VALUE...] with Cycles attributes, "
                             "e.g. 4:max_bounces=4 8:use_denoising=False")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    properties = load_properties()
    default = GenerateConfig(properties=properties)
    spec = scene_spec(default, args.scene)
    settings = [("reference", {"samples": args.reference_samples, "denoise": False, "engine": "CYCLES"}),
                ("(a) CLEVR 512 samples", {"samples": 512, "denoise": False, "engine": "CYCLES"}),
                ("(b) default", spec["render"])]
    for text in args.candidates:
        samples, *overrides = text.split(":")
        cycles = {key: _parse_value(value) for key, value in (item.split("=") for item in overrides)}
        render = {"samples": int(samples), "denoise": True, "engine": "CYCLES", "cycles": cycles}
        settings.append((f"{samples} samples {' '.join(overrides)}".strip(), render))

    worker = RenderWorker(worker_command())
    results, reference = [], None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for k, (name, render) in enumerate(settings):
                seconds, rgb = render_centre(worker, spec, properties, render, Path(tmp) / str(k))
                reference = rgb if reference is None else reference
                results.append({"setting": name, "render": render, "seconds": seconds,
                                "psnr_db": psnr(rgb, reference)})
                print(f"{name:40s} {seconds:8.2f} s/view  PSNR {results[-1]['psnr_db']:6.2f} dB", flush=True)
    finally:
        worker.stop()
    clevr = results[1]["seconds"]
    print("\n| setting | s/view | speed-up vs (a) | PSNR vs reference (dB) |\n|---|---|---|---|")
    for row in results:
        print(f"| {row['setting']} | {row['seconds']:.2f} | {clevr / row['seconds']:.1f}x | {row['psnr_db']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
