"""The classic CNN-LSTM RES baseline (in the spirit of Hu et al., 2016).

A convolutional image encoder (output stride 8), an LSTM sentence vector tiled over the feature map,
8 channels of spatial coordinates per cell, a fully convolutional (1x1) head, and logits upsampled
bilinearly to the image size. Words come from a vocabulary built on the training expressions and
stored in the config (hence in every checkpoint).
"""
import torch
from torch import nn
from torch.nn import functional as F

from clevr_remv.dataset.vocab import Vocabulary
from clevr_remv.res.models.imagenet import ImageNetNormalize
from clevr_remv.res.models.registry import SIZES
from clevr_remv.res.models.text import WordTokenizer

DEFAULT_LR = 1e-3
DICE_WEIGHT = 1.0

_SIZE_CONFIGS = {
    "tiny": {"channels": [16, 32, 64, 128], "word_dim": 64, "lstm_dim": 128, "head_dim": 128},
    "small": {"channels": [32, 64, 128, 256], "word_dim": 128, "lstm_dim": 256, "head_dim": 256},
    "base": {"channels": [64, 128, 256, 512], "word_dim": 300, "lstm_dim": 1024, "head_dim": 512},
}


def default_config(size: str = "tiny") -> dict:
    """The baseline's config for ``size``; ``vocabulary`` is filled by :func:`prepare_config`."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}")
    return {"model": "baseline", "size": size, "max_tokens": 20, "class_weights": [0.9, 1.1],
            "dice_weight": DICE_WEIGHT, "augment": True, "vocabulary": None, **_SIZE_CONFIGS[size]}


def prepare_config(config: dict, train_texts) -> dict:
    """The config with the vocabulary of the training expressions."""
    return {**config, "vocabulary": Vocabulary.build(train_texts).words}


def build_tokenizer(config: dict) -> WordTokenizer:
    return WordTokenizer(config["vocabulary"], config["max_tokens"])


def build_model(config: dict) -> "BaselineRES":
    if not config.get("vocabulary"):
        raise ValueError("the baseline config has no vocabulary; call prepare_config first")
    return BaselineRES(vocabulary_size=len(config["vocabulary"]), channels=config["channels"],
                       word_dim=config["word_dim"], lstm_dim=config["lstm_dim"],
                       head_dim=config["head_dim"])


def spatial_coordinates(height: int, width: int, device=None) -> torch.Tensor:
    """(8, H, W): per cell x_min, y_min, x_max, y_max, x_centre, y_centre in [-1, 1], 1/W, 1/H."""
    xs = torch.arange(width, device=device, dtype=torch.float32)
    ys = torch.arange(height, device=device, dtype=torch.float32)
    x_min, x_max = xs / width * 2 - 1, (xs + 1) / width * 2 - 1
    y_min, y_max = ys / height * 2 - 1, (ys + 1) / height * 2 - 1
    y_lo, x_lo = torch.meshgrid(y_min, x_min, indexing="ij")
    y_hi, x_hi = torch.meshgrid(y_max, x_max, indexing="ij")
    return torch.stack([x_lo, y_lo, x_hi, y_hi, (x_lo + x_hi) / 2, (y_lo + y_hi) / 2,
                        torch.full_like(x_lo, 1.0 / width), torch.full_like(x_lo, 1.0 / height)])


def _conv_stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """A (strided) 3x3 conv then a 3x3 conv, each with BN and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class BaselineRES(nn.Module):
    """CNN image features + tiled LSTM sentence vector + spatial coordinates -> 1x1 conv head."""

    def __init__(self, vocabulary_size, channels, word_dim, lstm_dim, head_dim):
        super().__init__()
        self.normalize = ImageNetNormalize()
        widths = [3] + list(channels)
        strides = [2] * (len(channels) - 1) + [1]       # output stride 8 with four stages
        self.encoder = nn.Sequential(*[_conv_stage(a, b, stride)
                                       for a, b, stride in zip(widths, widths[1:], strides)])
        self.embedding = nn.Embedding(vocabulary_size, word_dim, padding_idx=0)
        self.lstm = nn.LSTM(word_dim, lstm_dim, batch_first=True)
        self.head = nn.Sequential(
            nn.Conv2d(channels[-1] + lstm_dim + 8, head_dim, 1), nn.ReLU(inplace=True),
            nn.Conv2d(head_dim, 2, 1))

    def sentence_vector(self, tokens, token_mask):
        """The LSTM's hidden state after each sentence's last real token: (B, lstm_dim)."""
        lengths = token_mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        return hidden[-1]

    def forward(self, image, tokens, token_mask):
        features = self.encoder(self.normalize(image))
        batch, _, height, width = features.shape
        sentence = F.normalize(self.sentence_vector(tokens, token_mask), dim=1)
        tiled = sentence[:, :, None, None].expand(-1, -1, height, width)
        coordinates = spatial_coordinates(height, width, image.device).expand(batch, -1, -1, -1)
        fused = torch.cat([features, tiled, coordinates], dim=1)
        logits = self.head(fused)
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
