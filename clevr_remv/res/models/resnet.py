"""A dilated ResNet-50 / ResNet-101 image encoder (output stride 8, as DeepLab's), whose parameter
names follow torchvision's ``resnet50`` / ``resnet101``, so an ImageNet checkpoint saved from
torchvision (or timm's ResNets, which share the names) loads into it as it is.

Stages 3 and 4 keep the stride-8 resolution and dilate their 3x3 convolutions by 2 and 4 instead.
"""

from torch import nn

from clevr_remv.errors import ClevrRemvError
from clevr_remv.res.models.vision_weights import normalise_keys, read_state_dict

RESNET_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
OUT_CHANNELS = 2048
MIN_LOADED_FRACTION = 0.5  # a checkpoint filling less of the encoder than this is refused


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided or dilated), 1x1 expand (x4), with a projected shortcut when needed."""

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        out_channels = width * 4
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.relu(self.bn3(self.conv3(x)) + shortcut)


class DilatedResNet(nn.Module):
    """Stem (7x7 stride 2, max-pool) and four bottleneck stages; (B, 3, H, W) -> (B, 2048, H/8, W/8)."""

    def __init__(self, name: str = "resnet101"):
        super().__init__()
        if name not in RESNET_BLOCKS:
            raise ValueError(f"backbone must be one of {', '.join(RESNET_BLOCKS)}, not {name!r}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = 64
        # (width, stride, dilation) per stage: strides 1, 2, then dilation in place of stride
        for index, (blocks, (width, stride, dilation)) in enumerate(
            zip(RESNET_BLOCKS[name], [(64, 1, 1), (128, 2, 1), (256, 1, 2), (512, 1, 4)], strict=True), start=1
        ):
            layers = [Bottleneck(in_channels, width, stride, dilation)]
            layers += [Bottleneck(width * 4, width, 1, dilation) for _ in range(blocks - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*layers))
            in_channels = width * 4

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def load_resnet_weights(encoder: DilatedResNet, path) -> dict:
    """Copy the matching tensors of the ResNet checkpoint ``path`` (torchvision names; wrappers and
    ``module.`` / ``backbone.`` / ``encoder.`` prefixes allowed) into ``encoder``.

    Returns a report (``loaded``, ``missing``, ``unexpected``, ``shape_mismatch``); the classifier
    (``fc.*``) is expected to be unused. Raises ClevrRemvError when less than half of the encoder's
    tensors would be filled: the file is not a matching ResNet.
    """
    source = normalise_keys(read_state_dict(path))
    target = encoder.state_dict()
    loaded = {key: value for key, value in source.items() if key in target and value.shape == target[key].shape}
    mismatched = [
        f"{key}: file {tuple(value.shape)}, model {tuple(target[key].shape)}"
        for key, value in source.items()
        if key in target and value.shape != target[key].shape
    ]
    if len(loaded) < len(target) * MIN_LOADED_FRACTION:
        raise ClevrRemvError(
            f"--vision-weights {path}: only {len(loaded)} of the encoder's {len(target)} tensors "
            f"match (first keys in the file: {sorted(source)[:3]}); pass a torchvision-layout "
            "ImageNet checkpoint of the recipe's ResNet (resnet50 / resnet101)"
        )
    encoder.load_state_dict(loaded, strict=False)
    return {
        "path": str(path),
        "loaded": len(loaded),
        "missing": sorted(key for key in target if key not in loaded),
        "unexpected": sorted(key for key in source if key not in target),
        "shape_mismatch": mismatched,
    }
