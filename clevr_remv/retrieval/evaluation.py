"""Retrieval metrics from an (images x captions) similarity matrix.

Image -> text: the rank of an image is the rank of its best-scoring caption (its other captions do
not count against it). Text -> image: the rank of the caption's own image. Ties count against the
query: a wrong item that scores the same as the right one ranks before it, so a model that scores
everything alike gets the worst rank, not the best. R@K is the percentage of queries ranked in the
top K, medr / meanr the median / mean 1-based rank, R-sum the six recalls added. Images with no
caption are distractors: they are no image query but can be retrieved by texts.
"""

import numpy as np
import torch
from tqdm import tqdm

from clevr_remv.retrieval.model import text_batch

RECALL_KS = (1, 5, 10)
CHUNK = 1024


def _summary(ranks: np.ndarray) -> dict:
    """R@1/5/10 (percent), median and mean rank (1-based) of 0-based ``ranks``."""
    out = {f"r{k}": float(100.0 * np.mean(ranks < k)) for k in RECALL_KS}
    out["medr"] = float(np.floor(np.median(ranks)) + 1)
    out["meanr"] = float(ranks.mean() + 1)
    return out


def image_to_text_ranks(sim: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """0-based rank of each captioned image's best caption among the other images' captions."""
    n_images, n_captions = sim.shape
    own_score = sim[caption_image, np.arange(n_captions)]
    best = np.full(n_images, -np.inf, dtype=np.float64)
    np.maximum.at(best, caption_image, own_score)
    queries = np.flatnonzero(np.isfinite(best))
    own_tied = np.zeros(n_images, dtype=np.int64)
    np.add.at(own_tied, caption_image, own_score >= best[caption_image])
    ranks = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), CHUNK):
        rows = queries[start : start + CHUNK]
        at_least = (sim[rows] >= best[rows, None]).sum(axis=1)
        ranks[start : start + CHUNK] = at_least - own_tied[rows]
    return ranks


def text_to_image_ranks(sim: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """0-based rank of each caption's image among all images."""
    n_captions = sim.shape[1]
    ranks = np.empty(n_captions, dtype=np.int64)
    for start in range(0, n_captions, CHUNK):
        columns = np.arange(start, min(start + CHUNK, n_captions))
        own = sim[caption_image[columns], columns]
        ranks[columns] = (sim[:, columns] >= own[None, :]).sum(axis=0) - 1
    return ranks


def recall_metrics(sim: np.ndarray, caption_image: np.ndarray) -> dict:
    """{"i2t": {r1, r5, r10, medr, meanr}, "t2i": {...}, "rsum"} of an (images x captions) matrix."""
    sim = np.asarray(sim)
    caption_image = np.asarray(caption_image, dtype=np.int64)
    if sim.ndim != 2 or caption_image.shape != (sim.shape[1],):
        raise ValueError(f"similarity {sim.shape} and caption_image {caption_image.shape} do not match")
    i2t = _summary(image_to_text_ranks(sim, caption_image))
    t2i = _summary(text_to_image_ranks(sim, caption_image))
    rsum = sum(i2t[f"r{k}"] + t2i[f"r{k}"] for k in RECALL_KS)
    return {"i2t": i2t, "t2i": t2i, "rsum": float(rsum)}


def fold_metrics(sim: np.ndarray, caption_image: np.ndarray, folds: int = 5) -> dict:
    """COCO's protocol: metrics on ``folds`` consecutive image blocks (1K each for the 5K test set)
    with their own captions, and their mean."""
    caption_image = np.asarray(caption_image, dtype=np.int64)
    n_images = sim.shape[0]
    if n_images < folds:
        raise ValueError(f"{n_images} images cannot make {folds} folds")
    results = []
    for rows in np.array_split(np.arange(n_images), folds):
        columns = np.flatnonzero((caption_image >= rows[0]) & (caption_image <= rows[-1]))
        results.append(recall_metrics(sim[rows[0] : rows[-1] + 1][:, columns], caption_image[columns] - rows[0]))
    mean = {d: {key: float(np.mean([r[d][key] for r in results])) for key in results[0][d]} for d in ("i2t", "t2i")}
    mean["rsum"] = float(np.mean([r["rsum"] for r in results]))
    return {"folds": results, "mean": mean}


@torch.no_grad()
def embed_split(model, vocab, split, device, batch_size: int = 256):
    """(image embeddings, caption embeddings) of a split as float32 numpy arrays."""
    model.eval()
    images = [
        model.embed_images(split.image_batch(np.arange(s, min(s + batch_size, len(split.images)))).to(device)).cpu()
        for s in range(0, len(split.images), batch_size)
    ]
    texts = []
    for start in tqdm(
        range(0, len(split.captions), batch_size), desc=f"embed {split.name} captions", unit="batch", leave=False
    ):
        tokens, lengths = text_batch(vocab, split.captions[start : start + batch_size])
        texts.append(model.embed_texts(tokens.to(device), lengths).cpu())
    return torch.cat(images).numpy(), torch.cat(texts).numpy()


def evaluate_split(model, vocab, split, device, fold5: bool = False) -> dict:
    """Metrics of ``model`` on ``split``: all images at once, plus the 5-fold mean when ``fold5``."""
    images, texts = embed_split(model, vocab, split, device)
    sim = images @ texts.T
    result = recall_metrics(sim, split.caption_image)
    if fold5:
        result["fold5"] = fold_metrics(sim, split.caption_image)
    return result
