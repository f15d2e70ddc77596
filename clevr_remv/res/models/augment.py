"""Training augmentation that keeps image, mask and words aligned (a ``ClevrRemvDataset`` transform).

- a horizontal flip of image and mask with "left" and "right" swapped in the expression (half the
  samples): the mirrored scene is a valid CLEVR scene, its left/right relations and "from the
  left" orderings mirrored with it; colours, shapes, sizes, materials and front/behind keep;
- a shift of image and mask by up to ``max_shift`` pixels each way (edges repeated in the image,
  background in the mask), which keeps every relation.

Randomness comes from torch's generator, which ``benchmark`` seeds per epoch.
"""

import re

import torch
from torch.nn import functional as F

MIRRORED = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}
_SIDE = re.compile(r"\b(?:left|right|Left|Right)\b")


def mirror_text(text: str) -> str:
    """``text`` with "left" and "right" swapped."""
    return _SIDE.sub(lambda match: MIRRORED[match.group(0)], text)


class FlipAndShift:
    """Random mirror (with the words) and shift of a sample's ``image``, ``mask`` and ``text``."""

    def __init__(self, max_shift: int = 8):
        self.max_shift = max_shift

    def __call__(self, sample: dict) -> dict:
        image, mask, text = sample["image"], sample["mask"], sample["text"]
        if torch.rand(()) < 0.5:
            image, mask, text = image.flip(-1), mask.flip(-1), mirror_text(text)
        if self.max_shift:
            image, mask = self._shift(image, mask)
        return {**sample, "image": image, "mask": mask, "text": text}

    def _shift(self, image, mask):
        dx, dy = (int(v) for v in torch.randint(0, 2 * self.max_shift + 1, (2,)))
        return translate(image, self.max_shift, dx, dy), translate(mask, self.max_shift, dx, dy)


def translate(x, pad: int, dx: int, dy: int):
    """``x`` (C, H, W) float or (H, W) mask moved by (pad - dx, pad - dy) pixels: padded by ``pad``
    on every side (edges repeated for floats, zeros for masks), then cropped at (dx, dy)."""
    height, width = x.shape[-2:]
    if x.is_floating_point():
        padded = F.pad(x[None], (pad, pad, pad, pad), mode="replicate")[0]
    else:
        padded = F.pad(x, (pad, pad, pad, pad))
    return padded[..., dy : dy + height, dx : dx + width].contiguous()


class ConstantImage:
    """The blind baseline's input (VQA's "no image" control): every image replaced by mid-grey, the
    mask and words kept, so that a model trained and tested on it learns only what the words and
    the dataset's priors (where referents tend to lie, how large they are) tell."""

    def __call__(self, sample: dict) -> dict:
        return {**sample, "image": torch.full_like(sample["image"], 0.5)}
