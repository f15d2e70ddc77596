"""Packed shards against the dataset folder, side by side in one run.

On an existing, split dataset (real renders): files and bytes of the folder and of its packed
form, pack and unpack throughput, and the samples/s of ClevrRemvDataset reading the centre views
of a split from the folder, from a centre-view pack, from an all-view pack (by member offset)
and ClevrRemvStream over the centre-view pack, each with 0, 1 and 2 DataLoader workers. Read
rounds are interleaved (a change in machine load hits every reader alike), best of --repeats.
Then what the paper-size dataset becomes at the default shard size, from per-scene bytes.

    nice -n 5 clevr-remv generate --out /tmp/packbench --scenes 12 --grid 9 --width 160 --height 112 \\
        --samples 2 --min-pixels 25 && clevr-remv split --data /tmp/packbench
    python benchmarks/bench_pack.py --data /tmp/packbench --repeats 5 --epochs 20
    python benchmarks/bench_pack.py --data /tmp/packbench --paper-only --paper-shard-size 64MB
"""

import argparse
import filecmp
import os
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from clevr_remv.dataset.packed.layout import DEFAULT_SHARD_SIZE, parse_size
from clevr_remv.dataset.packed.manifest import read_manifest
from clevr_remv.dataset.packed.pack import pack_dataset
from clevr_remv.dataset.packed.reader import PackedSplit, PackedStore
from clevr_remv.dataset.packed.tarshard import archive_bytes, member_bytes
from clevr_remv.dataset.packed.unpack import unpack_dataset
from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.stream import ClevrRemvStream

PAPER_SCENES = {"train": 7000, "val": 1500, "test": 1500}
PAPER_VIEW_KB = {"rgb": 128.1, "index": 1.0, "depth": 14.5}  # 480x320, README (bench_depth.py)


def files_and_bytes(root: Path) -> tuple:
    """(files, apparent bytes, bytes on disk) under ``root``."""
    files = [path for path in root.rglob("*") if path.is_file()]
    return len(files), sum(p.stat().st_size for p in files), sum(p.stat().st_blocks * 512 for p in files)


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def timed_cpu(function, *args):
    """(wall seconds, this process's CPU seconds, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def read_epochs(dataset, workers: int, epochs: int, batch_size: int) -> int:
    """Items read in ``epochs`` passes through a DataLoader (after one warm-up pass)."""
    shuffle = not isinstance(dataset, ClevrRemvStream)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        shuffle=shuffle,
        persistent_workers=workers > 0,
        collate_fn=list,
    )
    for _ in loader:  # warm-up: worker start, file handles, page cache
        pass
    count = 0
    for epoch in range(epochs):
        if not shuffle:
            dataset.set_epoch(epoch)
        count += sum(len(batch) for batch in loader)
    return count


def bytes_per_item(store: DatasetStore, dataset) -> float:
    """Mean bytes of the rgb and index PNGs one centre item reads."""
    sizes = [
        sum(path(d["scene"], *d["view"]).stat().st_size for path in (store.rgb_path, store.index_path))
        for d in map(dataset.describe, range(len(dataset)))
    ]
    return sum(sizes) / len(sizes)


def paper_size(store: DatasetStore, shard_size: int) -> list:
    """Rows (subset, views, scene bytes, shards per split, total shards, GB) for 10,000 scenes of
    480x320 at ``shard_size``: JSON bytes per scene measured here, view bytes from the README."""
    scenes = store.scene_ids()
    json_members = sum(
        member_bytes(path(s).stat().st_size) for s in scenes for path in (store.scene_json_path, store.refexps_path)
    ) / len(scenes)
    kinds = ("rgb", "index") + store.passes
    view = sum(member_bytes(int(PAPER_VIEW_KB[kind] * 1000)) for kind in kinds)
    rows = []
    for name, views in (("center", 1), ("corners", 4), ("all", store.grid**2)):
        scene = json_members + views * view
        per_shard = max(1, int((shard_size - 2 * 10240) // scene))
        shards = {split: -(-count // per_shard) for split, count in PAPER_SCENES.items()}
        total = archive_bytes(int(scene * sum(PAPER_SCENES.values())))
        rows.append((name, views, scene, per_shard, shards, total))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="split dataset (real renders)")
    parser.add_argument("--split", default="train", help="split read by the throughput rows")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the split's centre items per timing")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best is kept")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the packed and unpacked copies")
    parser.add_argument("--paper-shard-size", default=DEFAULT_SHARD_SIZE, help="shard size of the paper-size table")
    parser.add_argument("--paper-only", action="store_true", help="print the paper-size table alone")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the stream's few-shards warning: this dataset is small on purpose
    store = DatasetStore(args.data)
    if not args.paper_only:
        measure(args, store)
    print_paper_size(store, args.paper_shard_size)


def measure(args, store: DatasetStore) -> None:
    """Files, bytes, pack and unpack speed, and reading throughput on ``args.data``."""

    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        scratch = Path(scratch)
        folder_files, folder_bytes, folder_disk = files_and_bytes(args.data)
        pack_all_s, _ = timed(pack_dataset, args.data, scratch / "packed", "all", "all")
        pack_center_s, _ = timed(pack_dataset, args.data, scratch / "packed", "all", "center")
        packed_files, packed_bytes, packed_disk = files_and_bytes(scratch / "packed")
        manifest = read_manifest(scratch / "packed")
        shard_bytes = {name: sum(s["bytes"] for s in subset["shards"]) for name, subset in manifest["subsets"].items()}
        unpack_s, _ = timed(unpack_dataset, scratch / "packed", scratch / "unpacked")
        cmp = filecmp.dircmp(args.data, scratch / "unpacked")
        assert not (cmp.left_only or cmp.right_only), "unpack lost or added files"
        source_bytes = folder_bytes

        print(
            f"dataset {args.data}: {len(store.scene_ids())} scenes, {store.grid}x{store.grid} views, "
            f"{store.info()['config']['width']}x{store.info()['config']['height']}; "
            f"{os.cpu_count()} CPUs, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}\n"
        )
        print("| form | files | bytes | bytes on disk |\n|---|---|---|---|")
        print(f"| folder | {folder_files} | {folder_bytes / 1e6:.2f} MB | {folder_disk / 1e6:.2f} MB |")
        print(
            f"| packed (all + center subsets) | {packed_files} | {packed_bytes / 1e6:.2f} MB | "
            f"{packed_disk / 1e6:.2f} MB |"
        )
        for name, total in shard_bytes.items():
            shards = manifest["subsets"][name]["shards"]
            disk = sum(
                (scratch / "packed" / entry["name"]).stat().st_blocks * 512
                for shard in shards
                for entry in (shard, shard["index"])
            )
            print(f"| `{name}` subset | {2 * len(shards)} (tar + index) | {total / 1e6:.2f} MB | {disk / 1e6:.2f} MB |")
        print(
            f"\npack --views all: {pack_all_s:.2f} s, {source_bytes / 1e6 / pack_all_s:.1f} MB/s of dataset "
            "files; "
            f"pack --views center: {pack_center_s:.2f} s; unpack: {unpack_s:.2f} s, "
            f"{shard_bytes['all'] / 1e6 / unpack_s:.1f} MB/s of shards (checksums verified first)"
        )

        sources = {
            "folder": lambda: ClevrRemvDataset(args.data, split=args.split, views="center"),
            "shards, center subset": lambda: ClevrRemvDataset(scratch / "packed", split=args.split, views="center"),
            "shards, all subset (offsets)": lambda: _from_subset(scratch / "packed", args.split, "all"),
            "stream, center subset": lambda: ClevrRemvStream(scratch / "packed", split=args.split, views="center"),
        }
        centre = sources["folder"]()
        per_item = bytes_per_item(store, centre)
        split_all = sum(s["bytes"] for s in manifest["subsets"]["all"]["shards"] if s["split"] == args.split)
        split_center = sum(s["bytes"] for s in manifest["subsets"]["center"]["shards"] if s["split"] == args.split)
        print(
            f"\n{len(centre)} centre items in split {args.split}; bytes read per item: {per_item / 1e3:.1f} kB "
            f"(folder, or shards by offset); a sequential pass reads {split_center / len(centre) / 1e3:.1f} kB "
            f"per item over the center shards and {split_all / len(centre) / 1e3:.1f} kB over the all-view shards"
        )
        best, cpu = {}, {}
        for _ in range(args.repeats):
            for name, make in sources.items():
                for workers in (0, 1, 2):
                    seconds, used, count = timed_cpu(read_epochs, make(), workers, args.epochs, args.batch_size)
                    best[name, workers] = max(best.get((name, workers), 0.0), count / seconds)
                    if workers == 0:  # CPU time per item: robust to other jobs on the machine
                        cpu[name] = min(cpu.get(name, float("inf")), used / count)
        print(
            f"\nsamples/s, best of {args.repeats} rounds of {args.epochs} epochs (ratio to the folder form); "
            "CPU ms per item of the single process (0 workers)\n"
        )
        print("| reader | 0 workers | 1 worker | 2 workers | CPU ms/item |\n|---|---|---|---|---|")
        for name in sources:
            cells = [f"{best[name, w]:.0f} ({best[name, w] / best['folder', w]:.2f})" for w in (0, 1, 2)]
            cells.append(f"{cpu[name] * 1e3:.3f} ({cpu[name] / cpu['folder']:.2f})")
            print(f"| {name} | {' | '.join(cells)} |")


def print_paper_size(store: DatasetStore, shard_size: str) -> None:
    """The table of :func:`paper_size` at ``shard_size`` (e.g. "512MB")."""
    size = parse_size(shard_size)
    view = " + ".join(f"{PAPER_VIEW_KB[kind]} kB {kind}" for kind in ("rgb", "index") + store.passes)
    print(
        f"\npaper size: 10,000 scenes of 480x320 ({', '.join(f'{k} {v}' for k, v in PAPER_SCENES.items())}) "
        f"at --shard-size {shard_size}; per view {view}, JSON per scene as measured here\n"
    )
    print("| subset | views | MB per scene | scenes per shard | shards train / val / test | total |")
    print("|---|---|---|---|---|---|")
    for name, views, scene, per_shard, shards, total in paper_size(store, size):
        print(
            f"| {name} | {views} | {scene / 1e6:.3f} | {per_shard} | {shards['train']} / {shards['val']} / "
            f"{shards['test']} | {total / 1e9:.1f} GB |"
        )


def _from_subset(root, split, subset):
    """Centre items read from ``subset`` of a packed folder, though a smaller subset holds them."""
    dataset = ClevrRemvDataset(root, split=split, views="center")
    chosen = dataset.store
    dataset.store = PackedSplit(PackedStore(root), subset, split, dataset.views, dataset.passes)
    assert chosen.scene_ids() == dataset.store.scene_ids()
    return dataset


if __name__ == "__main__":
    main()
