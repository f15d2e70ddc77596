"""Load a Swin checkpoint (official Swin, timm, or a detection / segmentation wrapper) into the
backbone of a model, mapping key names and reporting what did not fit.

Accepted files: ``torch.save`` pickles (a state dict, or one under ``model`` / ``state_dict``)
and ``.safetensors``. Key prefixes ``module.``, ``backbone.``, ``encoder.`` are stripped; timm's
layout (patch merging at the start of the next stage) is moved to the official one (end of the
stage); relative-position bias tables of another window size are resized bicubically.
"""

import re
from pathlib import Path

import torch
from torch.nn import functional as F

from clevr_remv.errors import ClevrRemvError

WRAPPER_KEYS = ("model", "state_dict", "module")
KEY_PREFIXES = ("module.", "backbone.", "encoder.")
RECOMPUTED_BUFFERS = ("relative_position_index", "attn_mask")
LANGUAGE_PATH = re.compile(r"^(layers\.\d+\.(fusion|gate)\.|out_norms\.)")
TIMM_DOWNSAMPLE = re.compile(r"^layers\.(\d+)\.downsample\.")


def read_state_dict(path) -> dict:
    """The tensors of a checkpoint file, unwrapped from a training checkpoint if needed."""
    path = Path(path)
    if not path.is_file():
        raise ClevrRemvError(
            f"--vision-weights {path}: no such file; pass a Swin checkpoint (.pth / .pt / .safetensors)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file is the user's input error
        raise ClevrRemvError(
            f"--vision-weights {path}: cannot be read ({error}); pass a PyTorch or safetensors Swin checkpoint"
        ) from error
    while isinstance(state, dict):
        wrapped = [key for key in WRAPPER_KEYS if isinstance(state.get(key), dict)]
        if not wrapped:
            break
        state = state[wrapped[0]]
    if not isinstance(state, dict):
        raise ClevrRemvError(f"--vision-weights {path}: holds no state dict")
    return {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}


def normalise_keys(state: dict) -> dict:
    """Strip wrapper prefixes, drop recomputed buffers, move timm's patch merging to the
    official place (``layers.i.downsample`` of timm is ``layers.(i-1).downsample``)."""
    renamed = {}
    for key, value in state.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in KEY_PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix) :], True
        if not key.endswith(RECOMPUTED_BUFFERS):
            renamed[key] = value
    stages = {int(m.group(1)) for key in renamed if (m := TIMM_DOWNSAMPLE.match(key))}
    if stages and 0 not in stages:
        renamed = {
            TIMM_DOWNSAMPLE.sub(lambda m: f"layers.{int(m.group(1)) - 1}.downsample.", key): value
            for key, value in renamed.items()
        }
    return renamed


def resize_bias_table(table: torch.Tensor, rows: int) -> torch.Tensor:
    """A ((2w-1)^2, heads) relative-position bias table resized to ``rows`` = (2W-1)^2 rows."""
    old_side, new_side = int(round(table.shape[0] ** 0.5)), int(round(rows**0.5))
    grid = table.T.reshape(1, table.shape[1], old_side, old_side)
    grid = F.interpolate(grid, size=(new_side, new_side), mode="bicubic", align_corners=False)
    return grid.reshape(table.shape[1], rows).T


def load_swin_weights(backbone, path) -> dict:
    """Copy the matching tensors of the Swin checkpoint ``path`` into ``backbone``.

    Returns a report: ``loaded`` (count), ``resized``, ``shape_mismatch``, ``unexpected`` (keys of
    the file not used), ``missing`` (vision keys of the backbone not in the file) and
    ``language_path`` (count of PWAM / gate / output-norm tensors, which Swin never has).
    Raises ClevrRemvError when nothing matches.
    """
    source = normalise_keys(read_state_dict(path))
    target = backbone.state_dict()
    loaded, resized, mismatched, unexpected = {}, [], [], []
    for key, value in source.items():
        if key not in target:
            unexpected.append(key)
        elif value.shape == target[key].shape:
            loaded[key] = value
        elif key.endswith("relative_position_bias_table") and value.shape[1] == target[key].shape[1]:
            loaded[key] = resize_bias_table(value.float(), target[key].shape[0])
            resized.append(key)
        else:
            mismatched.append(f"{key}: file {tuple(value.shape)}, model {tuple(target[key].shape)}")
    if not loaded:
        raise ClevrRemvError(
            f"--vision-weights {path}: no tensor matches the Swin backbone "
            f"(first keys in the file: {sorted(source)[:3]}); pass a Swin checkpoint"
        )
    backbone.load_state_dict(loaded, strict=False)
    language = [key for key in target if LANGUAGE_PATH.match(key)]
    missing = [key for key in target if key not in loaded and key not in language]
    return {
        "path": str(path),
        "loaded": len(loaded),
        "resized": resized,
        "shape_mismatch": mismatched,
        "unexpected": sorted(unexpected),
        "missing": missing,
        "language_path": len(language),
    }
