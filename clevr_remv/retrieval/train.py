"""Training: batches of (image, caption) pairs, Adam with a step decay, gradient clipping, the best
checkpoint by validation R-sum, and a results JSON with validation and test metrics."""

import time
import warnings
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from clevr_remv.dataset.store import write_json_atomic
from clevr_remv.dataset.vocab import Vocabulary
from clevr_remv.errors import ClevrRemvError
from clevr_remv.retrieval.checkpoint import load_checkpoint, save_checkpoint
from clevr_remv.retrieval.data import load_split, split_exists
from clevr_remv.retrieval.evaluation import evaluate_split
from clevr_remv.retrieval.glove import read_glove
from clevr_remv.retrieval.losses import VARIANTS, imc_loss, mh_loss, sh_loss
from clevr_remv.retrieval.model import PairwiseEmbedding, text_batch
from clevr_remv.wording import plural

LOSSES = ("sh", "mh", "imc")
# Which rows of a batch are negatives of each other: rows showing different images (two captions of
# one image are not negatives), or every other row, as the authors' code (VSE++ and IMC mask only the diagonal).
NEGATIVES = ("distinct-images", "off-diagonal")
RECALL_MIN_IMAGES = 100  # below it, chance-level R@10 (10 / images) exceeds 10 %


@dataclass
class TrainConfig:
    """Everything a run depends on; the defaults are the paper's (chapter 5.3.2)."""

    data: str
    format: str = "precomp"
    loss: str = "imc"
    distance: str = "l1"
    lam: float = 1.0
    imc_variant: str = "paper"
    negatives: str = "distinct-images"
    mu_down: float = 0.05
    mu_up: float = 0.5
    margin: float = 0.2
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-4
    lr_update: int = 15
    grad_clip: float = 2.0
    embed_dim: int = 1024
    word_dim: int = 300
    min_word_count: int = 1
    glove: str = None
    image_size: int = 128
    fold5: bool = False
    device: str = "auto"
    seed: int = 0
    out: str = "retrieval-run"


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when available, else CPU; an unavailable CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ClevrRemvError(f"--device {name}: CUDA is not available here; pass --device cpu")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise ClevrRemvError(f"--device {name}: {error}; pass cpu, cuda or cuda:N") from error


def loss_function(config: TrainConfig):
    """The configured loss as f(img, txt, ids)."""
    if config.negatives not in NEGATIVES:
        raise ClevrRemvError(f"--negatives: {config.negatives!r} is not one of {', '.join(NEGATIVES)}")
    if config.loss == "sh":
        return partial(sh_loss, margin=config.margin)
    if config.loss == "mh":
        return partial(mh_loss, margin=config.margin)
    if config.loss == "imc":
        if config.imc_variant not in VARIANTS:
            raise ClevrRemvError(f"--imc-variant: {config.imc_variant!r} is not one of {', '.join(VARIANTS)}")
        return partial(
            imc_loss,
            margin=config.margin,
            lam=config.lam,
            distance=config.distance,
            mu_down=config.mu_down,
            mu_up=config.mu_up,
            variant=config.imc_variant,
        )
    raise ClevrRemvError(f"--loss: {config.loss!r} is not one of {', '.join(LOSSES)}")


def build_model(config: TrainConfig, train_split, vocab: Vocabulary) -> PairwiseEmbedding:
    """The two-branch network for ``train_split``'s images, word vectors from --glove when given."""
    spec = {
        "image": train_split.image_kind,
        "vocab_size": len(vocab),
        "word_dim": config.word_dim,
        "embed_dim": config.embed_dim,
    }
    if train_split.image_kind == "features":
        spec["feature_dim"] = int(train_split.images.shape[1])
    model = PairwiseEmbedding(spec)
    if config.glove:
        vectors, _ = read_glove(config.glove, vocab, config.word_dim)
        with torch.no_grad():
            for index, vector in vectors.items():
                model.text.embedding.weight[index] = vector
        tqdm.write(f"GloVe: {len(vectors)} of {len(vocab) - 2} words initialised")
    return model


def _train_epoch(model, vocab, split, loss_fn, optimizer, config, device, rng, desc) -> float:
    """One pass over every caption of ``split`` in random order; returns the mean batch loss."""
    model.train()
    order = rng.permutation(len(split.captions))
    batches = [order[start : start + config.batch_size] for start in range(0, len(order), config.batch_size)]
    batches = [batch for batch in batches if len(batch) > 1]  # a lone pair has no negative to learn from
    total = 0.0
    bar = tqdm(batches, desc=desc, unit="batch", leave=False)
    for captions in bar:
        rows = split.caption_image[captions]
        tokens, lengths = text_batch(vocab, [split.captions[c] for c in captions])
        img = model.embed_images(split.image_batch(rows).to(device))
        txt = model.embed_texts(tokens.to(device), lengths)
        ids = torch.from_numpy(rows).to(device) if config.negatives == "distinct-images" else None
        loss = loss_fn(img, txt, ids=ids)
        optimizer.zero_grad()
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        total += loss.item()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total / len(batches)


def train(config: TrainConfig) -> dict:
    """Train, keep ``out/best.pt`` (best validation R-sum), test it, write ``out/results.json``."""
    device = resolve_device(config.device)
    loss_fn = loss_function(config)
    torch.manual_seed(config.seed)
    rng = np.random.RandomState(config.seed)
    out = Path(config.out)
    train_split = load_split(config.data, config.format, "train", config.image_size)
    val_split = load_split(config.data, config.format, "val", config.image_size)
    test_split = (
        load_split(config.data, config.format, "test", config.image_size)
        if split_exists(config.data, config.format, "test")
        else None
    )
    val_images = len(val_split.images)
    if val_images < RECALL_MIN_IMAGES:
        warnings.warn(
            f"--data {config.data}: the validation split has {plural(val_images, 'image')}, where a random "
            f"ranking already reaches text-to-image R@10 = {min(100.0, 1000 / val_images):.0f} %; recall, "
            f"R-sum and the choice of the best epoch mean little below {RECALL_MIN_IMAGES} "
            "validation images (generate more scenes)",
            stacklevel=2,
        )
    if len(train_split.captions) < 2:
        raise ClevrRemvError(
            f"--data {config.data}: the training split has {plural(len(train_split.captions), 'caption')}; "
            "a ranking loss needs at least 2"
        )
    if config.fold5 and (test_split is None or len(test_split.images) < 5):
        raise ClevrRemvError(f"--fold5: needs a test split of at least 5 images in {config.data}")
    vocab = Vocabulary.build(train_split.captions, config.min_word_count)
    model = build_model(config, train_split, vocab).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_update, gamma=0.1)
    history, best = [], None
    started = time.time()
    for epoch in range(1, config.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        loss = _train_epoch(
            model, vocab, train_split, loss_fn, optimizer, config, device, rng, f"epoch {epoch}/{config.epochs}"
        )
        schedule.step()
        val = evaluate_split(model, vocab, val_split, device)
        history.append({"epoch": epoch, "lr": lr, "loss": loss, "val_rsum": val["rsum"]})
        improved = best is None or val["rsum"] > best["val"]["rsum"]
        if improved:
            best = {"epoch": epoch, "val": val}
            save_checkpoint(out / "best.pt", model, vocab, config=asdict(config), epoch=epoch, val=val)
        tqdm.write(
            f"epoch {epoch}/{config.epochs}: loss {loss:.4f}, val R-sum {val['rsum']:.1f}"
            + (" (best)" if improved else "")
        )
    results = {
        "config": asdict(config),
        "best_epoch": best["epoch"],
        "val": best["val"],
        "history": history,
        "train_seconds": round(time.time() - started, 1),
    }
    if test_split is not None:
        model, vocab, _ = load_checkpoint(out / "best.pt", device)
        results["test"] = evaluate_split(model, vocab, test_split, device, fold5=config.fold5)
    write_json_atomic(out / "results.json", results)
    return results
