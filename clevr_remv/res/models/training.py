"""Training and inference loops shared by every registered model.

Loss: cross-entropy over (background, referent) with class weights (LAVT: [0.9, 1.1]);
optimiser: AdamW (weight decay 0.01, none on biases, norms and position-bias tables);
schedule: polynomial decay (power 0.9) per iteration. Images may be resized to an input size
for the network; predictions are always returned at the dataset's native resolution.

Training runs in rounds, each ended by a validation: an epoch each by default, or, given a number
of iterations (the paper's 800,000 for CNN-LSTM models), blocks of ``val_every`` iterations drawn
from an endless sequence of shuffled passes (`StepBatchSampler`).

Under torchrun (`clevr_remv.res.distributed`) each process runs these loops on its share of every
batch; `train_epoch` reports the loss over all of them.
"""

import math

import torch
from torch.nn import functional as F
from tqdm import tqdm

from clevr_remv.dataset.atomic import atomic_path
from clevr_remv.res import distributed

POLY_POWER = 0.9
WEIGHT_DECAY = 0.01


TENSOR_KEYS = ("image", "mask", "stem", "attributes")  # stacked by collate; "stem", "attributes": cached items


def collate(samples) -> dict:
    """Stack the tensors of ClevrRemvDataset items (image, mask) or of cached items (stem features,
    attribute maps, mask); keep the other fields as lists."""
    batch = {key: torch.stack([s[key] for s in samples]) for key in TENSOR_KEYS if key in samples[0]}
    for key in ("text", "scene", "expression_id", "view"):
        batch[key] = [s[key] for s in samples]
    return batch


def dice_loss(logits, masks):
    """1 - the soft Dice coefficient of the referent probability, per sample, batch mean (+1 smoothing:
    an empty target with an empty prediction costs nothing). Unlike cross-entropy it does not shrink
    with the referent's area, so predicting no referent at all is never cheap."""
    probability = logits.softmax(1)[:, 1].flatten(1)
    target = masks.flatten(1).to(probability.dtype)
    overlap = (probability * target).sum(1)
    return (1 - (2 * overlap + 1) / (probability.sum(1) + target.sum(1) + 1)).mean()


def segmentation_loss(logits, masks, class_weights, dice_weight: float = 0.0):
    """Class-weighted cross-entropy of 2-class logits (B, 2, H, W) against bool masks (B, H, W),
    plus ``dice_weight`` times `dice_loss`."""
    weights = torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
    loss = F.cross_entropy(logits, masks.long(), weight=weights)
    return loss + dice_weight * dice_loss(logits, masks) if dice_weight else loss


def make_optimizer(model, lr: float, weight_decay: float = WEIGHT_DECAY):
    """AdamW; no weight decay on 1-D parameters (biases, norms) or relative-position bias tables."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        skip = parameter.ndim <= 1 or name.endswith("relative_position_bias_table")
        (no_decay if skip else decay).append(parameter)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )


def make_poly_schedule(optimizer, total_steps: int, power: float = POLY_POWER):
    """lr * (1 - step / total_steps) ** power, stepped once per iteration."""
    total = max(1, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total) ** power)


def training_rounds(steps_per_epoch: int, epochs: int, iterations=None, val_every=None) -> list:
    """[(first step, end step)] of each round (global iteration counts, end excluded): ``epochs``
    epochs, or ``iterations`` steps in blocks of ``val_every`` (default: one epoch's steps)."""
    if iterations is None:
        return [(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch) for epoch in range(epochs)]
    block = val_every or steps_per_epoch
    return [(start, min(start + block, iterations)) for start in range(0, iterations, block)]


class StepBatchSampler(torch.utils.data.Sampler):
    """Index batches of the global steps [start, stop): the data is cut into passes of
    ceil(size / batch_size) steps, pass p shuffled by ``torch.randperm`` seeded with seed + p
    (the last batch of a pass may be short), so any block of steps is reproducible on its own.
    Under torchrun each process takes its `distributed.batch_share` of every batch."""

    def __init__(self, size: int, batch_size: int, seed: int, start: int, stop: int):
        super().__init__()
        self.size, self.batch_size, self.seed, self.start, self.stop = size, batch_size, seed, start, stop
        self.per_pass = math.ceil(size / batch_size)

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self):
        order, current = None, None
        for step in range(self.start, self.stop):
            number, index = divmod(step, self.per_pass)
            if number != current:
                generator = torch.Generator().manual_seed(self.seed + number)
                order, current = torch.randperm(self.size, generator=generator).tolist(), number
            yield distributed.batch_share(order[index * self.batch_size : (index + 1) * self.batch_size])


def forward_batch(model, batch, tokenizer, input_size, device):
    """The model's logits for a batch: from its images, resized to ``input_size`` (width, height)
    if given, or from cached stem features (``stem``, ``attributes``: `model.from_stem`), at the
    network's size."""
    tokens, token_mask = tokenizer(batch["text"])
    tokens, token_mask = tokens.to(device), token_mask.to(device)
    if "stem" in batch:
        size = batch["mask"].shape[-2:] if input_size is None else (input_size[1], input_size[0])
        attributes = batch["attributes"].to(device) if "attributes" in batch else None
        return model.from_stem(batch["stem"].to(device), attributes, tokens, token_mask, size)
    images = batch["image"].to(device)
    if input_size is not None and tuple(images.shape[-2:]) != (input_size[1], input_size[0]):
        images = F.interpolate(images, size=(input_size[1], input_size[0]), mode="bilinear", align_corners=False)
    return model(images, tokens, token_mask)


def train_epoch(
    model,
    loader,
    tokenizer,
    optimizer,
    scheduler,
    class_weights,
    device,
    input_size=None,
    description: str = "train",
    progress: bool = True,
    dice_weight: float = 0.0,
) -> float:
    """One pass over ``loader``; returns the mean loss (see `segmentation_loss`). A progress
    bar shows loss and ETA. Under torchrun: the mean over every process's samples, and every
    process leaves with rank 0's buffers (batch-norm statistics)."""
    model.train()
    total, count = 0.0, 0
    bars = progress and distributed.is_main()
    bar = tqdm(loader, desc=description, unit="batch", disable=not bars, dynamic_ncols=True)
    for batch in bar:
        logits = forward_batch(model, batch, tokenizer, input_size, device)
        masks = batch["mask"].to(device)
        if masks.shape[-2:] != logits.shape[-2:]:
            masks = F.interpolate(masks[:, None].float(), size=logits.shape[-2:], mode="nearest")[:, 0] > 0.5
        loss = segmentation_loss(logits, masks, class_weights, dice_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = optimizer.param_groups[0]["lr"]  # this step's; after scheduler.step() it is the next one's
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(masks)
        count += len(masks)
        bar.set_postfix(loss=f"{total / count:.4f}", lr=f"{lr:.2e}")
    distributed.broadcast_buffers(model)
    total, count = distributed.all_sum([total, count])
    return total / max(1, count)


@torch.no_grad()
def predict(
    model, loader, tokenizer, device, input_size=None, description: str = "predict", progress: bool = True, refine=None
):
    """Yield (scene, expression_id, view, predicted mask, ground-truth mask) per sample; masks are
    bool numpy arrays at the native resolution (logits upsampled bilinearly before the argmax).
    ``refine(image uint8 (H, W, 3), probabilities (2, H, W)) -> mask`` replaces the argmax (e.g.
    DenseCRF)."""
    model.eval()
    bars = progress and distributed.is_main()
    for batch in tqdm(loader, desc=description, unit="batch", disable=not bars, dynamic_ncols=True):
        logits = forward_batch(model, batch, tokenizer, input_size, device)
        native = batch["mask"].shape[-2:]
        if logits.shape[-2:] != native:
            logits = F.interpolate(logits, size=native, mode="bilinear", align_corners=False)
        if refine is None:
            predictions = (logits.argmax(1) == 1).cpu().numpy()
        else:
            pixels = (batch["image"] * 255).round().byte().permute(0, 2, 3, 1).numpy()
            predictions = [
                refine(image, probability)
                for image, probability in zip(pixels, logits.softmax(1).float().cpu().numpy(), strict=True)
            ]
        targets = batch["mask"].numpy()
        for scene, expression_id, view, prediction, target in zip(
            batch["scene"], batch["expression_id"], batch["view"], predictions, targets, strict=True
        ):
            yield scene, expression_id, tuple(view), prediction, target


def save_checkpoint(path, state: dict) -> None:
    """``torch.save`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path) -> dict:
    """A checkpoint written by `save_checkpoint`, on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)
