"""The baseline learns: the Dice term, and overfitting a few real dataset samples through the
benchmark's own data, training and prediction code (loss, loop and mask alignment)."""

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.metrics import intersection_and_union
from clevr_remv.res.models import baseline
from clevr_remv.res.models.augment import FlipAndShift, mirror_text
from clevr_remv.res.models.training import (
    collate,
    dice_loss,
    make_optimizer,
    make_poly_schedule,
    predict,
    segmentation_loss,
    train_epoch,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS, LR = 100, 3e-3  # a rate above the default: overfitting three samples fast is the point


def test_dice_loss_does_not_shrink_with_the_referent():
    masks = torch.zeros(2, 32, 48, dtype=torch.bool)
    masks[0, :2, :2] = True  # 4 pixels
    masks[1, :16, :24] = True  # 384 pixels
    background = torch.zeros(2, 2, 32, 48)
    background[:, 0] = 20.0  # confident "no referent" everywhere
    perfect = torch.stack([~masks, masks], 1).float() * 20 - 10
    # Cross-entropy hardly notices a missed 4-pixel referent; the Dice term does (1 - 1/5 with smoothing).
    assert segmentation_loss(background[:1], masks[:1], [0.9, 1.1]) < 0.1
    assert dice_loss(background[:1], masks[:1]) == pytest.approx(0.8, abs=0.01)
    assert dice_loss(background[1:], masks[1:]) == pytest.approx(1.0, abs=0.01)
    assert dice_loss(perfect, masks) == pytest.approx(0.0, abs=1e-3)
    assert dice_loss(background, torch.zeros_like(masks)) == pytest.approx(0.0, abs=1e-3)
    assert segmentation_loss(background, masks, [0.9, 1.1], dice_weight=2.0) == pytest.approx(
        segmentation_loss(background, masks, [0.9, 1.1]) + 2 * dice_loss(background, masks)
    )


def test_baseline_overfits_three_samples(tiny_dataset):
    data = ClevrRemvDataset(tiny_dataset, split="train", views="center")
    largest = sorted(range(len(data)), key=lambda i: int(data[i]["mask"].sum()))[-3:]
    samples = Subset(data, largest)
    config = baseline.prepare_config(baseline.default_config("tiny"), [data.describe(i)["text"] for i in largest])
    torch.manual_seed(0)
    model, tokenizer = baseline.build_model(config), baseline.build_tokenizer(config)
    optimizer = make_optimizer(model, LR)
    scheduler = make_poly_schedule(optimizer, STEPS)
    loader = DataLoader(samples, batch_size=3, shuffle=True, collate_fn=collate)
    for _ in range(STEPS):
        train_epoch(
            model,
            loader,
            tokenizer,
            optimizer,
            scheduler,
            config["class_weights"],
            "cpu",
            progress=False,
            dice_weight=config["dice_weight"],
        )
    ious = [
        intersection_and_union(prediction, target)
        for *_, prediction, target in predict(
            model, DataLoader(samples, batch_size=3, collate_fn=collate), tokenizer, "cpu", progress=False
        )
    ]
    assert len(ious) == 3
    assert all(intersection / union > 0.5 for intersection, union in ious), ious


def test_flip_and_shift_keep_image_mask_and_words_aligned():
    image = torch.zeros(3, 32, 48)
    image[0, 10:18, 8:16] = 1.0  # a red square on the left, 8 px from the edges
    sample = {"image": image, "mask": image[0] > 0, "text": "The red cube left of the sphere.", "scene": 0}
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out = FlipAndShift(max_shift=4)(sample)
        assert out["image"].shape == image.shape and out["mask"].shape == (32, 48)
        assert torch.equal(out["mask"], out["image"][0] > 0.5) and int(out["mask"].sum()) == 64
        flipped = out["mask"][:, 24:].any().item()
        assert out["text"] == ("The red cube right of the sphere." if flipped else sample["text"])
        seen.add(flipped)
    assert seen == {True, False} and sample["text"] == "The red cube left of the sphere."
    assert (
        mirror_text("Counting from the left, the cube right of it. Left")
        == "Counting from the right, the cube left of it. Right"
    )
