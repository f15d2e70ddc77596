"""``ClevrRemvStream``: ClevrRemvDataset's items as an iterable for multi-rank, multi-worker training.

Each epoch the shards are put in an order drawn from (seed, epoch), the items are laid out shard
after shard in that order, and the sequence is cut into one contiguous run per rank and, within
a rank, one per DataLoader worker. Every item of the split is read exactly once per epoch by
exactly one (rank, worker), whatever the numbers of shards, ranks and workers; each reader goes
through whole stretches of few shards, and a shuffle buffer mixes its items. A dataset folder
streams too, each scene standing for a shard.
"""

import os
import warnings

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from clevr_remv.dataset.packed import is_packed
from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.errors import ClevrRemvError
from clevr_remv.wording import plural


def rank_and_world(rank=None, world_size=None) -> tuple:
    """(rank, world size): given values, else torch.distributed's when initialised, else the
    RANK and WORLD_SIZE environment variables (torchrun sets them), else (0, 1)."""
    if rank is not None and world_size is not None:
        found = (int(rank), int(world_size))
    elif torch.distributed.is_available() and torch.distributed.is_initialized():
        found = (torch.distributed.get_rank(), torch.distributed.get_world_size())
    else:
        found = (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))
    if not 0 <= found[0] < found[1]:
        raise ClevrRemvError(
            f"rank {found[0]} of world size {found[1]}: the rank must be from 0 to world size - 1 "
            "(check the rank= and world_size= arguments or the RANK and WORLD_SIZE variables)"
        )
    return found


def _cut(count: int, parts: int, part: int) -> tuple:
    """(start, stop) of ``part`` when ``count`` items are cut into ``parts`` near-equal runs."""
    return count * part // parts, count * (part + 1) // parts


class ClevrRemvStream(IterableDataset):
    """The items of [`ClevrRemvDataset`][clevr_remv.dataset.pytorch.ClevrRemvDataset] as a stream.

    ``seed`` and the epoch ([`set_epoch`][clevr_remv.dataset.stream.ClevrRemvStream.set_epoch]: call
    it before every epoch, as with DistributedSampler) fix the order: the same (seed, epoch) gives
    every rank the same plan, and every epoch a new one.

    Args:
        root: dataset folder, or packed folder (`clevr-remv pack`).
        split: a split name in splits.json.
        views: "center", "corners", "all" or a list of (u, v), as for ClevrRemvDataset.
        transform: called with the sample dict, returning it.
        passes: optional passes to load, ("depth",) or ().
        seed: with the epoch, decides the order.
        shuffle: False keeps shard and item order.
        shuffle_buffer: items mixed within each reader.
        even_ranks: True gives every rank exactly len // world_size items (up to world_size - 1
            items of an epoch, different ones each epoch, are left out) so that DDP ranks take the
            same number of steps; by default nothing is left out and ranks differ by at most one item.
        rank: this rank (given with world_size); default torch.distributed's, else RANK.
        world_size: the number of ranks; default torch.distributed's, else WORLD_SIZE.
    """

    def __init__(
        self,
        root,
        split: str = "train",
        views="center",
        transform=None,
        passes=(),
        seed: int = 0,
        shuffle: bool = True,
        shuffle_buffer: int = 1000,
        even_ranks: bool = False,
        rank=None,
        world_size=None,
    ):
        self.dataset = ClevrRemvDataset(root, split=split, views=views, transform=transform, passes=passes)
        self.seed, self.shuffle, self.shuffle_buffer, self.even_ranks = seed, shuffle, shuffle_buffer, even_ranks
        self.rank, self.world_size = rank_and_world(rank, world_size)
        self.epoch = 0
        scenes = self.dataset.item_scenes()
        if is_packed(root):
            shard_of = {scene: self.dataset.store.shard_of(scene) for scene in np.unique(scenes).tolist()}
            self._item_shard = np.asarray([shard_of[scene] for scene in scenes.tolist()], np.int64)
        else:
            self._item_shard = scenes
        self.shards = len(np.unique(self._item_shard))

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from the next iteration on."""
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """Every item index once, in this epoch's shard order (items of one shard stay together)."""
        shards = np.unique(self._item_shard)
        if self.shuffle:
            shards = np.random.default_rng([self.seed, self.epoch]).permutation(shards)
        position = np.empty(shards.max() + 1 if len(shards) else 0, np.int64)
        position[shards] = np.arange(len(shards))
        return np.argsort(position[self._item_shard], kind="stable")

    def _rank_run(self) -> tuple:
        count = len(self._item_shard)
        if self.even_ranks:
            share = count // self.world_size
            return self.rank * share, (self.rank + 1) * share
        return _cut(count, self.world_size, self.rank)

    def __len__(self) -> int:
        """Items this rank reads in an epoch (over all its DataLoader workers)."""
        start, stop = self._rank_run()
        return stop - start

    def __iter__(self):
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        if self.shards < self.world_size * workers and self.rank == 0 and worker_id == 0:
            readers = self.world_size * workers
            warnings.warn(
                f"{self.dataset.store.root}: {plural(self.shards, 'shard')} for {plural(self.world_size, 'rank')} x "
                f"{plural(workers, 'DataLoader worker')}: readers share shards (every item is still read exactly "
                "once), so reads are less sequential and each epoch's shuffle mixes fewer shards; pack "
                f"with a smaller --shard-size for at least {readers} shards per split",
                stacklevel=2,
            )
        start, stop = self._rank_run()
        run = self.order()[start:stop]
        mine = run[slice(*_cut(len(run), workers, worker_id))]
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker_id])
            mine = _buffered(mine.tolist(), self.shuffle_buffer, rng)
        for index in mine:
            yield self.dataset[int(index)]

    def __repr__(self) -> str:
        return (
            f"ClevrRemvStream({self.dataset!r}, shards={self.shards}, rank={self.rank}/{self.world_size}, "
            f"epoch={self.epoch}, seed={self.seed})"
        )


def _buffered(items: list, size: int, rng):
    """``items`` through a shuffle buffer of ``size``: each output is drawn at random from the
    buffer, which refills from the input in order."""
    buffer = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= max(size, 1):
            pick = int(rng.integers(len(buffer)))
            buffer[pick], buffer[-1] = buffer[-1], buffer[pick]
            yield buffer.pop()
    while buffer:
        pick = int(rng.integers(len(buffer)))
        buffer[pick], buffer[-1] = buffer[-1], buffer[pick]
        yield buffer.pop()
