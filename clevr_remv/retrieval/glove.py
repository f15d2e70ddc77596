"""Word vectors from a local GloVe text file ("word v1 ... vD" a line) for the vocabulary's words."""

from pathlib import Path

import torch
from tqdm import tqdm

from clevr_remv.errors import ClevrRemvError


def read_glove(path, vocab, word_dim: int):
    """({vocabulary index: vector tensor}, number of lines read) for the words of ``vocab`` in ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ClevrRemvError(f"--glove {path}: file missing; pass a GloVe .txt file (e.g. glove.6B.300d.txt)")
    vectors, lines = {}, 0
    with open(path, encoding="utf-8", errors="replace") as stream:
        for lines, line in enumerate(tqdm(stream, desc="read GloVe", unit=" words"), start=1):
            parts = line.rstrip().split(" ")
            if lines == 1 and len(parts) - 1 != word_dim:
                raise ClevrRemvError(
                    f"--glove {path}: vectors have {len(parts) - 1} dimensions but "
                    f"--word-dim is {word_dim}; pass --word-dim {len(parts) - 1}"
                )
            word = " ".join(parts[:-word_dim])
            if word in vocab.index and len(parts) > word_dim:
                try:
                    vectors[vocab.index[word]] = torch.tensor([float(x) for x in parts[-word_dim:]])
                except ValueError as error:
                    raise ClevrRemvError(
                        f"--glove {path}: line {lines} is not 'word' + {word_dim} numbers; pass a GloVe text file"
                    ) from error
    return vectors, lines
