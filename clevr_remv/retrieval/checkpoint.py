"""Checkpoints: model weights, the network spec, the vocabulary and the training config, in one
``torch.save`` file that loads with ``weights_only=True`` (plain containers and tensors only)."""

from pathlib import Path

import torch

from clevr_remv.dataset.atomic import atomic_path
from clevr_remv.dataset.vocab import Vocabulary
from clevr_remv.errors import ClevrRemvError
from clevr_remv.retrieval.model import PairwiseEmbedding

KIND = "clevr-remv-retrieval"
VERSION = 1


def save_checkpoint(path, model: PairwiseEmbedding, vocab: Vocabulary, **info) -> None:
    """Write the model, its spec, the vocabulary and ``info`` (config, epoch, metrics) atomically."""
    payload = {
        "kind": KIND,
        "version": VERSION,
        "spec": model.spec,
        "vocab": vocab.words,
        "state": model.state_dict(),
        **info,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path, device="cpu"):
    """(model in eval mode on ``device``, vocabulary, the whole payload) of a checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise ClevrRemvError(f"{path}: checkpoint missing; pass the best.pt written by `clevr-remv retrieval train`")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise ClevrRemvError(f"{path}: not a readable checkpoint ({error}); retrain or pass another file") from error
    if not isinstance(payload, dict) or payload.get("kind") != KIND or payload.get("version") != VERSION:
        raise ClevrRemvError(
            f"{path}: not a clevr-remv retrieval checkpoint (version {VERSION}); "
            "pass the best.pt written by `clevr-remv retrieval train`"
        )
    model = PairwiseEmbedding(payload["spec"])
    model.load_state_dict(payload["state"])
    model.to(device).eval()
    return model, Vocabulary(payload["vocab"]), payload
