"""Scaling generate out: the Ray executor's overhead, actors x CPUs, and the 10,000-scene plan.

In one run, on the same real (Blender) scenes:
1. the local executor (1 worker, all cores) against the Ray executor (1 actor x all cores) on
   a Ray instance that is already running (joining a cluster is the usual case; its start-up is
   timed separately): wall-time ratio, goal <= 1.05;
2. Ray with 1 actor x 2 CPUs against 2 actors x 1 CPU: throughput ratio;
3. seconds per view at the paper's size (480x320, default samples) and what that implies for
   the paper's 10,000 scenes x 81 views on 1, 8 and 64 nodes (assuming throughput grows with
   cores, as it does across whole nodes), and per GPU (an estimate until measured on one).

    python benchmarks/bench_scale.py [--scenes 4] [--grid 3] [--width 240] [--height 160]
"""

import argparse
import os
import tempfile
import time

import ray

from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.pipeline import generate
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import worker_command

PAPER_VIEWS = 10_000 * 81
# Assumptions of the GPU estimate: about 0.2 s of each view is fixed cost (scene sync, compositor,
# EXR read-back, PNG encoding) that a GPU does not shrink; the rest (path tracing, denoising) runs
# ~10x faster than on this 2-core machine.
GPU_FIXED_S, GPU_SPEEDUP = 0.2, 10.0


def timed(root, scenes, config, **options) -> tuple:
    started = time.perf_counter()
    summary = generate(root, scenes, config, command=worker_command(), progress=False, **options)
    return time.perf_counter() - started, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, default in (("--scenes", 4), ("--grid", 3), ("--width", 240), ("--height", 160)):
        parser.add_argument(flag, type=int, default=default)
    parser.add_argument("--node-cores", type=int, default=32, help="Cores per node in the 10,000-scene plan.")
    args = parser.parse_args()
    cores = os.cpu_count()
    small = GenerateConfig(grid=args.grid, width=args.width, height=args.height, properties=load_properties())
    full = GenerateConfig(grid=args.grid, properties=load_properties())
    started = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_start = time.perf_counter() - started
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        local, _ = timed(f"{tmp}/local", args.scenes, small)
        on_ray, _ = timed(f"{tmp}/ray", args.scenes, small, executor="ray", workers=1, worker_cpus=cores)
        rows.append(("local, 1 worker x all cores", local, 1.0))
        rows.append((f"ray, 1 actor x {cores} CPUs", on_ray, on_ray / local))
        split, _ = timed(f"{tmp}/ray2", args.scenes, small, executor="ray", workers=cores, worker_cpus=1)
        rows.append((f"ray, {cores} actors x 1 CPU", split, split / local))
        full_wall, summary = timed(f"{tmp}/full", 1, full)
    ray.shutdown()
    views = args.scenes * args.grid**2
    print(
        f"\n{args.scenes} scenes x {args.grid**2} views at {args.width}x{args.height}, {cores} cores; "
        f"Ray start-up (not in the walls): {ray_start:.1f} s\n"
    )
    print("| executor | wall (s) | s per view | wall / local |")
    print("|---|---|---|---|")
    for name, wall, ratio in rows:
        print(f"| {name} | {wall:.1f} | {wall / views:.3f} | {ratio:.3f} |")
    print(f"\nthroughput, {cores} actors x 1 CPU against 1 actor x {cores} CPUs: {rows[1][1] / rows[2][1]:.2f}x")
    per_view = full_wall / summary["views"]
    print(
        f"\nat 480x320: {per_view:.2f} s per view on {cores} cores (one scene of {summary['views']} views, "
        f"{summary['render_seconds'] / summary['views']:.2f} s of it path tracing)\n"
    )
    print(f"| the paper's {PAPER_VIEWS:,} views | wall time |")
    print("|---|---|")
    print(f"| this machine ({cores} cores) | {PAPER_VIEWS * per_view / 86400:.1f} days |")
    for nodes in (1, 8, 64):
        seconds = PAPER_VIEWS * per_view * cores / (args.node_cores * nodes)
        print(f"| {nodes} node(s) x {args.node_cores} cores | {seconds / 3600:.1f} h |")
    gpu_view = GPU_FIXED_S + max(per_view - GPU_FIXED_S, 0) / GPU_SPEEDUP
    print(f"| per GPU (estimate, not measured: {gpu_view:.2f} s/view) | {PAPER_VIEWS * gpu_view / 3600:.0f} h |")


if __name__ == "__main__":
    main()
