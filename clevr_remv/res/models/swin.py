"""Swin Transformer building blocks (Liu et al., 2021) for images of any size.

Feature maps are padded to whole windows (and to even sizes before patch merging), so any H x W
works; a window never exceeds the feature map. Parameter names follow the published Swin
checkpoints (``patch_embed.proj``, ``blocks.N.attn.qkv``, ``downsample.reduction``...) so their
weights load by name (see `clevr_remv.res.models.vision_weights`).
"""

import functools

import torch
from torch import nn
from torch.nn import functional as F

SWIN_SIZES = {
    "tiny": {"embed_dim": 96, "depths": [2, 2, 6, 2], "heads": [3, 6, 12, 24], "window": 7, "drop_path": 0.2},
    "small": {"embed_dim": 96, "depths": [2, 2, 18, 2], "heads": [3, 6, 12, 24], "window": 7, "drop_path": 0.3},
    "base": {"embed_dim": 128, "depths": [2, 2, 18, 2], "heads": [4, 8, 16, 32], "window": 12, "drop_path": 0.3},
}


def drop_path(x, probability: float, training: bool):
    """Stochastic depth: zero whole samples of a residual branch with ``probability``."""
    if probability == 0.0 or not training:
        return x
    keep = 1.0 - probability
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    return x * x.new_empty(shape).bernoulli_(keep) / keep


@functools.lru_cache(maxsize=64)
def relative_position_index(window: int, table_window: int) -> torch.Tensor:
    """(w*w, w*w) indices into a ((2T-1)^2)-row bias table for a window of ``window`` <= T."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    coords = coords.flatten(1)  # (2, w*w)
    delta = coords[:, :, None] - coords[:, None, :] + table_window - 1
    return delta[0] * (2 * table_window - 1) + delta[1]


@functools.lru_cache(maxsize=64)
def shifted_window_mask(height: int, width: int, window: int, shift: int, device) -> torch.Tensor:
    """(windows, w*w, w*w) additive mask that keeps the attention of a cyclically shifted map
    inside the regions that were neighbours before the shift."""
    regions = torch.zeros(height, width, device=device)
    label = 0
    for rows in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for columns in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            regions[rows, columns] = label
            label += 1
    labels = window_partition(regions[None, :, :, None], window).flatten(1)  # (nW, w*w)
    different = labels[:, :, None] != labels[:, None, :]
    return torch.zeros_like(different, dtype=torch.float32).masked_fill(different, -100.0)


def window_partition(x, window: int):
    """(B, H, W, C) -> (B * H/w * W/w, w, w, C)."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, channels)


def window_merge(windows, window: int, height: int, width: int):
    """Inverse of `window_partition`."""
    batch = windows.shape[0] // ((height // window) * (width // window))
    x = windows.view(batch, height // window, width // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch, height, width, -1)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        self.heads = heads
        self.window = window
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x, mask=None):
        """x: (windows * B, w*w, C); mask: (windows, w*w, w*w) or None."""
        count, tokens, channels = x.shape
        window = int(round(tokens**0.5))
        qkv = self.qkv(x).view(count, tokens, 3, self.heads, channels // self.heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        attention = (query * self.scale) @ key.transpose(-2, -1)  # (count, heads, n, n)
        index = relative_position_index(window, self.window).to(x.device)
        bias = self.relative_position_bias_table[index.flatten()].view(tokens, tokens, -1)
        attention = attention + bias.permute(2, 0, 1)[None]
        if mask is not None:
            windows = mask.shape[0]
            attention = attention.view(count // windows, windows, self.heads, tokens, tokens)
            attention = (attention + mask[None, :, None]).view(count, self.heads, tokens, tokens)
        out = attention.softmax(-1) @ value
        return self.proj(out.transpose(1, 2).reshape(count, tokens, channels))


class SwinBlock(nn.Module):
    """(Shifted-)window attention and an MLP, each in a pre-norm residual branch."""

    def __init__(self, dim: int, heads: int, window: int, shifted: bool, drop_path_rate: float, mlp_ratio: float = 4.0):
        super().__init__()
        self.window = window
        self.shifted = shifted
        self.drop_path_rate = drop_path_rate
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, int(dim * mlp_ratio)))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("fc2", nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x, height: int, width: int):
        """x: (B, H*W, C)."""
        batch, _, channels = x.shape
        window = min(self.window, max(height, width))
        padded_h = -(-height // window) * window
        padded_w = -(-width // window) * window
        shift = window // 2 if self.shifted and max(padded_h, padded_w) > window else 0
        y = self.norm1(x).view(batch, height, width, channels)
        y = F.pad(y, (0, 0, 0, padded_w - width, 0, padded_h - height))
        mask = None
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(padded_h, padded_w, window, shift, x.device)
        windows = window_partition(y, window).reshape(-1, window * window, channels)
        y = window_merge(self.attn(windows, mask), window, padded_h, padded_w)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        y = y[:, :height, :width].reshape(batch, height * width, channels)
        x = x + drop_path(y, self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)


class PatchEmbed(nn.Module):
    """4x4 patches -> ``dim`` channels (a strided conv), then LayerNorm."""

    def __init__(self, dim: int, patch: int = 4):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, image):
        """image: (B, 3, H, W) -> tokens (B, h*w, C), h, w."""
        height, width = image.shape[-2:]
        image = F.pad(image, (0, -width % self.patch, 0, -height % self.patch))
        x = self.proj(image)
        height, width = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), height, width


class PatchMerging(nn.Module):
    """Halve the resolution and double the channels: 2x2 neighbours concatenated, LayerNorm, linear."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x, height: int, width: int):
        batch, _, channels = x.shape
        x = x.view(batch, height, width, channels)
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        height, width = x.shape[1:3]
        return self.reduction(self.norm(x.view(batch, -1, 4 * channels))), height, width


def reference_init(module: nn.Module) -> None:
    """Swin's own init of a backbone trained from scratch, as in the Swin and LAVT-RIS code: every
    Linear weight from a truncated normal (std 0.02) with a zero bias; LayerNorms weight 1, bias 0."""
    for part in module.modules():
        if isinstance(part, nn.Linear):
            nn.init.trunc_normal_(part.weight, std=0.02)
            if part.bias is not None:
                nn.init.zeros_(part.bias)
        elif isinstance(part, nn.LayerNorm):
            nn.init.ones_(part.weight)
            nn.init.zeros_(part.bias)


def stage_blocks(dim: int, depth: int, heads: int, window: int, drop_path_rates) -> nn.ModuleList:
    """``depth`` Swin blocks, alternating regular and shifted windows."""
    return nn.ModuleList(
        SwinBlock(dim, heads, window, shifted=i % 2 == 1, drop_path_rate=drop_path_rates[i]) for i in range(depth)
    )
