"""`clevr-remv pretrain`: dense attribute pretraining of the CNN encoder from the dataset's own labels.

The encoder (`clevr_remv.res.models.cnn`) learns to predict, for every cell of its stride-8 output,
the colour, shape, material and size of the object covering the cell, or background
(`clevr_remv.res.models.attributes`). It reads the centre views of the training split only (no
shifted view, no val or test scene in training); the val split's centre views measure it.

The output folder holds ``encoder.pt`` (encoder and attribute heads, loadable with `benchmark
--vision-weights`), ``pretrain.json`` (settings, data read, per-epoch history, per-attribute
accuracy on val, wall time) and ``checkpoints/last.pt``, from which ``resume=True`` continues.
Each epoch reseeds torch with ``seed + epoch``, so a resumed run matches an uninterrupted one.

Launched by torchrun with N CPU processes (`clevr_remv.res.distributed`, gloo), every process
draws the same global batches and trains a DistributedDataParallel copy on its share of each; the
val accuracy counts every process's shard; rank 0 alone writes. ``pretrain.json`` records
``world_size`` and ``backend`` in its settings.
"""

import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from clevr_remv.dataset.outdir import check_output_dir, write_manifest
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.properties import load_properties
from clevr_remv.res import distributed
from clevr_remv.res.models.attributes import (
    ATTRIBUTES,
    AttributeHeads,
    attribute_classes,
    cell_targets,
    object_table,
)
from clevr_remv.res.models.augment import FlipAndShift
from clevr_remv.res.models.cnn import SIZE_CHANNELS, cnn_encoder, encoder_document, stem_stride
from clevr_remv.res.models.imagenet import ImageNetNormalize
from clevr_remv.res.models.training import load_checkpoint, make_optimizer, make_poly_schedule, save_checkpoint

OUTPUT_STRIDE = stem_stride(4)
DEFAULT_EPOCHS = 15
DEFAULT_LR = 1e-3
RESUME_KEYS = ("data", "size", "epochs", "batch_size", "lr", "input_size", "seed")


class CentreViews:
    """The centre views of one split, decoded once and kept in memory: images uint8 (N, 3, H, W),
    index masks (N, H, W) and each view's `object_table`."""

    def __init__(self, store: DatasetStore, split: str, classes: dict):
        self.scenes = split_scene_ids(store, split)
        u, v = store.center
        images, masks, self.tables = [], [], []
        bar = tqdm(self.scenes, desc=f"read {split} centre views", unit="view", disable=not distributed.is_main())
        for scene in bar:
            images.append(torch.from_numpy(store.read_rgb(scene, u, v).transpose(2, 0, 1).copy()))
            masks.append(torch.from_numpy(store.read_index(scene, u, v).astype(np.int64)))
            self.tables.append(object_table(store.load_scene(scene, check=False)["objects"], classes))
        self.images = torch.stack(images) if images else torch.empty(0)
        self.masks = torch.stack(masks) if masks else torch.empty(0)

    def __len__(self) -> int:
        return len(self.scenes)

    def batch(self, indices, input_size, augment=None) -> tuple:
        """(images float (B, 3, H, W) in [0, 1], index masks (B, H, W)) at ``input_size`` (width,
        height; None: native), each sample flipped and shifted by ``augment`` if given."""
        images = self.images[indices].float() / 255
        masks = self.masks[indices]
        if augment is not None:
            pairs = [augment({"image": i, "mask": m, "text": ""}) for i, m in zip(images, masks, strict=True)]
            images = torch.stack([pair["image"] for pair in pairs])
            masks = torch.stack([pair["mask"] for pair in pairs])
        if input_size is not None and tuple(images.shape[-2:]) != (input_size[1], input_size[0]):
            size = (input_size[1], input_size[0])
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            masks = F.interpolate(masks[:, None].float(), size=size, mode="nearest")[:, 0].long()
        return images, masks


class AttributeNet(torch.nn.Module):
    """The CNN encoder with one 1x1 head per attribute on its stride-8 features."""

    def __init__(self, channels, classes: dict):
        super().__init__()
        self.normalize = ImageNetNormalize()
        self.encoder = cnn_encoder(channels)
        self.heads = AttributeHeads(channels[-1], classes)

    def forward(self, images) -> dict:
        return self.heads(self.encoder(self.normalize(images)))


def _loss(logits: dict, targets) -> torch.Tensor:
    """The sum over attributes of the cells' cross-entropy."""
    return sum(F.cross_entropy(logits[name], targets[row]) for row, name in enumerate(ATTRIBUTES))


@torch.no_grad()
def measure(model, views: CentreViews, input_size, batch_size: int) -> dict:
    """Per attribute: accuracy (%) over all cells and over the foreground cells (an object's).
    Under torchrun each process counts its shard of the views, and the counts are summed."""
    model.eval()
    correct = {name: [0, 0] for name in ATTRIBUTES}  # all cells, foreground cells
    cells = [0, 0]
    mine = list(distributed.shard(range(len(views))))
    for start in range(0, len(mine), batch_size):
        indices = mine[start : start + batch_size]
        images, masks = views.batch(indices, input_size)
        targets = cell_targets(masks, [views.tables[i] for i in indices], OUTPUT_STRIDE)
        logits = model(images)
        foreground = targets[0] > 0
        cells[0] += foreground.numel()
        cells[1] += int(foreground.sum())
        for row, name in enumerate(ATTRIBUTES):
            hit = logits[name].argmax(1) == targets[row]
            correct[name][0] += int(hit.sum())
            correct[name][1] += int((hit & foreground).sum())
    cells = [int(total) for total in distributed.all_sum(cells)]
    correct = {name: [int(total) for total in distributed.all_sum(hits)] for name, hits in correct.items()}
    return {
        name: {
            "all_cells": 100 * hits[0] / max(1, cells[0]),
            "foreground_cells": 100 * hits[1] / max(1, cells[1]),
        }
        for name, hits in correct.items()
    } | {"cells": cells[0], "foreground_cells": cells[1]}


def _check_size(store: DatasetStore, input_size) -> None:
    width, height = input_size or (store.info()["config"]["width"], store.info()["config"]["height"])
    if width % OUTPUT_STRIDE or height % OUTPUT_STRIDE:
        raise ClevrRemvError(
            f"--input-size: the network sees {width}x{height}, but each side must be a multiple of "
            f"{OUTPUT_STRIDE} (the encoder's cells); pass e.g. --input-size "
            f"{width // OUTPUT_STRIDE * OUTPUT_STRIDE}x{height // OUTPUT_STRIDE * OUTPUT_STRIDE}"
        )


def _check_splits(store: DatasetStore) -> None:
    """Refuse a dataset whose train split is empty (val may be, then nothing is measured)."""
    if not split_scene_ids(store, "train"):
        raise ClevrRemvError(
            f"{store.splits_path}: the train split is empty, and pretraining reads only the training "
            "split's centre views; generate more scenes and rerun `clevr-remv split`"
        )


def _resumed_state(out: Path, settings: dict, resume: bool):
    last = out / "checkpoints" / "last.pt"
    if not last.is_file():
        if resume and distributed.is_main():
            tqdm.write(f"--resume: no checkpoint in {out}; starting a new run")
        return None
    if not resume:
        raise ClevrRemvError(
            f"--out {out}: holds a previous run (checkpoints/last.pt); pass --resume to continue it "
            "or choose another --out"
        )
    state = load_checkpoint(last)
    for key in RESUME_KEYS:
        if state["settings"].get(key) != settings[key]:
            raise ClevrRemvError(
                f"--resume: the run in {out} used {key}={state['settings'].get(key)!r}, not "
                f"{settings[key]!r}; pass the same options or choose another --out"
            )
    return state


def _train_epoch(network, train: CentreViews, settings: dict, epoch: int, optimizer, scheduler, augment) -> float:
    """One pass over the training views in the order of seed + epoch, each process on its
    `distributed.batch_share` of every batch; the mean loss over the steps (and processes)."""
    batch_size = settings["batch_size"]
    steps = -(-len(train) // batch_size)
    torch.manual_seed(settings["seed"] + epoch)
    order = torch.randperm(len(train)).tolist()  # the same global batches on every process
    if distributed.rank():  # each other process augments its share with draws of its own
        torch.manual_seed(distributed.rank_seed(settings["seed"] + epoch))
    network.train()
    total = 0.0
    description = f"pretrain epoch {epoch}/{settings['epochs']}"
    bar = tqdm(range(steps), desc=description, unit="batch", dynamic_ncols=True, disable=not distributed.is_main())
    for step in bar:
        indices = distributed.batch_share(order[step * batch_size : (step + 1) * batch_size])
        images, masks = train.batch(indices, settings["input_size"], augment)
        targets = cell_targets(masks, [train.tables[i] for i in indices], OUTPUT_STRIDE)
        loss = _loss(network(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
        bar.set_postfix(loss=f"{total / (step + 1):.4f}")
    distributed.broadcast_buffers(network)
    return distributed.all_sum([total])[0] / (steps * distributed.world_size())


def _write_epoch(out: Path, history: list, checkpoint: dict) -> None:
    """Rank 0's end of an epoch: the console line and ``last.pt``."""
    entry = history[-1]
    if entry["val"]:
        tqdm.write(
            f"epoch {entry['epoch']}: loss {entry['train_loss']:.4f}; val foreground cells "
            + ", ".join(f"{name} {entry['val'][name]['foreground_cells']:.1f} %" for name in ATTRIBUTES)
        )
    save_checkpoint(out / "checkpoints" / "last.pt", checkpoint)


def _write_outputs(out: Path, model: AttributeNet, config: dict, document: dict) -> None:
    save_checkpoint(out / "encoder.pt", encoder_document(model.encoder, model.heads, config))
    write_json_atomic(out / "pretrain.json", document)


def run_pretrain(
    data,
    out,
    epochs: int = DEFAULT_EPOCHS,
    size: str = "tiny",
    input_size=None,
    seed: int = 0,
    batch_size: int = 32,
    lr: float = DEFAULT_LR,
    resume: bool = False,
) -> dict:
    """Pretrain the CNN encoder of ``size`` on the train split's centre views of ``data``; returns
    the document written to ``out``/pretrain.json (by rank 0 under torchrun; every process returns it)."""
    if epochs < 1 or batch_size < 1:
        raise ClevrRemvError("--epochs / --batch-size: must be at least 1")
    distributed.local_batch(batch_size)  # refuses a global batch the processes do not divide
    store = DatasetStore(data)
    _check_splits(store)
    _check_size(store, input_size)
    out = check_output_dir(out, "pretrain", {"--data": data})
    settings = {
        "data": str(Path(data).resolve()),
        "size": size,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "input_size": list(input_size) if input_size else None,
        "seed": seed,
    }
    state = _resumed_state(out, settings, resume)
    with distributed.session("cpu") as backend:
        settings.update(world_size=distributed.world_size(), backend=backend)
        distributed.barrier()  # every process checked --out before rank 0 writes into it
        distributed.on_main(write_manifest, out, "pretrain")
        return _pretrain(store, out, settings, state)


def _pretrain(store: DatasetStore, out: Path, settings: dict, state) -> dict:
    classes = attribute_classes(store.info()["config"].get("properties") or load_properties())
    config = {
        "size": settings["size"],
        "channels": SIZE_CHANNELS[settings["size"]],
        "attributes": classes,
        "input_size": settings["input_size"],
    }
    train, val = CentreViews(store, "train", classes), CentreViews(store, "val", classes)
    torch.manual_seed(settings["seed"])
    model = AttributeNet(config["channels"], classes)
    network = distributed.wrap(model, "cpu")
    epochs, batch_size = settings["epochs"], settings["batch_size"]
    optimizer = make_optimizer(model, settings["lr"])
    scheduler = make_poly_schedule(optimizer, epochs * -(-len(train) // batch_size))
    history, wall = [], 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, wall = state["history"], state["wall_seconds"]
    augment = FlipAndShift()
    for epoch in range(len(history) + 1, epochs + 1):
        started = time.time()
        loss = _train_epoch(network, train, settings, epoch, optimizer, scheduler, augment)
        scores = measure(model, val, settings["input_size"], distributed.local_batch(batch_size)) if len(val) else None
        wall += time.time() - started
        history.append({"epoch": epoch, "train_loss": loss, "val": scores})
        checkpoint = {
            "model": {key: value.detach().clone() for key, value in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": history,
            "settings": settings,
            "wall_seconds": wall,
        }
        distributed.on_main(_write_epoch, out, history, checkpoint)
    document = {
        "settings": settings,
        "config": config,
        "data": {
            "train_scenes": len(train),
            "val_scenes": len(val),
            "views": "centre view of each scene",
            "view": list(store.center),
        },
        "epochs": epochs,
        "val": history[-1]["val"],
        "history": history,
        "wall_seconds": wall,
    }
    distributed.on_main(_write_outputs, out, model, config, document)
    return document
