"""LAVT's multiple fusion (Yang et al., 2022) on the project's CNN encoder: ``lavt-cnn``.

Language meets vision inside the encoder, as in LAVT: after every encoder stage from stride 4 on
(stages 2, 3 and 4; stage 1, at stride 2, is the stem that Swin's stride-4 patch embedding stands
for), a pixel-word attention module (PWAM) gives each cell the words it attends to, and a language
gate adds the result back to the visual features that enter the next stage. The top-down decoder
(3x3 conv-BN-ReLU x 2 per step) fuses the PWAM outputs of the three stages and predicts 2-class
logits at stride 4, upsampled bilinearly. PWAM, gate and decoder are LAVT's
(`clevr_remv.res.models.lavt`).

Attention in all three parts (the paper's A-Num 3): vision, a transformer block over the cells after
stage 4; language, a transformer layer over the word embeddings (with learned positions, the
vocabulary built from the training expressions); cross-modal, the PWAMs. With ``attribute_maps``
the attribute probabilities are added, projected, to the stage-3 features (stride 8).
"""

import torch
from torch import nn
from torch.nn import functional as F

from clevr_remv.res.models.baseline import build_tokenizer, prepare_config
from clevr_remv.res.models.cnn_family import (
    CPU_RECIPES,
    CnnRES,
    family_config,
    load_vision_weights,
    stem_options,
    vision_backbone,
    vocabulary_size,
)
from clevr_remv.res.models.lavt import LanguageGate, PixelWordAttention, TopDownDecoder

__all__ = ["build_tokenizer", "load_vision_weights", "prepare_config", "vision_backbone"]

DEFAULT_LR = 1e-3
RECIPES = {"default": {}, **CPU_RECIPES}
ATTENTION = {"vision": True, "language": True, "cross_modal": True}
FUSED_STAGES = (1, 2, 3)  # 0-based encoder stages followed by a PWAM and gate: strides 4, 8, 8
_SIZE_CONFIGS = {
    "tiny": {"text_dim": 128, "text_layers": 1, "heads": 4, "decoder_dim": 64},
    "small": {"text_dim": 256, "text_layers": 2, "heads": 8, "decoder_dim": 128},
    "base": {"text_dim": 512, "text_layers": 4, "heads": 8, "decoder_dim": 256},
}


def default_config(size: str = "tiny") -> dict:
    """The model's config for ``size``; ``vocabulary`` is filled by `prepare_config`."""
    return family_config("lavt-cnn", size, _SIZE_CONFIGS, ATTENTION)


def build_model(config: dict) -> "LavtCnnRES":
    return LavtCnnRES(
        vocabulary_size=vocabulary_size(config),
        max_tokens=config["max_tokens"],
        channels=config["channels"],
        text_dim=config["text_dim"],
        text_layers=config["text_layers"],
        heads=config["heads"],
        decoder_dim=config["decoder_dim"],
        **stem_options(config),
    )


def _transformer(dim: int, heads: int, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class LavtCnnRES(CnnRES):
    """Language-aware CNN encoder (PWAM and gate after stages 2-4), top-down decoder."""

    def __init__(
        self,
        vocabulary_size,
        max_tokens,
        channels,
        text_dim,
        text_layers,
        heads,
        decoder_dim,
        frozen_stages=0,
        attribute_classes=None,
    ):
        if frozen_stages > FUSED_STAGES[0] + 1:
            raise ValueError(f"lavt-cnn fuses from stage {FUSED_STAGES[0] + 1} on: freeze at most that many stages")
        super().__init__(channels, frozen_stages, attribute_classes)
        self.embedding = nn.Embedding(vocabulary_size, text_dim, padding_idx=0)
        self.positions = nn.Parameter(torch.zeros(max_tokens, text_dim))
        self.text = _transformer(text_dim, heads, text_layers)
        dims = [channels[stage] for stage in FUSED_STAGES]
        self.fusions = nn.ModuleList(PixelWordAttention(dim, text_dim) for dim in dims)
        self.gates = nn.ModuleList(LanguageGate(dim) for dim in dims[:-1])
        self.attributes_in = nn.Conv2d(self.attribute_channels, dims[1], 1) if self.attribute_channels else None
        self.vision = _transformer(dims[-1], heads, 1)
        self.decoder = TopDownDecoder(dims, decoder_dim)

    def from_stem(self, stem, attributes, tokens, token_mask, size):
        words = self.text(
            self.embedding(tokens) + self.positions[: tokens.shape[1]], src_key_padding_mask=token_mask == 0
        )
        x, outputs = stem, []
        for index, stage in enumerate(self.encoder):
            if index >= self.frozen_stages:  # the stem's stages ran before
                x = stage(x)
            if index in FUSED_STAGES:
                x, fused = self._fuse(FUSED_STAGES.index(index), x, attributes, words, token_mask)
                outputs.append(fused)
        logits = self.decoder(outputs)
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)

    def _fuse(self, position: int, x, attributes, words, token_mask) -> tuple:
        """(the next stage's input, the PWAM output for the decoder) after fused stage ``position``."""
        if position == 1 and self.attributes_in is not None:
            x = x + self.attributes_in(attributes)
        batch, channels, height, width = x.shape
        pixels = x.flatten(2).transpose(1, 2)
        if position == len(FUSED_STAGES) - 1:
            pixels = self.vision(pixels)
        fused = self.fusions[position](pixels, words, token_mask)
        if position < len(self.gates):
            pixels = pixels + self.gates[position](fused)

        def as_map(sequence):
            return sequence.transpose(1, 2).reshape(batch, channels, height, width)

        return as_map(pixels), as_map(fused)
