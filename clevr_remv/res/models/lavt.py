"""LAVT (Yang et al., 2022): language-aware vision transformer for referring segmentation.

A hierarchical Swin backbone whose every stage ends with a pixel-word attention module (PWAM)
and a language gate: the PWAM output F is fed to the decoder and ``gate(F) * F`` is added back to
the visual features before patch merging into the next stage. A BERT-family text encoder supplies
the word features (20 tokens); the top-down decoder fuses the four stage outputs and predicts
2-class logits at 1/4 resolution, upsampled bilinearly to the image size.

The defaults follow the reference code (LAVT-RIS); each point is a config key with a recipe that
switches it back, and a config without the key (a checkpoint written before it) builds as before:

- ``gate_init``: both linear layers of a gate from a truncated normal (std 0.02), ``reference``;
  ``zero`` (recipe ``zero-gate``, the default before) zeroes the second, so the gate starts closed;
- ``swin_init``: the Swin blocks' and patch mergings' Linear layers from a truncated normal (std
  0.02, zero bias), ``reference``; ``pytorch`` (recipe ``pytorch-init``) keeps PyTorch's default;
- ``drop_path``: 0.3 at every size, as LAVT-RIS; recipe ``drop-path-0.2`` gives Swin-T's earlier 0.2;
- ``align_corners``: the decoder's and the final upsampling with ``align_corners=True``; recipe
  ``unaligned-upsampling`` (the default before) uses False;
- ``text_trainable_layers``: only the text encoder's first 10 layers are trained, its embeddings
  and later layers stay as loaded (LAVT-RIS: BERT-base's layers 0-9 of 12; with the 6-layer
  MiniLM that is every layer, the embeddings stay fixed); None (recipe ``train-all-text``, the
  default before) trains every parameter.
"""

import torch
from torch import nn
from torch.nn import functional as F

from clevr_remv.res.models.imagenet import ImageNetNormalize
from clevr_remv.res.models.registry import SIZES
from clevr_remv.res.models.swin import SWIN_SIZES, PatchEmbed, PatchMerging, reference_init, stage_blocks
from clevr_remv.res.models.text import (
    BertTokenizer,
    default_text_encoder_path,
    load_text_encoder,
    train_first_layers,
)
from clevr_remv.res.models.vision_weights import load_swin_weights

ATTENTION = {"vision": True, "language": True, "cross_modal": True}  # Swin, BERT-family encoder, PWAM
DEFAULT_LR = 5e-5
GATE_INITS = ("reference", "zero")
SWIN_INITS = ("reference", "pytorch")
RECIPES = {
    "default": {},
    "zero-gate": {"gate_init": "zero"},
    "pytorch-init": {"swin_init": "pytorch"},
    "drop-path-0.2": {"drop_path": 0.2},
    "unaligned-upsampling": {"align_corners": False},
    "train-all-text": {"text_trainable_layers": None},
}


def default_config(size: str = "tiny") -> dict:
    """LAVT with the Swin-T/S/B backbone of ``size``; ``text_encoder`` None = the offline MiniLM."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}")
    # The decoder is half as wide as the last Swin stage (8 x embed_dim), as in the reference LAVT:
    # 384 channels for Swin-T / Swin-S, 512 for Swin-B.
    return {
        "model": "lavt",
        "size": size,
        **SWIN_SIZES[size],
        "decoder_dim": SWIN_SIZES[size]["embed_dim"] * 4,
        "max_tokens": 20,
        "class_weights": [0.9, 1.1],
        "drop_path": 0.3,  # LAVT-RIS at every size (Swin's ImageNet recipe: 0.2 for Swin-T)
        "text_encoder": None,
        "gate_init": "reference",
        "attention": ATTENTION,
        "swin_init": "reference",
        "align_corners": True,
        "text_trainable_layers": 10,
    }


def prepare_config(config: dict, train_texts) -> dict:
    """The config with the text encoder's folder resolved (LAVT learns no vocabulary)."""
    return {**config, "text_encoder": str(config.get("text_encoder") or default_text_encoder_path())}


def build_tokenizer(config: dict) -> BertTokenizer:
    return BertTokenizer(config["text_encoder"], config["max_tokens"])


def build_model(config: dict) -> "LAVT":
    """LAVT with the text encoder of ``config``; its load report is ``model.text_encoder_report``.
    Keys a config lacks take the behaviour of the checkpoints written before them."""
    text_encoder, report = load_text_encoder(config["text_encoder"])
    train_first_layers(text_encoder, config.get("text_trainable_layers"))
    model = LAVT(
        text_encoder=text_encoder,
        text_dim=text_encoder.config.hidden_size,
        embed_dim=config["embed_dim"],
        depths=config["depths"],
        heads=config["heads"],
        window=config["window"],
        drop_path=config["drop_path"],
        decoder_dim=config["decoder_dim"],
        gate_init=config.get("gate_init", "zero"),
        swin_init=config.get("swin_init", "pytorch"),
        align_corners=config.get("align_corners", False),
    )
    model.text_encoder_report = report
    return model


def vision_backbone(config: dict) -> str:
    """The backbone that takes --vision-weights."""
    return f"Swin-{config['size'][0].upper()}"


def load_vision_weights(model: "LAVT", path) -> dict:
    """Load a Swin checkpoint into the backbone; returns the load report."""
    return load_swin_weights(model.backbone, path)


def _instance_norm(x):
    """Normalise each channel of (B, N, C) over its N positions."""
    return F.instance_norm(x.transpose(1, 2)).transpose(1, 2)


class PixelWordAttention(nn.Module):
    """PWAM: each pixel attends over the words (query from the pixel, key/value from the words,
    padding masked out); the resulting language feature multiplies a 1x1 visual projection."""

    def __init__(self, dim: int, text_dim: int, dropout: float = 0.0):
        super().__init__()
        self.visual = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout))
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(text_dim, dim)
        self.value = nn.Linear(text_dim, dim)
        self.out = nn.Linear(dim, dim)
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout))

    def forward(self, pixels, words, word_mask):
        """pixels (B, N, C), words (B, L, C_text), word_mask (B, L) -> (B, N, C)."""
        keep = word_mask[:, :, None].to(words.dtype)
        query = _instance_norm(self.query(pixels))
        key = self.key(words) * keep
        value = self.value(words) * keep
        scores = query @ key.transpose(1, 2) * query.shape[-1] ** -0.5  # (B, N, L)
        scores = scores.masked_fill(word_mask[:, None, :] == 0, -1e4)
        language = _instance_norm(self.out(scores.softmax(-1) @ value))
        return self.project(self.visual(pixels) * language)


class LanguageGate(nn.Module):
    """tanh(W2 relu(W1 F)) * F. ``init``: ``reference``, W1 and W2 from a truncated normal with std
    0.02 (LAVT's backbone init); ``zero``, W1 PyTorch's default and W2 zero (the gate starts closed)."""

    def __init__(self, dim: int, init: str = "reference"):
        super().__init__()
        if init not in GATE_INITS:
            raise ValueError(f"gate_init must be one of {GATE_INITS}, not {init!r}")
        self.gate = nn.Sequential(
            nn.Linear(dim, dim, bias=False), nn.ReLU(), nn.Linear(dim, dim, bias=False), nn.Tanh()
        )
        if init == "reference":
            nn.init.trunc_normal_(self.gate[0].weight, std=0.02)
            nn.init.trunc_normal_(self.gate[2].weight, std=0.02)
        else:
            nn.init.zeros_(self.gate[2].weight)

    def forward(self, fused):
        return self.gate(fused) * fused


class LanguageAwareStage(nn.Module):
    """Swin blocks and PWAM; then, for every stage but the last, the language gate and patch
    merging. (The last stage's gated features would feed nothing, only its PWAM output reaches
    the decoder, so its gate is left out; in LAVT it has no effect either.)"""

    def __init__(self, dim, depth, heads, window, text_dim, drop_path_rates, last: bool, gate_init="reference"):
        super().__init__()
        self.blocks = stage_blocks(dim, depth, heads, window, drop_path_rates)
        self.fusion = PixelWordAttention(dim, text_dim)
        self.gate = None if last else LanguageGate(dim, gate_init)
        self.downsample = None if last else PatchMerging(dim)

    def forward(self, x, height, width, words, word_mask):
        """Returns (PWAM output for the decoder, input of the next stage, its height, width)."""
        for block in self.blocks:
            x = block(x, height, width)
        fused = self.fusion(x, words, word_mask)
        if self.downsample is not None:
            x, height, width = self.downsample(x + self.gate(fused), height, width)
        return fused, x, height, width


class LanguageAwareSwin(nn.Module):
    """The multi-modal backbone: patch embedding and four language-aware Swin stages."""

    def __init__(
        self, embed_dim, depths, heads, window, text_dim, drop_path, gate_init="reference", swin_init="reference"
    ):
        super().__init__()
        if swin_init not in SWIN_INITS:
            raise ValueError(f"swin_init must be one of {SWIN_INITS}, not {swin_init!r}")
        self.patch_embed = PatchEmbed(embed_dim)
        rates = torch.linspace(0, drop_path, sum(depths)).tolist()
        self.dims = [embed_dim * 2**i for i in range(len(depths))]
        self.layers = nn.ModuleList()
        for i, (dim, depth, head_count) in enumerate(zip(self.dims, depths, heads, strict=True)):
            first = sum(depths[:i])
            self.layers.append(
                LanguageAwareStage(
                    dim,
                    depth,
                    head_count,
                    window,
                    text_dim,
                    rates[first : first + depth],
                    last=i == len(depths) - 1,
                    gate_init=gate_init,
                )
            )
        self.out_norms = nn.ModuleList(nn.LayerNorm(dim) for dim in self.dims)
        if swin_init == "reference":  # the Swin parts only: LAVT-RIS's PWAM has 1x1 convolutions, PyTorch's init
            for layer in self.layers:
                reference_init(layer.blocks)
                if layer.downsample is not None:
                    reference_init(layer.downsample)

    def forward(self, image, words, word_mask):
        """(B, 3, H, W) -> [(B, C_i, H_i, W_i)] for the four stages, strides 4, 8, 16, 32."""
        x, height, width = self.patch_embed(image)
        features = []
        for layer, norm in zip(self.layers, self.out_norms, strict=True):
            fused, next_x, next_height, next_width = layer(x, height, width, words, word_mask)
            features.append(norm(fused).transpose(1, 2).reshape(x.shape[0], -1, height, width))
            x, height, width = next_x, next_height, next_width
        return features


def _conv_bn_relu(in_channels: int, out_channels: int) -> list:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class TopDownDecoder(nn.Module):
    """From the coarsest stage down: upsample (bilinear, ``align_corners`` as given), concatenate
    the next finer stage, (3x3 conv-BN-ReLU) x 2; finally a 1x1 conv to 2 classes."""

    def __init__(self, dims, hidden: int, align_corners: bool = True):
        super().__init__()
        self.align_corners = align_corners
        inputs = [dims[-1]] + [hidden] * (len(dims) - 2)
        skips = list(reversed(dims[:-1]))
        self.steps = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(a + b, hidden), *_conv_bn_relu(hidden, hidden))
            for a, b in zip(inputs, skips, strict=True)
        )
        self.classifier = nn.Conv2d(hidden, 2, 1)

    def forward(self, features):
        x = features[-1]
        for step, skip in zip(self.steps, reversed(features[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=self.align_corners)
            x = step(torch.cat([x, skip], dim=1))
        return self.classifier(x)


class LAVT(nn.Module):
    """Text encoder + language-aware Swin + top-down decoder."""

    def __init__(
        self,
        text_encoder,
        text_dim,
        embed_dim,
        depths,
        heads,
        window,
        drop_path,
        decoder_dim,
        gate_init="reference",
        swin_init="reference",
        align_corners=True,
    ):
        super().__init__()
        self.normalize = ImageNetNormalize()
        self.text_encoder = text_encoder
        self.backbone = LanguageAwareSwin(embed_dim, depths, heads, window, text_dim, drop_path, gate_init, swin_init)
        self.decoder = TopDownDecoder(self.backbone.dims, decoder_dim, align_corners)

    def forward(self, image, tokens, token_mask):
        words = self.text_encoder(input_ids=tokens, attention_mask=token_mask).last_hidden_state
        features = self.backbone(self.normalize(image), words, token_mask)
        logits = self.decoder(features)
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=self.decoder.align_corners)
