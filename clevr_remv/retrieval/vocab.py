"""Caption tokens: a lower-case word tokenizer, the vocabulary built on the training captions,
and padding of token batches for the Bi-LSTM."""
import re
from collections import Counter

import torch

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list:
    """Lower-case words and numbers of ``text``; punctuation is dropped."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word <-> index; index 0 is padding, 1 stands for words never seen in training."""

    def __init__(self, words):
        self.words = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, captions, min_count: int = 1) -> "Vocabulary":
        """Words seen at least ``min_count`` times in ``captions``, most frequent first."""
        counts = Counter(word for caption in captions for word in tokenize(caption))
        return cls(sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list:
        """Token ids of ``text`` (at least one: an empty caption becomes ``<unk>``)."""
        unk = self.index[UNK]
        return [self.index.get(word, unk) for word in tokenize(text)] or [unk]

    def batch(self, texts):
        """(B, T) padded token ids and (B,) lengths for ``texts``."""
        encoded = [self.encode(text) for text in texts]
        lengths = torch.tensor([len(ids) for ids in encoded])
        tokens = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.long)
        for row, ids in enumerate(encoded):
            tokens[row, :len(ids)] = torch.tensor(ids)
        return tokens, lengths
