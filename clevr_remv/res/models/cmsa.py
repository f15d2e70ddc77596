"""A CMSA-like model (Ye et al., 2019): posterior fusion with cross-modal self-attention.

The CNN encoder (`clevr_remv.res.models.cnn_family`) and an LSTM over the words (no attention in
either) meet after the encoder: each cell's visual feature (with 8 coordinate channels and, with
``attribute_maps``, the attribute probabilities) is projected and scaled by the projected sentence
vector, as in the baseline's product fusion. Then the fused cells and the projected words form one
sequence over which transformer layers attend (cross-modal self-attention: every cell sees every
other cell and every word), and a 3x3 convolution and a 1x1 convolution give 2-class logits,
upsampled bilinearly. Attention is in the cross-modal part only (the paper's A-Num 1).
"""

import torch
from torch import nn
from torch.nn import functional as F

from clevr_remv.res.models.baseline import build_tokenizer, prepare_config, spatial_coordinates
from clevr_remv.res.models.cnn_family import (
    CPU_RECIPES,
    CnnRES,
    family_config,
    load_vision_weights,
    stem_options,
    vision_backbone,
    vocabulary_size,
)

__all__ = ["build_tokenizer", "load_vision_weights", "prepare_config", "vision_backbone"]

DEFAULT_LR = 1e-3
RECIPES = {"default": {}, **CPU_RECIPES}
ATTENTION = {"vision": False, "language": False, "cross_modal": True}
_SIZE_CONFIGS = {
    "tiny": {"word_dim": 64, "lstm_dim": 128, "dim": 128, "layers": 2, "heads": 4},
    "small": {"word_dim": 128, "lstm_dim": 256, "dim": 256, "layers": 2, "heads": 8},
    "base": {"word_dim": 300, "lstm_dim": 1024, "dim": 512, "layers": 3, "heads": 8},
}


def default_config(size: str = "tiny") -> dict:
    """The model's config for ``size``; ``vocabulary`` is filled by `prepare_config`."""
    return family_config("cmsa", size, _SIZE_CONFIGS, ATTENTION)


def build_model(config: dict) -> "CmsaRES":
    return CmsaRES(
        vocabulary_size=vocabulary_size(config),
        channels=config["channels"],
        word_dim=config["word_dim"],
        lstm_dim=config["lstm_dim"],
        dim=config["dim"],
        layers=config["layers"],
        heads=config["heads"],
        **stem_options(config),
    )


class CmsaRES(CnnRES):
    """CNN cells fused with the sentence, then self-attention over cells and words together."""

    def __init__(
        self, vocabulary_size, channels, word_dim, lstm_dim, dim, layers, heads, frozen_stages=0, attribute_classes=None
    ):
        super().__init__(channels, frozen_stages, attribute_classes)
        self.embedding = nn.Embedding(vocabulary_size, word_dim, padding_idx=0)
        self.lstm = nn.LSTM(word_dim, lstm_dim, batch_first=True)
        self.visual = nn.Conv2d(channels[-1] + self.attribute_channels + 8, dim, 1)
        self.sentence = nn.Linear(lstm_dim, dim)
        self.words = nn.Linear(lstm_dim, dim)
        self.modality = nn.Parameter(torch.zeros(2, dim))  # added to cells (0) and words (1)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.attention = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, 2, 1),
        )

    def encode_words(self, tokens, token_mask):
        """(word features (B, L, lstm_dim), mean over the real words (B, lstm_dim)) of the LSTM."""
        lengths = token_mask.sum(1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, _ = self.lstm(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=tokens.shape[1])
        return outputs, (outputs * token_mask[..., None]).sum(1) / lengths[:, None]

    def from_stem(self, stem, attributes, tokens, token_mask, size):
        features = self.trainable_stages(stem)
        if attributes is not None:
            features = torch.cat([features, attributes], dim=1)
        batch, _, height, width = features.shape
        coordinates = spatial_coordinates(height, width, features.device).expand(batch, -1, -1, -1)
        words, sentence = self.encode_words(tokens, token_mask)
        visual = F.relu(self.visual(torch.cat([features, coordinates], dim=1)))
        cells = (visual * self.sentence(sentence)[:, :, None, None]).flatten(2).transpose(1, 2)
        sequence = torch.cat([cells + self.modality[0], self.words(words) + self.modality[1]], dim=1)
        padding = torch.cat([token_mask.new_ones(batch, cells.shape[1]), token_mask], dim=1) == 0
        attended = self.attention(sequence, src_key_padding_mask=padding)[:, : cells.shape[1]]
        logits = self.head(attended.transpose(1, 2).reshape(batch, -1, height, width))
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
