"""Per-cell object attributes: the targets of `clevr-remv pretrain` and the heads that predict them.

Every cell of the encoder's output grid (stride 8) is labelled with the colour, shape, material and
size of the object that covers most of its pixels in the index mask, or background (class 0).
The heads are 1x1 convolutions over the encoder's last feature map; their softmax probabilities
(`attribute_maps`) are what attribute-aware fusion gives the RES models beside the features.
"""

import torch
from torch import nn
from torch.nn import functional as F

ATTRIBUTES = ("color", "shape", "material", "size")
PROPERTY_KEYS = {"color": "colors", "shape": "shapes", "material": "materials", "size": "sizes"}


def attribute_classes(properties: dict) -> dict:
    """Attribute -> its class names, background first (``properties``: the dataset's properties.json)."""
    return {name: ["background", *sorted(properties[PROPERTY_KEYS[name]])] for name in ATTRIBUTES}


def attribute_channels(classes: dict) -> int:
    """The number of channels of `attribute_maps` (all classes of all attributes)."""
    return sum(len(names) for names in classes.values())


def object_table(objects: list, classes: dict) -> torch.Tensor:
    """(attributes, 1 + objects) int64: the class of each attribute of object k (index mask value k;
    column 0 is the background)."""
    table = torch.zeros(len(ATTRIBUTES), len(objects) + 1, dtype=torch.long)
    for k, obj in enumerate(objects, start=1):
        for row, name in enumerate(ATTRIBUTES):
            table[row, k] = classes[name].index(obj[name])
    return table


def cell_objects(index_masks: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, H/stride, W/stride): the index-mask value covering most pixels of each cell (ties go to
    the lower value, background first); ``index_masks`` (B, H, W) integers, H and W multiples of
    ``stride``."""
    count = int(index_masks.max()) + 1
    one_hot = F.one_hot(index_masks.long(), count).permute(0, 3, 1, 2).float()
    return F.avg_pool2d(one_hot, stride).argmax(1)


def cell_targets(index_masks: torch.Tensor, tables: list, stride: int) -> torch.Tensor:
    """(attributes, B, h, w) class targets of each cell from index masks and each sample's
    `object_table`."""
    objects = cell_objects(index_masks, stride)
    return torch.stack([table[:, cells] for table, cells in zip(tables, objects, strict=True)], dim=1)


class AttributeHeads(nn.Module):
    """One 1x1 convolution per attribute over a (B, C, h, w) feature map."""

    def __init__(self, in_channels: int, classes: dict):
        super().__init__()
        self.heads = nn.ModuleDict({name: nn.Conv2d(in_channels, len(classes[name]), 1) for name in ATTRIBUTES})

    def forward(self, features) -> dict:
        """Attribute -> logits (B, classes, h, w)."""
        return {name: head(features) for name, head in self.heads.items()}


def attribute_maps(logits: dict) -> torch.Tensor:
    """The heads' softmax probabilities, concatenated: (B, all classes, h, w)."""
    return torch.cat([logits[name].softmax(1) for name in ATTRIBUTES], dim=1)
