"""One full scene through the whole pipeline: wall time, render time, overhead, bytes per view.

Runs `generate` for one scene at the default settings (81 views, 480x320) and reports:
the wall time of the command, the summed pure render time of its views, their ratio (the
pipeline's overhead, goal <= 1.10), and the mean bytes per view (rgb + index PNG).

    python benchmarks/bench_scene.py [--scenes 1] [--grid 9] [--samples K]
"""

import argparse
import tempfile
import time

from clevr_remv.dataset.store import DatasetStore
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.pipeline import generate
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import worker_command


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=1)
    parser.add_argument("--grid", type=int, default=9)
    parser.add_argument("--samples", type=int, default=GenerateConfig.samples)
    args = parser.parse_args()
    config = GenerateConfig(grid=args.grid, samples=args.samples, properties=load_properties())
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = generate(tmp, args.scenes, config, command=worker_command())
        wall = time.perf_counter() - started
        render = summary["render_seconds"]
        store = DatasetStore(tmp)
        sizes = [
            store.rgb_path(i, u, v).stat().st_size + store.index_path(i, u, v).stat().st_size
            for i in store.scene_ids()
            for u, v in store.views()
        ]
    views = len(sizes)
    print(
        "\n| scenes | views | wall (s) | summed render (s) | overhead (wall / render) | s per scene "
        "| KB per view (rgb + index) |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.scenes} | {views} | {wall:.1f} | {render:.1f} | {wall / render:.3f} | {wall / args.scenes:.1f} "
        f"| {sum(sizes) / views / 1024:.1f} |"
    )


if __name__ == "__main__":
    main()
