"""The classic CNN-LSTM RES baseline (in the spirit of Hu et al., 2016).

A convolutional image encoder (output stride 8) with 8 channels of spatial coordinates per cell
and an LSTM over the words meet after the encoder (posterior fusion), in one of two ways
(``fusion``): ``product``, the mean of the LSTM's outputs, projected, scales each channel of the
projected visual feature; or ``concat``, Hu et al.'s: the last LSTM state, L2-normalised and tiled,
concatenated with the visual feature and fused by a 1x1 convolution. Then 3x3 convolutions with
growing dilation (``context_dilations``) let each cell see its neighbourhood, and the logits are
upsampled bilinearly to the image size. Checkpoints written before these keys existed have Hu et
al.'s model (concat, no context convolutions). Words come from a vocabulary built on the training
expressions and stored in the config (hence in every checkpoint).

``backbone``: ``cnn`` (the default: the project's encoder, trained from scratch or from an encoder
of `clevr-remv pretrain`, with a frozen stem and attribute maps as in `clevr_remv.res.models.cnn_family`)
or ``resnet50`` / ``resnet101`` (a dilated ResNet, output stride 8, that takes a local ImageNet
checkpoint through `load_vision_weights`). ``RECIPES`` name config overrides: ``paper`` is the paper's
CNN-LSTM as far as the config goes (concat fusion, 1x1 head, cross-entropy only, no augmentation)
on the project's encoder; ``paper-resnet101`` the same on a dilated ResNet-101.
"""

import torch
from torch import nn
from torch.nn import functional as F

from clevr_remv.dataset.vocab import Vocabulary
from clevr_remv.res.models.cnn_family import CPU_RECIPES, CnnRES, load_pretrained, stem_options, vocabulary_size
from clevr_remv.res.models.registry import SIZES
from clevr_remv.res.models.resnet import OUT_CHANNELS, RESNET_BLOCKS, DilatedResNet, load_resnet_weights
from clevr_remv.res.models.text import WordTokenizer

ATTENTION = {"vision": False, "language": False, "cross_modal": False}
DEFAULT_LR = 1e-3
DICE_WEIGHT = 1.0
FUSIONS = ("product", "concat")
CONTEXT_DILATIONS = (1, 2, 4)  # a 15x15-cell view after fusion: a relation's two objects, "second from the left"
BACKBONES = ("cnn", *RESNET_BLOCKS)
_PAPER = {"fusion": "concat", "context_dilations": [], "dice_weight": 0.0, "augment": False}
RECIPES = {
    "default": {},
    "paper": _PAPER,
    "paper-resnet101": {**_PAPER, "backbone": "resnet101"},
    **CPU_RECIPES,
}

_SIZE_CONFIGS = {
    "tiny": {"channels": [16, 32, 64, 128], "word_dim": 64, "lstm_dim": 128, "head_dim": 128},
    "small": {"channels": [32, 64, 128, 256], "word_dim": 128, "lstm_dim": 256, "head_dim": 256},
    "base": {"channels": [64, 128, 256, 512], "word_dim": 300, "lstm_dim": 1024, "head_dim": 512},
}


def default_config(size: str = "tiny") -> dict:
    """The baseline's config for ``size``; ``vocabulary`` is filled by `prepare_config`."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}")
    return {
        "model": "baseline",
        "size": size,
        "max_tokens": 20,
        "class_weights": [0.9, 1.1],
        "dice_weight": DICE_WEIGHT,
        "augment": True,
        "fusion": "product",
        "context_dilations": list(CONTEXT_DILATIONS),
        "attention": ATTENTION,
        "backbone": "cnn",
        "frozen_stages": 0,
        "attribute_maps": False,
        "vocabulary": None,
        **_SIZE_CONFIGS[size],
    }


def vision_backbone(config: dict) -> str:
    """The backbone that takes --vision-weights: the project's CNN (an encoder of `clevr-remv
    pretrain`) or a ResNet (a local ImageNet checkpoint)."""
    return config.get("backbone", "cnn")


def load_vision_weights(model: "BaselineRES", path) -> dict:
    """Load a `pretrain` encoder into the CNN, or a local ImageNet ResNet checkpoint (torchvision
    names) into a ResNet backbone."""
    if isinstance(model.encoder, DilatedResNet):
        return load_resnet_weights(model.encoder, path)
    return load_pretrained(model, path)


def prepare_config(config: dict, train_texts) -> dict:
    """The config with the vocabulary of the training expressions."""
    return {**config, "vocabulary": Vocabulary.build(train_texts).words}


def build_tokenizer(config: dict) -> WordTokenizer:
    return WordTokenizer(config["vocabulary"], config["max_tokens"])


def build_model(config: dict) -> "BaselineRES":
    return BaselineRES(
        vocabulary_size=vocabulary_size(config),
        channels=config["channels"],
        word_dim=config["word_dim"],
        lstm_dim=config["lstm_dim"],
        head_dim=config["head_dim"],
        fusion=config.get("fusion", "concat"),
        context_dilations=config.get("context_dilations", []),
        backbone=config.get("backbone", "cnn"),
        **stem_options(config),
    )


def spatial_coordinates(height: int, width: int, device=None) -> torch.Tensor:
    """(8, H, W): per cell x_min, y_min, x_max, y_max, x_centre, y_centre in [-1, 1], 1/W, 1/H."""
    xs = torch.arange(width, device=device, dtype=torch.float32)
    ys = torch.arange(height, device=device, dtype=torch.float32)
    x_min, x_max = xs / width * 2 - 1, (xs + 1) / width * 2 - 1
    y_min, y_max = ys / height * 2 - 1, (ys + 1) / height * 2 - 1
    y_lo, x_lo = torch.meshgrid(y_min, x_min, indexing="ij")
    y_hi, x_hi = torch.meshgrid(y_max, x_max, indexing="ij")
    return torch.stack(
        [
            x_lo,
            y_lo,
            x_hi,
            y_hi,
            (x_lo + x_hi) / 2,
            (y_lo + y_hi) / 2,
            torch.full_like(x_lo, 1.0 / width),
            torch.full_like(x_lo, 1.0 / height),
        ]
    )


def _context_layer(channels: int, dilation: int) -> tuple:
    """A dilated 3x3 conv with BN and ReLU, keeping the map's size."""
    return (
        nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


class BaselineRES(CnnRES):
    """CNN image features and coordinates (and the attribute maps, with ``attribute_maps``), fused
    with the LSTM's sentence vector (product or concat) -> dilated 3x3 context convs (none: Hu et
    al.'s pointwise head) -> 2-class logits."""

    def __init__(
        self,
        vocabulary_size,
        channels,
        word_dim,
        lstm_dim,
        head_dim,
        fusion="product",
        context_dilations=(),
        backbone="cnn",
        frozen_stages=0,
        attribute_classes=None,
    ):
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}")
        if backbone != "cnn" and (frozen_stages or attribute_classes):
            raise ValueError("frozen_stages and attribute maps need the project's CNN backbone")
        super().__init__(channels, frozen_stages, attribute_classes)
        self.fusion = fusion
        if backbone != "cnn":
            self.encoder = DilatedResNet(backbone)
        visual_channels = (channels[-1] if backbone == "cnn" else OUT_CHANNELS) + self.attribute_channels
        self.embedding = nn.Embedding(vocabulary_size, word_dim, padding_idx=0)
        self.lstm = nn.LSTM(word_dim, lstm_dim, batch_first=True)
        if fusion == "product":
            self.visual = nn.Conv2d(visual_channels + 8, head_dim, 1)
            self.language = nn.Linear(lstm_dim, head_dim)
            fuse = []
        else:  # concat; in the head, where checkpoints of Hu et al.'s model keep it
            fuse = [nn.Conv2d(visual_channels + lstm_dim + 8, head_dim, 1), nn.ReLU(inplace=True)]
        self.head = nn.Sequential(
            *fuse,
            *[layer for dilation in context_dilations for layer in _context_layer(head_dim, dilation)],
            nn.Conv2d(head_dim, 2, 1),
        )

    def sentence_vector(self, tokens, token_mask):
        """(B, lstm_dim): the mean of the LSTM's outputs over the real tokens (product fusion), or
        its hidden state after the last real token (concat fusion)."""
        lengths = token_mask.sum(1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, (hidden, _) = self.lstm(packed)
        if self.fusion == "concat":
            return hidden[-1]
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=tokens.shape[1])
        return (outputs * token_mask[..., None]).sum(1) / lengths[:, None]

    def from_stem(self, stem, attributes, tokens, token_mask, size):
        features = self.trainable_stages(stem)
        if attributes is not None:
            features = torch.cat([features, attributes], dim=1)
        batch, _, height, width = features.shape
        coordinates = spatial_coordinates(height, width, features.device).expand(batch, -1, -1, -1)
        sentence = self.sentence_vector(tokens, token_mask)
        if self.fusion == "product":
            visual = F.relu(self.visual(torch.cat([features, coordinates], dim=1)))
            fused = visual * self.language(sentence)[:, :, None, None]
        else:
            tiled = F.normalize(sentence, dim=1)[:, :, None, None].expand(-1, -1, height, width)
            fused = torch.cat([features, tiled, coordinates], dim=1)
        logits = self.head(fused)
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
