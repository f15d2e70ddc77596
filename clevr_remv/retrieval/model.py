"""The paper's two-branch "pairwise embedding" network.

Image branch: a linear layer on precomputed CNN features (the paper: ResNet-152 + FC), or a small
CNN on raw pixels for CLEVR-REMV centre views. Text branch: word embeddings + a one-layer Bi-LSTM
whose last forward and first backward states are concatenated. Both outputs are L2-normalised in a
joint space of ``embed_dim`` (the paper: 1024).
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from clevr_remv.dataset.vocab import UNKNOWN


class FeatureEncoder(nn.Module):
    """Precomputed image features (B, D) -> (B, embed_dim), Xavier-initialised as in VSE++."""

    def __init__(self, feature_dim: int, embed_dim: int):
        super().__init__()
        self.fc = nn.Linear(feature_dim, embed_dim)
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, features):
        return self.fc(features)


class PixelEncoder(nn.Module):
    """uint8 images (B, H, W, 3) -> (B, embed_dim): four stride-2 conv blocks, global average pool, FC."""

    def __init__(self, embed_dim: int, width: int = 32):
        super().__init__()
        blocks, channels = [], 3
        for out in (width, 2 * width, 4 * width, 8 * width):
            blocks += [
                nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(channels, embed_dim)

    def forward(self, pixels):
        x = pixels.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        return self.fc(self.features(x))


def text_batch(vocabulary, texts) -> tuple:
    """(B, T) padded token ids of ``texts`` in ``vocabulary`` (a `Vocabulary`) and their
    (B,) lengths; an empty text becomes one ``<unk>`` (the LSTM needs a token)."""
    unknown = vocabulary.index[UNKNOWN]
    encoded = [vocabulary.encode(text) or [unknown] for text in texts]
    lengths = torch.tensor([len(ids) for ids in encoded])
    tokens = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.long)
    for row, ids in enumerate(encoded):
        tokens[row, : len(ids)] = torch.tensor(ids)
    return tokens, lengths


class TextEncoder(nn.Module):
    """Token ids (B, T) + lengths (B,) -> (B, embed_dim) with a Bi-LSTM of embed_dim / 2 per direction."""

    def __init__(self, vocab_size: int, word_dim: int, embed_dim: int, dropout: float = 0.5):
        super().__init__()
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even (two LSTM directions), not {embed_dim}")
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(word_dim, embed_dim // 2, batch_first=True, bidirectional=True)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        for name, weight in self.lstm.named_parameters():
            (nn.init.xavier_uniform_ if "weight" in name else nn.init.zeros_)(weight)

    def forward(self, tokens, lengths):
        words = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(words, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        return torch.cat([hidden[0], hidden[1]], dim=1)


class PairwiseEmbedding(nn.Module):
    """Both branches; ``spec`` (a plain dict, stored in checkpoints) says how to build them:
    ``image`` ("features" or "pixels"), ``feature_dim`` (features only), ``vocab_size``,
    ``word_dim``, ``embed_dim``."""

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = dict(spec)
        if spec["image"] == "features":
            self.image = FeatureEncoder(spec["feature_dim"], spec["embed_dim"])
        else:
            self.image = PixelEncoder(spec["embed_dim"])
        self.text = TextEncoder(spec["vocab_size"], spec["word_dim"], spec["embed_dim"])

    def embed_images(self, images):
        return F.normalize(self.image(images), dim=1)

    def embed_texts(self, tokens, lengths):
        return F.normalize(self.text(tokens, lengths), dim=1)
