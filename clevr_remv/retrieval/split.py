"""One retrieval split: images + captions + the image of each caption."""

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class RetrievalSplit:
    """``images``: (N, D) float features or (N, H, W, 3) uint8 pixels; ``caption_image[j]`` is the
    row of ``images`` that caption ``j`` describes (an image may have no caption: a distractor)."""

    name: str
    images: np.ndarray
    captions: list
    caption_image: np.ndarray

    @property
    def image_kind(self) -> str:
        return "features" if self.images.ndim == 2 else "pixels"

    def image_batch(self, rows) -> torch.Tensor:
        """Images ``rows`` as a tensor: float32 features or uint8 pixels."""
        batch = np.asarray(self.images[np.asarray(rows)])
        return torch.from_numpy(batch.astype(np.float32) if self.image_kind == "features" else batch)
