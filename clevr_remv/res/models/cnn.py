"""The project's convolutional image encoder, shared by the CNN-based RES models and `pretrain`.

Four stages of two 3x3 conv-BN-ReLU layers; the first conv of stages 1-3 has stride 2, so the
encoder's output stride is 8 (stage 2 ends at stride 4). Its parameters are named ``<stage>.<layer>``
(an ``nn.Sequential`` of ``nn.Sequential``), as in the checkpoints of the baseline.

A model may keep the first ``frozen_stages`` stages frozen (the stem): their weights do not train,
their batch norms keep their statistics, and `benchmark` can read their output from a cache
(`clevr_remv.res.feature_cache`) instead of computing it from the image.
"""

import torch
from torch import nn

from clevr_remv.errors import ClevrRemvError

SIZE_CHANNELS = {"tiny": [16, 32, 64, 128], "small": [32, 64, 128, 256], "base": [64, 128, 256, 512]}
STAGE_STRIDES = (2, 2, 2, 1)  # output stride 8 after four stages, 4 after two
ENCODER_FORMAT = "clevr-remv-cnn-encoder"


def conv_stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """A (strided) 3x3 conv then a 3x3 conv, each with BN and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def cnn_encoder(channels) -> nn.Sequential:
    """The four-stage encoder: (B, 3, H, W) normalised images -> (B, channels[-1], H/8, W/8)."""
    widths = [3, *channels]
    return nn.Sequential(
        *[conv_stage(a, b, stride) for a, b, stride in zip(widths[:-1], widths[1:], STAGE_STRIDES, strict=True)]
    )


def stem_stride(frozen_stages: int) -> int:
    """The output stride of the encoder's first ``frozen_stages`` stages."""
    stride = 1
    for step in STAGE_STRIDES[:frozen_stages]:
        stride *= step
    return stride


def freeze_stem(encoder: nn.Sequential, frozen_stages: int) -> None:
    """Stop the first ``frozen_stages`` stages from training (weights and batch-norm statistics)."""
    for stage in encoder[:frozen_stages]:
        stage.eval()
        for parameter in stage.parameters():
            parameter.requires_grad_(False)


def keep_stem_frozen(encoder: nn.Sequential, frozen_stages: int) -> None:
    """After ``model.train()``: put the frozen stages back in eval mode (their BN statistics stay)."""
    for stage in encoder[:frozen_stages]:
        stage.eval()


def encoder_document(encoder: nn.Sequential, heads: nn.Module, config: dict) -> dict:
    """The document `pretrain` writes to ``encoder.pt``: the encoder's and the attribute heads'
    weights and the config that built them (see `read_encoder_file`)."""
    return {
        "format": ENCODER_FORMAT,
        "config": config,
        "encoder": {key: value.detach().cpu().clone() for key, value in encoder.state_dict().items()},
        "heads": {key: value.detach().cpu().clone() for key, value in heads.state_dict().items()},
    }


def read_encoder_file(path) -> dict:
    """The document of an ``encoder.pt`` written by `clevr-remv pretrain`; ClevrRemvError when the
    file is not one."""
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file is the user's input error
        raise ClevrRemvError(
            f"--vision-weights {path}: cannot be read ({error}); pass the encoder.pt that `clevr-remv pretrain` wrote"
        ) from error
    if not isinstance(document, dict) or document.get("format") != ENCODER_FORMAT:
        raise ClevrRemvError(
            f"--vision-weights {path}: not an encoder written by `clevr-remv pretrain` (no format "
            f"{ENCODER_FORMAT!r}); pass P/encoder.pt of `clevr-remv pretrain --out P` (an ImageNet ResNet "
            "goes with the baseline's --recipe paper-resnet101, a Swin checkpoint with --model lavt)"
        )
    return document


def load_encoder_weights(encoder: nn.Sequential, path, channels) -> tuple:
    """Load the encoder of a `pretrain` file into ``encoder`` (a `cnn_encoder` of ``channels``).

    Returns:
        (the file's document, a report: path, loaded, missing, unexpected, shape_mismatch).
    """
    document = read_encoder_file(path)
    if list(document["config"]["channels"]) != list(channels):
        raise ClevrRemvError(
            f"--vision-weights {path}: the encoder has channels {document['config']['channels']}, the model "
            f"{list(channels)}; pretrain with the model's --size ({document['config'].get('size')} was used)"
        )
    target = encoder.state_dict()
    source = document["encoder"]
    loaded = {key: value for key, value in source.items() if key in target and value.shape == target[key].shape}
    encoder.load_state_dict(loaded, strict=False)
    report = {
        "path": str(path),
        "loaded": len(loaded),
        "missing": sorted(key for key in target if key not in loaded),
        "unexpected": sorted(key for key in source if key not in target),
        "shape_mismatch": sorted(key for key in source if key in target and source[key].shape != target[key].shape),
    }
    return document, report
