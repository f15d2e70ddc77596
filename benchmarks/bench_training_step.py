"""Where a training step's time goes on real renders, and what the feature cache saves, per CNN model.

For each model (its tiny size, the ``frozen-stem-attributes`` recipe, loaded from a ``pretrain``
encoder) and the same batches of a real training set's centre views, without augmentation so that
both paths see identical inputs:

- **from images** (what `benchmark` does without a frozen stem): decode the PNGs (`ClevrRemvDataset`),
  run the whole model; the share of the step spent reading and decoding is reported;
- **from the cache** (`clevr_remv.res.feature_cache`): read the cached stem features and attribute
  maps, run the model's trainable part (`from_stem`).

Both paths train a copy of the same initial model with the same batches, so their losses must agree
(the largest difference is printed); samples/s of each and their ratio. ``--threads`` torch threads.

    python benchmarks/bench_training_step.py --data ~/.cache/clevr-remv/multiview/35mm-b0.1/train \\
        --encoder ~/.cache/clevr-remv/families/pretrain/encoder.pt --steps 20 --batch-size 32
"""

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch

from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.res.feature_cache import CachedSamples, cache_views
from clevr_remv.res.models.cnn import read_encoder_file
from clevr_remv.res.models.registry import get_model
from clevr_remv.res.models.training import collate, forward_batch, make_optimizer, segmentation_loss

MODELS = ("baseline", "cmsa", "lavt-cnn")


def build(name: str, encoder: Path, texts: list):
    """(model loaded from ``encoder``, tokenizer, config) of ``name`` with the frozen-stem-attributes recipe."""
    module = get_model(name)
    config = {**module.default_config("tiny"), **module.RECIPES["frozen-stem-attributes"]}
    config["attribute_classes"] = read_encoder_file(encoder)["config"]["attributes"]
    config = module.prepare_config(config, texts)
    torch.manual_seed(0)
    model = module.build_model(config)
    module.load_vision_weights(model, encoder)
    return model, module.build_tokenizer(config), config


def timed_steps(model, tokenizer, config, dataset, batches: list) -> dict:
    """Train ``model`` on ``batches`` (lists of item indices of ``dataset``): seconds spent getting
    the items, seconds in forward, backward and optimiser step, and each step's loss."""
    optimizer = make_optimizer(model, 1e-3)
    model.train()
    loading = computing = 0.0
    losses = []
    for indices in batches:
        start = time.perf_counter()
        batch = collate([dataset[i] for i in indices])
        loaded = time.perf_counter()
        logits = forward_batch(model, batch, tokenizer, None, "cpu")
        loss = segmentation_loss(logits, batch["mask"], config["class_weights"], config["dice_weight"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        computing += time.perf_counter() - loaded
        loading += loaded - start
        losses.append(loss.item())
    return {"loading": loading, "computing": computing, "losses": losses}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a dataset with a train split of centre views")
    parser.add_argument("--encoder", type=Path, required=True, help="encoder.pt of `clevr-remv pretrain`")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after 2 untimed ones)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = ClevrRemvDataset(args.data, split="train", views="center")
    texts = [images.describe(i)["text"] for i in range(len(images))]
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0)).tolist()
    batches = [order[i * args.batch_size : (i + 1) * args.batch_size] for i in range(args.steps + 2)]
    views = sorted({(images.describe(i)["scene"], images.describe(i)["view"]) for i in order})
    print(
        "| model | from images (samples/s) | reading and decoding (% of the step) | from the cache (samples/s) "
        "| speed-up | largest loss difference |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        for name in args.models.split(","):
            model, tokenizer, config = build(name, args.encoder, texts)
            features = cache_views(model, DatasetStore(args.data), views, None, False, cache)
            cached = CachedSamples(images, features)
            runs = {}
            for label, dataset in (("images", images), ("cache", cached)):
                timed_steps(copy.deepcopy(model), tokenizer, config, dataset, batches[:2])  # warm-up
                runs[label] = timed_steps(copy.deepcopy(model), tokenizer, config, dataset, batches[2:])
            rates = {label: args.steps * args.batch_size / (r["loading"] + r["computing"]) for label, r in runs.items()}
            share = 100 * runs["images"]["loading"] / (runs["images"]["loading"] + runs["images"]["computing"])
            difference = max(abs(a - b) for a, b in zip(runs["images"]["losses"], runs["cache"]["losses"], strict=True))
            print(
                f"| {name} | {rates['images']:.1f} | {share:.1f} | {rates['cache']:.1f} | "
                f"{rates['cache'] / rates['images']:.2f}x | {difference:.2e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
