"""Training and inference throughput (samples/s) of every RES model and size, side by side.

Random images at the input size and real-looking expressions; one training step = forward,
class-weighted cross-entropy (plus the baseline's Dice term), backward, AdamW step (the
`clevr-remv benchmark` loop). After ``--warmup`` untimed steps, ``--steps`` steps are timed.
The last column is the speed ratio to the first row. LAVT uses the offline MiniLM text encoder.
The CNN models (baseline, cmsa, lavt-cnn) run their default recipe here, from images; what their
frozen-stem recipes save on real renders is measured by ``bench_training_step.py``.

    python benchmarks/bench_models.py --input-size 240x160 --batch-size 2 --steps 3 --threads 1
    python benchmarks/bench_models.py --models baseline,cmsa,lavt-cnn --sizes tiny --input-size 160x112 \
        --batch-size 32 --steps 10 --threads 2           # the three CNN families at the experiment's size
    python benchmarks/bench_models.py --device cuda --models lavt --sizes base \
        --input-size 480x320 --batch-size 8 --steps 20        # one GPU training-step run
"""

import argparse
import time

import torch

from clevr_remv.res.models.registry import get_model
from clevr_remv.res.models.training import make_optimizer, segmentation_loss

TEXTS = [
    "The large red cube.",
    "The small metal sphere left of the gray cylinder.",
    "Any other things that are the same shape as the blue object.",
    "The purple rubber thing.",
]


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(name: str, size: str, args) -> dict:
    module = get_model(name)
    config = module.prepare_config(module.default_config(size), TEXTS)
    torch.manual_seed(0)
    model = module.build_model(config).to(args.device)
    tokens, token_mask = module.build_tokenizer(config)((TEXTS * args.batch_size)[: args.batch_size])
    tokens, token_mask = tokens.to(args.device), token_mask.to(args.device)
    images = torch.rand(args.batch_size, 3, args.height, args.width, device=args.device)
    masks = torch.rand(args.batch_size, args.height, args.width, device=args.device) > 0.8
    optimizer = make_optimizer(model, module.DEFAULT_LR)

    def train_step():
        loss = segmentation_loss(
            model(images, tokens, token_mask), masks, config["class_weights"], config.get("dice_weight", 0.0)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def inference_step():
        model(images, tokens, token_mask).argmax(1)

    rates = {}
    for label, step, train in (("train", train_step, True), ("inference", inference_step, False)):
        model.train(train)
        for _ in range(args.warmup):
            step()
        synchronize(args.device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        synchronize(args.device)
        rates[label] = args.steps * args.batch_size / (time.perf_counter() - start)
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    return {"model": name, "size": size, "parameters_m": parameters, **rates}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="baseline,cmsa,lavt-cnn,lavt")
    parser.add_argument("--sizes", default="tiny,small,base")
    parser.add_argument("--input-size", default="240x160", help="WIDTHxHEIGHT fed to the network")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    args.width, args.height = (int(part) for part in args.input_size.split("x"))
    torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} thread(s)"
    print(
        f"{device_name}; input {args.width}x{args.height}, batch {args.batch_size}, "
        f"{args.steps} timed steps after {args.warmup} warm-up"
    )
    print("| model | size | params (M) | train samples/s | inference samples/s | train ratio | inference ratio |")
    print("|---|---|---|---|---|---|---|")
    first = None
    for name in args.models.split(","):
        for size in args.sizes.split(","):
            row = measure(name, size, args)
            first = first or row
            print(
                f"| {name} | {size} | {row['parameters_m']:.1f} | {row['train']:.2f} | {row['inference']:.2f} | "
                f"{row['train'] / first['train']:.3f} | {row['inference'] / first['inference']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
