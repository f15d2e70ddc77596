"""The page's image layers as PNG bytes: a referent outline, every instance mask in its own
colour, a predicted mask, and depth as a colour map. Overlays are RGBA, transparent where empty,
at the view's native size, so the page stacks them over the RGB view."""

import io

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex
from PIL import Image

OUTLINE_RGBA = (255, 230, 0, 255)  # the yellow of `show`
PREDICTION_RGBA = (255, 40, 200, 150)  # translucent magenta, so the ground-truth outline shows through
INSTANCE_ALPHA = 150
INSTANCE_COLORMAP = "tab10"
DEPTH_COLORMAP = "magma"
DEPTH_EMPTY = (0, 65535)  # counts that mark "no depth" (background, saturation)
DEPTH_FARTHEST = 0.15  # colour-map position of the farthest pixel (0 is black: no depth)


def png_bytes(array: np.ndarray) -> bytes:
    """Encode an (H, W, 3|4) uint8 array as PNG (fast compression: it is sent, not stored)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _shifted_all(mask: np.ndarray, combine) -> np.ndarray:
    """``combine`` of the mask with its four one-pixel shifts (edges padded with False)."""
    padded = np.pad(mask, 1)
    result = mask.copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        result = combine(result, padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]])
    return result


def outline(mask: np.ndarray) -> np.ndarray:
    """The boundary of a boolean mask, two pixels wide (one inside, one outside the mask)."""
    mask = np.asarray(mask, bool)
    return _shifted_all(mask, np.logical_or) & ~_shifted_all(mask, np.logical_and)


def outline_png(mask: np.ndarray) -> bytes:
    """An RGBA layer with the outline of ``mask`` in yellow."""
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[outline(mask)] = OUTLINE_RGBA
    return png_bytes(layer)


def instance_colors(count: int) -> list:
    """Distinct colours ("#rrggbb") of objects 1..count, in the order of the scene's objects."""
    colormap = colormaps[INSTANCE_COLORMAP]
    return [to_hex(colormap(k % colormap.N)) for k in range(count)]


def instances_png(index: np.ndarray, count: int) -> bytes:
    """An RGBA layer painting each object k of an index mask in ``instance_colors(count)[k - 1]``."""
    palette = np.zeros((256, 4), np.uint8)
    for k, color in enumerate(instance_colors(count), 1):
        palette[k] = (*(int(color[i : i + 2], 16) for i in (1, 3, 5)), INSTANCE_ALPHA)
    return png_bytes(palette[index])


def prediction_png(mask: np.ndarray) -> bytes:
    """An RGBA layer filling the predicted mask in translucent cyan."""
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[np.asarray(mask, bool)] = PREDICTION_RGBA
    return png_bytes(layer)


def depth_png(depth: np.ndarray) -> bytes:
    """Depth counts as an RGB colour map, near bright and far dark, stretched over the view's
    range; pixels without depth are black."""
    depth = np.asarray(depth, np.float64)
    if depth.ndim == 3:
        depth = depth[..., 0]
    valid = ~np.isin(depth, DEPTH_EMPTY)
    rgb = np.zeros((*depth.shape, 3), np.uint8)
    if valid.any():
        near, far = depth[valid].min(), depth[valid].max()
        nearness = (far - depth[valid]) / (far - near) if far > near else np.ones(int(valid.sum()))
        shade = DEPTH_FARTHEST + (1 - DEPTH_FARTHEST) * nearness
        rgb[valid] = (colormaps[DEPTH_COLORMAP](shade)[:, :3] * 255).round().astype(np.uint8)
    return png_bytes(rgb)
