"""The cost of the depth pass: render time and bytes per view with and without `--passes depth`.

Generates the same scenes with and without the depth pass, alternating the two (and which goes
first) for --repeats rounds, so that load from other processes hits both alike. Reports the
summed render time per view (Cycles render plus the pass read-out in the worker), the wall time
per view (plus starting the worker, writing PNGs and annotations), their ratio with / without
depth, and the mean bytes per view of the rgb, index and depth PNGs.

    python benchmarks/bench_depth.py [--scenes 1] [--grid 3] [--width 480] [--height 320] [--repeats 2]
"""

import argparse
import statistics
import tempfile
import time

from clevr_remv.dataset.store import DatasetStore
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.pipeline import generate
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import worker_command

SETTINGS = {"rgb + index": (), "rgb + index + depth": ("depth",)}


def run_once(config: GenerateConfig, scenes: int) -> tuple:
    """Generate ``scenes`` scenes; return (render s per view, wall s per view, mean bytes per view by pass)."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = generate(tmp, scenes, config, command=worker_command(), progress=False)
        wall = time.perf_counter() - started
        store = DatasetStore(tmp)
        views = [(i, u, v) for i in store.scene_ids() for u, v in store.views()]
        paths = {"rgb": store.rgb_path, "index": store.index_path}
        if config.passes:
            paths["depth"] = store.depth_path
        sizes = {name: statistics.mean(path(*view).stat().st_size for view in views) for name, path in paths.items()}
    return summary["render_seconds"] / len(views), wall / len(views), sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=1, help="Scenes per run.")
    parser.add_argument("--grid", type=int, default=3, help="Views per side (the timing is per view).")
    for name, default in (("--width", 480), ("--height", 320)):
        parser.add_argument(name, type=int, default=default, help="View size in pixels.")
    parser.add_argument("--repeats", type=int, default=2, help="Rounds; each runs both settings, in turn first.")
    args = parser.parse_args()
    results = {name: [] for name in SETTINGS}
    for round_index in range(args.repeats):
        order = list(SETTINGS) if round_index % 2 == 0 else list(SETTINGS)[::-1]
        for name in order:
            config = GenerateConfig(
                grid=args.grid,
                width=args.width,
                height=args.height,
                passes=SETTINGS[name],
                properties=load_properties(),
            )
            results[name].append(run_once(config, args.scenes))
    base_render = statistics.mean(r[0] for r in results["rgb + index"])
    base_wall = statistics.mean(r[1] for r in results["rgb + index"])
    print(
        f"\n{args.scenes} scene(s), {args.grid}x{args.grid} views of {args.width}x{args.height}, "
        f"{args.repeats} interleaved rounds (means)"
    )
    print(
        "| passes | render s/view (each round) | wall s/view | render ratio | wall ratio "
        "| KB/view rgb | index | depth |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        render, wall = statistics.mean(r[0] for r in runs), statistics.mean(r[1] for r in runs)
        sizes = runs[0][2]
        depth = f"{sizes['depth'] / 1024:.1f}" if "depth" in sizes else "-"
        rounds = ", ".join(f"{r[0]:.2f}" for r in runs)
        print(
            f"| {name} | {render:.3f} ({rounds}) | {wall:.3f} | {render / base_render:.3f} | {wall / base_wall:.3f} "
            f"| {sizes['rgb'] / 1024:.1f} | {sizes['index'] / 1024:.1f} | {depth} |"
        )


if __name__ == "__main__":
    main()
