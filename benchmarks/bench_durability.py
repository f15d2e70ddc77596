"""What flushing a scene to disk costs: fsync on against fsync off, side by side in one run.

`generate` flushes every file and folder of a scene before the rename that completes it (and the
scenes folder after it), so that a scene that looks complete survives a power loss complete.
This writes scenes the size of a default scene (81 views, each an rgb and an index PNG of the
sizes given, plus scene.json and refexps.json) through the same atomic_scene_dir, alternating
fsync on and off (os.fsync replaced by a no-op), and prints the median seconds per scene of each,
their difference, their ratio, and the difference as a share of one scene's render time.

    python benchmarks/bench_durability.py [--scenes 20] [--views 81] [--rgb-kb 120] [--index-kb 9]
        [--dir .] [--scene-seconds 140.9]

The default sizes add up to the 128.9 KB per view that benchmarks/bench_scene.py measured (rgb + index),
and --scene-seconds is that benchmark's wall time for one default scene on the 2-core machine.
The files are random bytes (incompressible, like the PNGs' compressed data), written into a
temporary folder under --dir: choose a folder on the disk the dataset will live on (not a tmpfs).
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from clevr_remv.dataset.store import atomic_scene_dir, start_run


def write_scene(scenes_dir: Path, index: int, lease, views: int, rgb: bytes, index_png: bytes) -> float:
    """Write one scene as `generate` does; return the seconds it took."""
    started = time.perf_counter()
    with atomic_scene_dir(scenes_dir, index, lease) as folder:
        (folder / "rgb").mkdir()
        (folder / "index").mkdir()
        for view in range(views):
            (folder / "rgb" / f"v{view}.png").write_bytes(rgb)
            (folder / "index" / f"v{view}.png").write_bytes(index_png)
        (folder / "scene.json").write_bytes(rgb[:60_000])
        (folder / "refexps.json").write_bytes(rgb[:8_000])
    return time.perf_counter() - started


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (findmnt, else stat)."""
    for command in (["findmnt", "-n", "-o", "FSTYPE", "--target"], ["stat", "-f", "-c", "%T"]):
        try:
            done = subprocess.run([*command, str(path)], capture_output=True, text=True)
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=20, help="scenes per setting")
    parser.add_argument("--views", type=int, default=81)
    parser.add_argument("--rgb-kb", type=float, default=120.0)
    parser.add_argument("--index-kb", type=float, default=8.9)
    parser.add_argument("--dir", type=Path, default=Path("."))
    parser.add_argument(
        "--scene-seconds", type=float, default=140.9, help="one default scene's wall time (benchmarks/bench_scene.py)"
    )
    args = parser.parse_args()
    rgb, index_png = os.urandom(int(args.rgb_kb * 1024)), os.urandom(int(args.index_kb * 1024))
    real_fsync = os.fsync
    times = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-durability-") as tmp:
        scenes_dir = Path(tmp) / "scenes"
        with start_run(scenes_dir) as lease:
            for index in range(2 * args.scenes):
                setting = "on" if index % 2 == 0 else "off"
                os.fsync = real_fsync if setting == "on" else (lambda fd: None)
                try:
                    times[setting].append(write_scene(scenes_dir, index, lease, args.views, rgb, index_png))
                finally:
                    os.fsync = real_fsync
        kind = filesystem(Path(tmp))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    megabytes = args.views * (len(rgb) + len(index_png)) / 2**20
    print(f"\n{args.scenes} scenes per setting, {args.views} views, {megabytes:.1f} MB per scene, filesystem {kind}")
    print(
        "\n| fsync | s per scene (median) | on / off | cost per scene (s) | share of a "
        f"{args.scene_seconds:g} s scene |"
    )
    print("|---|---|---|---|---|")
    print(f"| off | {off:.3f} | 1.000 | | |")
    print(f"| on | {on:.3f} | {on / off:.3f} | {on - off:.3f} | {100 * (on - off) / args.scene_seconds:.2f} % |")


if __name__ == "__main__":
    main()
