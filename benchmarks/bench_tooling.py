"""Time `validate` and `export` per 1,000 views, next to the plain file work they cannot beat.

Floors, measured in the same run on the same files:
- decode: open and fully decode every RGB and index PNG with PIL (what a full validate must do);
- copy: copy every exported RGB PNG (what an export must do).

    python benchmarks/bench_tooling.py --scenes 12 --grid 3 --width 480 --height 320
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from clevr_remv.dataset.export.clevr_ref import export_clevr_ref
from clevr_remv.dataset.export.coco import export_coco
from clevr_remv.dataset.export.common import select_scenes
from clevr_remv.dataset.export.refcoco import export_refcoco
from clevr_remv.dataset.outdir import staged_output_dir
from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.validate import validate_dataset
from clevr_remv.generate.synthetic import write_synthetic_dataset


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _decode_all(store) -> None:
    for index in store.scene_ids():
        for u, v in store.views():
            for path in (store.rgb_path(index, u, v), store.index_path(index, u, v)):
                with Image.open(path) as image:
                    image.load()


def _copy_all(store, target: Path) -> None:
    target.mkdir()
    for index in store.scene_ids():
        for u, v in store.views():
            shutil.copyfile(store.rgb_path(index, u, v), target / f"{index}_{u}_{v}.png")


def _export(store, work: Path, name: str, writer) -> None:
    split_scenes = select_scenes(store)
    with staged_output_dir(work / name, "export") as tmp:
        writer(store, tmp, split_scenes, store.views(), progress=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=12, help="synthetic scenes to write")
    parser.add_argument("--grid", type=int, default=3, help="views per side of the camera grid")
    parser.add_argument("--width", type=int, default=480, help="view width in pixels")
    parser.add_argument("--height", type=int, default=320, help="view height in pixels")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel validate row")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = write_synthetic_dataset(
            work / "data", scenes=args.scenes, grid=args.grid, width=args.width, height=args.height, seed=0
        )
        write_splits(store.root, seed=0)
        views = args.scenes * args.grid**2
        decode = _timed(lambda: _decode_all(store))
        copy = _timed(lambda: _copy_all(store, work / "copy"))
        rows = [
            ("decode floor (PIL, rgb + index)", decode, decode),
            ("validate --quick", _timed(lambda: validate_dataset(store.root, quick=True)), decode),
            ("validate (full)", _timed(lambda: validate_dataset(store.root)), decode),
            (
                f"validate (full, {args.workers} workers)",
                _timed(lambda: validate_dataset(store.root, workers=args.workers)),
                decode,
            ),
            ("copy floor (rgb files)", copy, copy),
            ("export refcoco", _timed(lambda: _export(store, work, "refcoco", export_refcoco)), copy),
            ("export clevr-ref+", _timed(lambda: _export(store, work, "clevr_ref", export_clevr_ref)), copy),
            ("export coco", _timed(lambda: _export(store, work, "coco", export_coco)), copy),
        ]
    print(
        f"{args.scenes} scenes x {args.grid}x{args.grid} views = {views} views of "
        f"{args.width}x{args.height}; export rows use --views all"
    )
    print(f"{'task':<34} {'seconds':>8} {'s / 1,000 views':>16} {'x floor':>8}")
    for name, seconds, floor in rows:
        print(f"{name:<34} {seconds:>8.2f} {seconds / views * 1000:>16.2f} {seconds / floor:>8.2f}")


if __name__ == "__main__":
    main()
