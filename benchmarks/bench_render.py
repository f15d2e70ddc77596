"""Render quality per second: seconds per view and PSNR against a high-sample reference, over several scenes.

Each setting renders a corner view (u1_v1) and the centre view of --scenes scenes (layout attempt
0 of --seed) at 480x320. Both are compared with a reference render of the same view
(--reference-samples, no denoiser, another Cycles seed; cached in --cache, so reruns reuse it):
PSNR over the whole image, over the objects (index mask dilated by 3 px) and of the worst object,
averaged over the views (clevr_remv/generate/quality.py). Settings run interleaved for --rounds
rounds; a setting's time is the centre view's render time (the corner view before it pays for the
scene's set-up), wall and CPU seconds (all the worker's threads: the work, which other processes'
load inflates far less), each the median over rounds of the mean over scenes, with its ratio to
the default in the same round.

The breakdown renders --breakdown-views views of scene 0 with the default, the default without
denoiser and the fixed-cost setting (1 sample, no denoiser, no bounces, no light tree), and reports each step's
seconds per view from the worker's timers (blender_scripts/render_scene.py PHASES; the denoiser's
share is the default minus the default without it) and the wall seconds per view of the whole job.
With --compare-worker OLD.py, the fixed-cost job also runs with another worker script, interleaved
(e.g. `git show main:blender_scripts/render_scene.py > /tmp/old_worker.py`): a before/after ratio
of everything but the path tracing, which the pinned setting keeps the same.

    python benchmarks/bench_render.py                      # 5 scenes, 1024-sample references
    python benchmarks/bench_render.py --scenes 2 --reference-samples 128 --candidates 8 2:use_light_tree=False
    python benchmarks/bench_render.py --device gpu --scenes 2 --candidates 16   # on a GPU machine
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.quality import view_quality
from clevr_remv.generate.render import RenderWorker, worker_command
from clevr_remv.generate.scene import scene_spec
from clevr_remv.geometry import grid_center, view_name

PHASES = ("sync", "trace", "composite", "rgb_out", "passes_in", "write_wait")  # render_scene.py's
NO_BOUNCES = {
    name: 0
    for name in ("max_bounces", "diffuse_bounces", "glossy_bounces", "transmission_bounces", "transparent_max_bounces")
}
# Pinned, so that any worker script (--compare-worker) traces the same paths: only the rest differs.
FIXED_COST = {**NO_BOUNCES, "use_light_tree": False, "sampling_pattern": "AUTOMATIC"}
REFERENCE_SEED_OFFSET = 1_000_003  # the reference must not reuse the candidates' sample sequence


def _parse_value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def parse_setting(text: str, default: dict) -> tuple:
    """'SAMPLES[:KEY=VALUE...]' -> (name, render settings): ``denoise=False`` or Cycles attributes."""
    samples, *overrides = text.split(":")
    pairs = {key: _parse_value(value) for key, value in (item.split("=", 1) for item in overrides)}
    render = {
        **default,
        "samples": int(samples),
        "denoise": pairs.pop("denoise", default["denoise"]),
        "cycles": {**default.get("cycles", {}), **pairs},
    }
    return f"{samples} spp {' '.join(overrides)}".strip(), render


class Renderer:
    """One worker that renders chosen views of a scene with given settings."""

    def __init__(self, device: str, properties: dict, script=None):
        self.worker = RenderWorker(worker_command(script=script), device=device)
        self.worker.start()  # now, so that no job's time includes starting Blender
        self.properties = properties

    def render(self, spec: dict, render: dict, views: list, folder: Path) -> dict:
        """Render ``views`` (names) into ``folder``; return the worker's view events, the "done"
        event and the job's wall seconds."""
        job_spec = dict(spec, render=render, views=[v for v in spec["views"] if v["name"] in views])
        events, started = [], time.perf_counter()
        done = self.worker.request(
            {"op": "render", "spec": job_spec, "properties": self.properties, "out": str(folder)}, events.append
        )
        return {"views": events, "done": done, "wall": time.perf_counter() - started}

    def close(self):
        self.worker.stop()


def read_view(folder: Path, name: str) -> tuple:
    rgb = np.asarray(Image.open(folder / "rgb" / f"{name}.png").convert("RGB"))
    return rgb, np.load(folder / "index" / f"{name}.npy")


def reference_views(renderer, spec, views, samples, cache: Path) -> dict:
    """view name -> (rgb, index) of the reference render, from ``cache`` or rendered into it."""
    folder = cache / f"{spec['width']}x{spec['height']}_{samples}spp" / f"scene{spec['index']:06d}"
    if not all((folder / "rgb" / f"{name}.png").is_file() for name in views):
        render = {
            "samples": samples,
            "denoise": False,
            "engine": "CYCLES",
            "cycles": {"seed": spec["index"] + REFERENCE_SEED_OFFSET},
        }
        print(f"rendering the {samples}-sample reference of scene {spec['index']} into {folder}", flush=True)
        renderer.render(spec, render, views, folder)
    return {name: read_view(folder, name) for name in views}


def mean_quality(per_view: list) -> dict:
    """Mean of each PSNR over the views (views without a judged object are left out of that mean)."""
    keys = per_view[0].keys()
    return {key: statistics.mean(q[key] for q in per_view if q[key] is not None) for key in keys}


def compare(renderer, specs, settings, references, views, rounds, scratch: Path) -> list:
    """Interleaved rounds over settings x scenes; return one result dict per setting."""
    times = {name: [] for name, _ in settings}
    cpu = {name: [] for name, _ in settings}
    quality = {name: [] for name, _ in settings}
    for round_index in range(rounds):
        shift = round_index % len(settings)
        for name, render in settings[shift:] + settings[:shift]:
            per_scene, cpu_per_scene = [], []
            for spec in specs:
                folder = scratch / f"r{round_index}" / name.replace(" ", "_") / str(spec["index"])
                job = renderer.render(spec, render, views, folder)
                per_scene.append(job["views"][-1]["seconds"])  # the centre view, rendered second
                cpu_per_scene.append(job["views"][-1]["cpu_seconds"])
                if round_index == 0:
                    for view in views:
                        image = read_view(folder, view)[0]
                        reference, index = references[spec["index"]][view]
                        quality[name].append(view_quality(image, reference, index))
            times[name].append(statistics.mean(per_scene))
            cpu[name].append(statistics.mean(cpu_per_scene))
            print(
                f"round {round_index + 1}: {name:40s} {times[name][-1]:7.3f} s/view {cpu[name][-1]:7.3f} CPU s/view",
                flush=True,
            )
    default, default_cpu = times[settings[0][0]], cpu[settings[0][0]]
    return [
        {
            "setting": name,
            "render": render,
            "seconds": statistics.median(times[name]),
            "seconds_per_round": times[name],
            "cpu_seconds": statistics.median(cpu[name]),
            "ratio": statistics.median(t / d for t, d in zip(times[name], default, strict=True)),
            "cpu_ratio": statistics.median(t / d for t, d in zip(cpu[name], default_cpu, strict=True)),
            **{f"psnr_{key}": value for key, value in mean_quality(quality[name]).items()},
        }
        for name, render in settings
    ]


def breakdown(renderer, spec, settings, count: int, rounds: int, scratch: Path) -> dict:
    """setting name -> mean seconds per view of each phase (all views but each job's first), the
    writer thread's seconds per view and the whole job's wall seconds per view; medians over rounds."""
    views = [view["name"] for view in spec["views"][:count]]
    runs = {name: [] for name, _ in settings}
    for round_index in range(rounds):
        for name, render in settings:
            job = renderer.render(spec, render, views, scratch / f"breakdown{round_index}" / name.replace(" ", "_"))
            steady = job["views"][1:] or job["views"]
            phases = {phase: statistics.mean(event["phases"][phase] for event in steady) for phase in PHASES}
            phases["main thread total"] = sum(phases.values())
            phases["CPU s (all threads)"] = statistics.mean(event["cpu_seconds"] for event in steady)
            phases["writer thread (overlapped)"] = job["done"]["write_seconds"] / len(views)
            phases["job wall / view"] = job["wall"] / len(views)
            runs[name].append(phases)
    return {
        name: {key: statistics.median(run[key] for run in rounds_) for key in rounds_[0]}
        for name, rounds_ in runs.items()
    }


def compare_workers(renderer, other, spec, render, count: int, rounds: int, scratch: Path) -> dict:
    """Wall seconds per view of the same job (``count`` views) by this worker and by ``other``
    (another worker script), interleaved, medians over rounds."""
    views = [view["name"] for view in spec["views"][:count]]
    walls = {"this worker": [], "--compare-worker": []}
    for round_index in range(rounds):
        for name, worker in (("this worker", renderer), ("--compare-worker", other)):
            job = worker.render(spec, render, views, scratch / f"workers{round_index}" / name.strip("-"))
            walls[name].append(job["wall"] / len(views))
    return {name: statistics.median(values) for name, values in walls.items()}


def print_tables(results: list, phases: dict, workers: dict, args) -> None:
    print(
        f"\n{args.scenes} scenes x 2 views (centre, u1_v1), {args.width}x{args.height}, {args.device}, "
        f"against {args.reference_samples} samples; {args.rounds} interleaved rounds"
    )
    print(
        "| setting | s/view | time vs default | CPU s/view | CPU vs default | PSNR whole (dB) | PSNR objects (dB) "
        "| worst object (dB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['setting']} | {row['seconds']:.3f} | {row['ratio']:.2f}x | {row['cpu_seconds']:.3f} "
            f"| {row['cpu_ratio']:.2f}x | {row['psnr_whole']:.1f} | {row['psnr_objects']:.1f} "
            f"| {row['psnr_worst_object']:.1f} |"
        )
    names = list(phases)
    print(f"\nPer-view breakdown, scene 0, {args.breakdown_views} views (s/view; the first view of each job left out)")
    print("| step | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for key in next(iter(phases.values())):
        print(f"| {key} | " + " | ".join(f"{phases[name][key]:.3f}" for name in names) + " |")
    default, plain, fixed = (phases[name] for name in names[:3])
    print(f"denoising (default minus default without denoiser, trace): {default['trace'] - plain['trace']:.3f} s/view")
    print(
        f"fixed cost (1-sample view, main thread): {fixed['main thread total']:.3f} s, of which not path tracing "
        f"{fixed['main thread total'] - fixed['trace']:.3f} s; throughput at the default: "
        f"{1 / default['job wall / view']:.2f} views/s"
    )
    if workers:
        this, before = workers["this worker"], workers["--compare-worker"]
        print(
            f"fixed-cost job, wall s/view: this worker {this:.3f}, --compare-worker {before:.3f} "
            f"(ratio {this / before:.3f}; saved {before - this:.3f} s/view)"
        )


def plot(results: list, path: Path, size: str) -> None:
    """Object PSNR against CPU seconds per view (the work, which other processes' load barely
    changes) for the denoised settings: the trade-off curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    rows = sorted((row for row in results if row["render"]["denoise"]), key=lambda row: row["cpu_seconds"])
    figure, axes = plt.subplots(figsize=(7.0, 4.2), dpi=100)
    for k, row in enumerate(rows):
        axes.scatter(row["cpu_seconds"], row["psnr_objects"], color="C1" if row is results[0] else "C0", zorder=2)
        axes.annotate(
            row["setting"],
            (row["cpu_seconds"], row["psnr_objects"]),
            fontsize=7,
            xytext=(5, -9 if k % 2 else 4),
            textcoords="offset points",
        )
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.xaxis.set_minor_formatter(ScalarFormatter())
    axes.tick_params(axis="x", which="minor", labelsize=7)
    axes.set_xlabel(f"CPU seconds per {size} view, all threads (log)")
    axes.set_ylabel("PSNR on the objects (dB)")
    axes.set_title("Denoised settings; orange: the default", fontsize=9)
    axes.grid(alpha=0.3, which="both")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=5, help="Scenes 0 .. N-1, each judged at two views.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--reference-samples", type=int, default=1024)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(".cache/bench_render"),
        help="Folder of the reference renders (reused when present).",
    )
    parser.add_argument(
        "--candidates",
        nargs="*",
        default=[],
        help="extra settings, each SAMPLES[:KEY=VALUE...] with denoise=False or Cycles "
        "attributes, e.g. 8 2:use_light_tree=False 4:denoising_quality=BALANCED",
    )
    parser.add_argument("--clevr", action="store_true", help="also CLEVR's settings (512 samples, no denoiser).")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--breakdown-views", type=int, default=9)
    parser.add_argument(
        "--device",
        choices=["cpu", "gpu"],
        default="cpu",
        help="gpu: OptiX, else CUDA (one GPU; references rendered there too).",
    )
    parser.add_argument(
        "--compare-worker",
        type=Path,
        metavar="OLD.py",
        help="also time the breakdown's jobs with this worker script (before/after)",
    )
    parser.add_argument("--plot", type=Path, help="write the trade-off plot (PNG) here")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    properties = load_properties()
    config = GenerateConfig(seed=args.seed, width=args.width, height=args.height, properties=properties)
    specs = [scene_spec(config, index) for index in range(args.scenes)]
    default = specs[0]["render"]
    views = ["u1_v1", view_name(*grid_center(config.grid))]
    fixed = {**default, "samples": 1, "denoise": False, "cycles": FIXED_COST}
    settings = [
        ("default", default),
        ("default, no denoiser", {**default, "denoise": False}),
        ("fixed cost: 1 spp, no denoiser, 0 bounces", fixed),
    ]
    settings += [parse_setting(text, default) for text in args.candidates]
    if args.clevr:
        settings.append(("CLEVR: 512 spp, no denoiser", {**default, "samples": 512, "denoise": False}))

    renderer = Renderer(args.device, properties)
    other = Renderer(args.device, properties, str(args.compare_worker)) if args.compare_worker else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            references = {
                spec["index"]: reference_views(renderer, spec, views, args.reference_samples, args.cache)
                for spec in specs
            }
            renderer.render(specs[0], fixed, views[:1], Path(tmp) / "warm-up")  # e.g. GPU kernels load here
            results = compare(renderer, specs, settings, references, views, args.rounds, Path(tmp))
            phases = breakdown(renderer, specs[0], settings[:3], args.breakdown_views, args.rounds, Path(tmp))
            workers = (
                compare_workers(renderer, other, specs[0], fixed, args.breakdown_views, args.rounds, Path(tmp))
                if other
                else {}
            )
    finally:
        renderer.close()
        if other is not None:
            other.close()
    print_tables(results, phases, workers, args)
    if args.plot:
        plot(results, args.plot, f"{args.width}x{args.height}")
    if args.json:
        document = {"settings": results, "breakdown": phases, "workers": workers, "args": vars(args)}
        args.json.write_text(json.dumps(document, indent=1, default=str))


if __name__ == "__main__":
    main()
