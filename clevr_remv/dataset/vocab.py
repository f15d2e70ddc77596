"""Words of expressions and captions, and the word vocabulary built on them.

One tokenizer and one vocabulary for the RES baseline, the retrieval models and the RefCOCO
export. Stored vocabularies (``Vocabulary.words``, with or without the two special tokens in
front) load back with the same indices.
"""

import re
from collections import Counter

PAD, UNKNOWN = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list:
    """Lower-case words and numbers of ``text`` ("ball's" stays one word); punctuation is dropped."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word <-> index; index 0 is padding, 1 stands for words never seen when it was built."""

    def __init__(self, words):
        self.words = [PAD, UNKNOWN] + [w for w in words if w not in (PAD, UNKNOWN)]
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, texts, min_count: int = 1) -> "Vocabulary":
        """Words seen at least ``min_count`` times in ``texts``, most frequent first."""
        counts = Counter(word for text in texts for word in tokenize(text))
        return cls(sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list:
        """Token ids of the words of ``text`` (unknown words -> ``<unk>``; none for an empty text)."""
        unknown = self.index[UNKNOWN]
        return [self.index.get(word, unknown) for word in tokenize(text)]
