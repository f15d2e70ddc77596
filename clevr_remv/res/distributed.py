"""Training under torch.distributed: `benchmark` and `pretrain` launched by torchrun.

``torchrun --standalone --nproc_per_node N -m clevr_remv benchmark ...`` starts N processes (ranks);
torchrun sets RANK, LOCAL_RANK, WORLD_SIZE and the rendezvous address. Each run then:

- opens a process group (`session`): gloo on the CPU, nccl on CUDA, each rank on GPU LOCAL_RANK;
- trains a DistributedDataParallel copy of the model (`wrap`), gradients averaged over the ranks,
  batch norm synchronised on CUDA (torch's SyncBatchNorm runs on GPUs only; on the CPU each rank
  normalises its own share and rank 0's statistics are kept, `broadcast_buffers`);
- splits the global batch (``--batch-size``) evenly: `local_batch` refuses a size the ranks do not
  divide, a `DistributedSampler` per epoch or `batch_share` of each global batch hands each rank
  its part, so the recipe does not depend on N;
- predicts val and test in shards without padding (`shard`) and gathers the results in the
  dataset's order (`gather`), so every sample is scored exactly once;
- writes only on rank 0 (`is_main`); work only rank 0 does runs through `on_main`, which tells the
  other ranks whether it failed and why.

A single process (no torchrun, or N = 1) opens no group and runs exactly as before: every helper
here is then the identity.
"""

import contextlib
import itertools
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, Subset

from clevr_remv.errors import ClevrRemvError

# A collective that waits longer than this ends the run (rank 0 alone may fill a feature cache or
# score a large test split while the others wait).
TIMEOUT = timedelta(minutes=30)
RANK_SEED_STRIDE = 1_000_003  # seeds of ranks 1, 2, ... lie far from rank 0's seed + epoch
_MISSING = object()


def world_size() -> int:
    """The number of processes: the group's, or torchrun's WORLD_SIZE before it opens (1 alone)."""
    return dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank: the group's, or torchrun's RANK (0 alone)."""
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process writes outputs and prints: rank 0."""
    return rank() == 0


def require_device(device: str) -> None:
    """Refuse ``--device cuda`` where torch sees no CUDA device."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ClevrRemvError("--device cuda: no CUDA device is visible to torch; use --device cpu")


def local_batch(batch_size: int) -> int:
    """Each rank's share of the global ``batch_size``; refused unless the ranks divide it evenly."""
    if batch_size % world_size():
        raise ClevrRemvError(
            f"--batch-size {batch_size}: the global batch is split evenly across the {world_size()} "
            f"processes of this launch (torchrun --nproc_per_node); pass a multiple of {world_size()}"
        )
    return batch_size // world_size()


@contextlib.contextmanager
def session(device: str):
    """Yield the backend of the process group a torchrun launch of more than one process needs
    ("gloo", "nccl"), opened for the block and closed after it; None in a single process. A group
    the caller opened is used as it is."""
    if dist.is_initialized():
        yield dist.get_backend()
        return
    if world_size() == 1:
        yield None
        return
    require_device(device)
    if device == "cuda":
        gpu = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(gpu)
        dist.init_process_group("nccl", timeout=TIMEOUT, device_id=gpu)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    try:
        yield dist.get_backend()
    finally:
        dist.destroy_process_group()


class _Entry(nn.Module):
    """A model whose forward runs either the model or its ``from_stem`` (cached stem features)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *args, stem: bool = False):
        return self.model.from_stem(*args) if stem else self.model(*args)


class DistributedModel(DistributedDataParallel):
    """DistributedDataParallel over a model; ``from_stem`` also runs through DDP's forward, so
    training on cached stem features synchronises its gradients too."""

    def from_stem(self, *args):
        return self(*args, stem=True)


def wrap(model, device: str):
    """What trains: ``model`` itself in a single process, else a `DistributedModel` over it (its
    batch norms made SyncBatchNorm on CUDA; frozen stages keep their eval mode and statistics).
    Checkpoints keep saving ``model``'s own state dict."""
    if not dist.is_initialized():
        return model
    if device == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # replaces the children in place
        return DistributedModel(_Entry(model), device_ids=[torch.cuda.current_device()])
    return DistributedModel(_Entry(model))


def sampler(dataset, seed: int):
    """A shuffling `DistributedSampler` (seeded, its epoch set by `set_epoch`), or None alone."""
    return DistributedSampler(dataset, shuffle=True, seed=seed) if dist.is_initialized() else None


def set_epoch(loader, epoch: int) -> None:
    """Reshuffle a loader's `DistributedSampler` for ``epoch``."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)


def rank_seed(seed: int) -> int:
    """``seed`` on rank 0 (and alone), another seed on each other rank, so augmentation and data
    loader workers draw differently on each."""
    return seed + RANK_SEED_STRIDE * rank()


def batch_share(indices: list) -> list:
    """This rank's part of a global batch: every N-th index from the rank's on; a batch shorter than
    a multiple of N is first repeated from its start, so every rank gets the same number (at least 1)."""
    size = world_size()
    padded = [indices[i % len(indices)] for i in range(-(-len(indices) // size) * size)]
    return padded[rank() :: size]


def shard(dataset):
    """This rank's samples for prediction: every N-th from the rank's on, no padding (`gather`
    puts the ranks' results back in order)."""
    return Subset(dataset, range(rank(), len(dataset), world_size())) if dist.is_initialized() else dataset


def gather(items):
    """Every rank's ``items`` (from its `shard`) in the dataset's order, on every rank; ``items``
    as given alone."""
    if not dist.is_initialized():
        return items
    parts = [None] * world_size()
    dist.all_gather_object(parts, list(items))
    return [item for row in itertools.zip_longest(*parts, fillvalue=_MISSING) for item in row if item is not _MISSING]


def all_sum(values: list) -> list:
    """The sums of ``values`` (numbers) over the ranks, as floats; ``values`` as given alone."""
    if not dist.is_initialized():
        return values
    device = torch.cuda.current_device() if dist.get_backend() == "nccl" else "cpu"  # nccl reduces GPU tensors
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    return totals.tolist()


def broadcast_buffers(model) -> None:
    """Give every rank rank 0's buffers (batch-norm statistics), so all predict and save alike."""
    if dist.is_initialized():
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def barrier() -> None:
    """Wait for every rank (nothing alone)."""
    if dist.is_initialized():
        dist.barrier()


def on_main(function, *args):
    """Run ``function(*args)`` on rank 0 only and return its result there (None on the others).
    The other ranks wait for it; if it raised, they raise too, with its message."""
    if not dist.is_initialized():
        return function(*args)
    outcome, result, error = [None], None, None
    if is_main():
        try:
            result = function(*args)
        except Exception as raised:  # reported to the other ranks, then raised here
            error, outcome[0] = raised, (isinstance(raised, ClevrRemvError), str(raised))
    dist.broadcast_object_list(outcome, 0)
    if error is not None:
        raise error
    if outcome[0] is not None:
        user_error, message = outcome[0]
        raise ClevrRemvError(message) if user_error else RuntimeError(f"rank 0 failed: {message}")
    return result


def broadcast(value):
    """Rank 0's ``value`` on every rank."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, 0)
    return box[0]
