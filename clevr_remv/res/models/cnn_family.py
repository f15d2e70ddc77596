"""What the RES models on the project's CNN encoder share (``baseline``, ``cmsa``, ``lavt-cnn``).

- The encoder (`clevr_remv.res.models.cnn`), of which the first ``frozen_stages`` stages (the stem)
  may stay frozen; `forward` runs the stem on the image and hands its output to the model's
  `from_stem`, which `benchmark` also calls directly with stem features read from the feature
  cache (`clevr_remv.res.feature_cache`).
- Optionally (``attribute_maps``) the attribute predictions of the pretrained encoder: a frozen copy
  of its stages after the stem and its attribute heads (`AttributeBranch`) turns the stem's output
  into per-cell probabilities of colour, shape, material and size (19 channels at stride 8), which
  the model fuses with language beside its own features.
- Loading an ``encoder.pt`` of `clevr-remv pretrain` into the encoder and the attribute branch
  (`load_pretrained`), with a load report.
- The config keys and registry functions that ``cmsa`` and ``lavt-cnn`` share (`family_config`,
  `vision_backbone`, `load_vision_weights`, `stem_options`, `vocabulary_size`).

Configs written before these keys existed have neither (``frozen_stages`` 0, no attribute maps).
"""

import torch
from torch import nn

from clevr_remv.errors import ClevrRemvError
from clevr_remv.res.models.attributes import AttributeHeads, attribute_channels, attribute_maps
from clevr_remv.res.models.cnn import SIZE_CHANNELS, cnn_encoder, freeze_stem, keep_stem_frozen, load_encoder_weights
from clevr_remv.res.models.imagenet import ImageNetNormalize
from clevr_remv.res.models.registry import SIZES

# Recipes of every model on the CNN encoder (they need --vision-weights: an encoder of `pretrain`).
CPU_RECIPES = {
    "frozen-stem": {"frozen_stages": 2},
    "frozen-stem-attributes": {"frozen_stages": 2, "attribute_maps": True},
}


class AttributeBranch(nn.Module):
    """A frozen copy of the pretrained encoder's stages after the stem and of its attribute heads:
    stem features -> attribute probabilities (B, 19, H/8, W/8)."""

    def __init__(self, channels, frozen_stages: int, classes: dict):
        super().__init__()
        self.stages = cnn_encoder(channels)[frozen_stages:]
        self.heads = AttributeHeads(channels[-1], classes)
        self.channels = attribute_channels(classes)
        self.requires_grad_(False)

    def train(self, mode: bool = True):
        return super().train(False)  # always in eval mode: batch-norm statistics stay

    def forward(self, stem):
        return attribute_maps(self.heads(self.stages(stem)))

    def load(self, document: dict) -> tuple:
        """Fill the stages and heads from an encoder file's document; (loaded, missing) key lists."""
        stage_state, heads_state = self.stages.state_dict(), self.heads.state_dict()
        loaded, missing = [], []
        for key in stage_state:  # a slice of nn.Sequential keeps the encoder's stage numbers
            if key in document["encoder"] and document["encoder"][key].shape == stage_state[key].shape:
                stage_state[key] = document["encoder"][key]
                loaded.append(f"attribute_branch.stages.{key}")
            else:
                missing.append(f"attribute_branch.stages.{key}")
        for key in heads_state:
            if key in document["heads"] and document["heads"][key].shape == heads_state[key].shape:
                heads_state[key] = document["heads"][key]
                loaded.append(f"attribute_branch.heads.{key}")
            else:
                missing.append(f"attribute_branch.heads.{key}")
        self.stages.load_state_dict(stage_state)
        self.heads.load_state_dict(heads_state)
        return loaded, missing


class CnnRES(nn.Module):
    """Base class: the CNN encoder with a frozen stem and optional attribute maps. Subclasses
    implement `from_stem`."""

    def __init__(self, channels, frozen_stages: int = 0, attribute_classes=None):
        super().__init__()
        if not 0 <= frozen_stages < len(channels):
            raise ValueError(f"frozen_stages must be 0 to {len(channels) - 1}, not {frozen_stages}")
        self.normalize = ImageNetNormalize()
        self.channels = list(channels)
        self.encoder = cnn_encoder(channels)
        self.frozen_stages = frozen_stages
        freeze_stem(self.encoder, frozen_stages)
        self.attribute_branch = (
            AttributeBranch(channels, frozen_stages, attribute_classes) if attribute_classes else None
        )

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_stages:
            keep_stem_frozen(self.encoder, self.frozen_stages)
        return self

    @property
    def attribute_channels(self) -> int:
        """Channels of the attribute maps the model fuses (0 without them)."""
        return 0 if self.attribute_branch is None else self.attribute_branch.channels

    def stem(self, image):
        """The frozen stages' output for images (B, 3, H, W) in [0, 1] (the normalised image when
        nothing is frozen)."""
        image = self.normalize(image)
        return self.encoder[: self.frozen_stages](image) if self.frozen_stages else image

    def attributes(self, stem):
        """The attribute maps of the stem's output, or None for a model without them."""
        if self.attribute_branch is None:
            return None
        with torch.no_grad():
            return self.attribute_branch(stem)

    def trainable_stages(self, stem):
        """The encoder's stages after the stem."""
        return self.encoder[self.frozen_stages :](stem) if self.frozen_stages else self.encoder(stem)

    def forward(self, image, tokens, token_mask):
        stem = self.stem(image)
        return self.from_stem(stem, self.attributes(stem), tokens, token_mask, image.shape[-2:])

    def from_stem(self, stem, attributes, tokens, token_mask, size):
        """2-class logits (B, 2, *size) from the stem's output, the attribute maps (or None) and the
        tokens."""
        raise NotImplementedError


def load_pretrained(model: CnnRES, path) -> dict:
    """Load an ``encoder.pt`` of `clevr-remv pretrain` into ``model``'s encoder and attribute branch;
    returns the load report (loaded, missing, unexpected, shape_mismatch)."""
    if not isinstance(model, CnnRES):
        raise ClevrRemvError(
            f"--vision-weights {path}: an encoder of `clevr-remv pretrain` fits the project's CNN encoder "
            "only, not this model's backbone"
        )
    document, report = load_encoder_weights(model.encoder, path, model.channels)
    report["missing"] = [f"encoder.{key}" for key in report["missing"]]
    if model.attribute_branch is not None:
        loaded, missing = model.attribute_branch.load(document)
        report["loaded"] += len(loaded)
        report["missing"] += missing
    return report


def requires_pretrained(config: dict) -> str:
    """Why ``config`` cannot train without ``--vision-weights`` (a frozen stem or attribute maps), or ''."""
    reasons = []
    if config.get("frozen_stages"):
        reasons.append(f"its first {config['frozen_stages']} encoder stages are frozen (frozen_stages)")
    if config.get("attribute_maps"):
        reasons.append("it fuses the pretrained attribute heads' predictions (attribute_maps)")
    return " and ".join(reasons)


def family_config(model: str, size: str, size_configs: dict, attention: dict) -> dict:
    """The config of a model on the CNN encoder for ``size``: the keys every such model has (the
    baseline's training recipe, no frozen stem, no attribute maps), then ``size_configs[size]``;
    ``vocabulary`` is filled by ``prepare_config``."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}")
    return {
        "model": model,
        "size": size,
        "max_tokens": 20,
        "class_weights": [0.9, 1.1],
        "dice_weight": 1.0,
        "augment": True,
        "channels": SIZE_CHANNELS[size],
        "frozen_stages": 0,
        "attribute_maps": False,
        "attention": attention,
        "vocabulary": None,
        **size_configs[size],
    }


def vocabulary_size(config: dict) -> int:
    """The number of words in the config's vocabulary (refused before ``prepare_config`` filled it)."""
    if not config.get("vocabulary"):
        raise ValueError(f"the {config.get('model', 'model')} config has no vocabulary; call prepare_config first")
    return len(config["vocabulary"])


def stem_options(config: dict) -> dict:
    """The `CnnRES` arguments a config sets: ``frozen_stages`` and, with ``attribute_maps``, the
    pretrained heads' ``attribute_classes``."""
    return {
        "frozen_stages": config.get("frozen_stages", 0),
        "attribute_classes": config.get("attribute_classes") if config.get("attribute_maps") else None,
    }


def vision_backbone(config: dict) -> str:
    """The backbone that takes ``--vision-weights``: the CNN encoder (an encoder of `clevr-remv pretrain`)."""
    return "cnn"


def load_vision_weights(model: CnnRES, path) -> dict:
    """Load an encoder of `clevr-remv pretrain` (`load_pretrained`)."""
    return load_pretrained(model, path)
