"""LAVT's language-gate initialisation, side by side: the reference code's (both linear layers from
a truncated normal, std 0.02; the default) against a zeroed second layer (recipe ``zero-gate``).

A small LAVT (Swin stages of width 32-256, the offline MiniLM text encoder, everything trained)
learns a task that needs the words: each image holds a red and a blue square at random places and
the expression names one of them. Per seed, both inits share every other weight and every batch; reported:
mean training loss over the first and the last 20 steps, IoU on 64 held-out images, and the mean
|gate(F)| / |F| of the first stage's gate before and after training.

    python benchmarks/bench_lavt_gate.py --steps 150 --seeds 0,1,2 --threads 1
"""

import argparse

import torch

from clevr_remv.metrics import intersection_and_union
from clevr_remv.res.models import lavt
from clevr_remv.res.models.training import make_optimizer, make_poly_schedule, segmentation_loss

SMALL = {
    "embed_dim": 32,
    "depths": [1, 1, 2, 1],
    "heads": [1, 2, 4, 8],
    "window": 4,
    "decoder_dim": 64,
    "drop_path": 0.0,
}
SIZE = 64


def squares(count: int, generator) -> tuple:
    """Images with a red and a blue 16x16 square (not overlapping), the text naming one, its mask."""
    images = torch.full((count, 3, SIZE, SIZE), 0.5)
    masks = torch.zeros(count, SIZE, SIZE, dtype=torch.bool)
    texts = []
    for i in range(count):
        while True:
            corners = torch.randint(0, SIZE - 16, (2, 2), generator=generator).tolist()
            if abs(corners[0][0] - corners[1][0]) >= 16 or abs(corners[0][1] - corners[1][1]) >= 16:
                break
        for channel, (y, x) in zip((0, 2), corners, strict=True):
            images[i, :, y : y + 16, x : x + 16] = 0.0
            images[i, channel, y : y + 16, x : x + 16] = 1.0
        named = int(torch.randint(0, 2, (1,), generator=generator))
        texts.append(("the red square", "the blue square")[named])
        y, x = corners[named]
        masks[i, y : y + 16, x : x + 16] = True
    return images, masks, texts


def gate_ratio(model, images, tokens, token_mask) -> float:
    """Mean |gate(F)| / mean |F| of the first stage's gate on ``images``."""
    captured = {}
    gate = model.backbone.layers[0].gate
    handle = gate.register_forward_hook(lambda module, inputs, output: captured.update(f=inputs[0], g=output))
    with torch.no_grad():
        model(images, tokens, token_mask)
    handle.remove()
    return (captured["g"].abs().mean() / captured["f"].abs().mean()).item()


def run(gate_init: str, seed: int, args) -> dict:
    config = lavt.prepare_config({**lavt.default_config("tiny"), **SMALL, "gate_init": gate_init}, [])
    torch.manual_seed(seed)
    model = lavt.build_model(config)
    if gate_init != "reference":  # every weight but the gates' as in the reference-init model of this seed
        torch.manual_seed(seed)
        reference = lavt.build_model({**config, "gate_init": "reference"}).state_dict()
        model.load_state_dict({k: v for k, v in reference.items() if ".gate." not in k}, strict=False)
    tokenizer = lavt.build_tokenizer(config)
    data = torch.Generator().manual_seed(1000 + seed)
    held_out = squares(64, torch.Generator().manual_seed(99))
    held_tokens = tokenizer(held_out[2])
    before = gate_ratio(model.eval(), held_out[0][:8], held_tokens[0][:8], held_tokens[1][:8])
    optimizer = make_optimizer(model, args.lr)
    scheduler = make_poly_schedule(optimizer, args.steps)
    losses = []
    model.train()
    for _ in range(args.steps):
        images, masks, texts = squares(args.batch_size, data)
        tokens, token_mask = tokenizer(texts)
        loss = segmentation_loss(model(images, tokens, token_mask), masks, config["class_weights"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        predictions = model(held_out[0], *held_tokens).argmax(1) == 1
    totals = [intersection_and_union(p.numpy(), m.numpy()) for p, m in zip(predictions, held_out[1], strict=True)]
    iou = 100 * sum(i for i, _ in totals) / max(1, sum(u for _, u in totals))
    after = gate_ratio(model, held_out[0][:8], held_tokens[0][:8], held_tokens[1][:8])
    window = min(20, args.steps)
    return {
        "first": sum(losses[:window]) / window,
        "last": sum(losses[-window:]) / window,
        "iou": iou,
        "gate_before": before,
        "gate_after": after,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4, help="AdamW peak learning rate (poly decay)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.steps} steps of batch {args.batch_size}, lr {args.lr}, {SIZE}x{SIZE} images, MiniLM text encoder")
    print(
        "| gate_init | seed | loss, first 20 steps | loss, last 20 steps | held-out oIoU | "
        "gate/F before | gate/F after |"
    )
    print("|---|---|---|---|---|---|---|")
    means = {}
    for gate_init in lavt.GATE_INITS:
        rows = []
        for seed in (int(s) for s in args.seeds.split(",")):
            row = run(gate_init, seed, args)
            rows.append(row)
            print(
                f"| {gate_init} | {seed} | {row['first']:.4f} | {row['last']:.4f} | {row['iou']:.1f} | "
                f"{row['gate_before']:.4f} | {row['gate_after']:.4f} |",
                flush=True,
            )
        means[gate_init] = {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}
    for gate_init, mean in means.items():
        print(
            f"| {gate_init} | mean | {mean['first']:.4f} | {mean['last']:.4f} | {mean['iou']:.1f} | "
            f"{mean['gate_before']:.4f} | {mean['gate_after']:.4f} |"
        )


if __name__ == "__main__":
    main()
