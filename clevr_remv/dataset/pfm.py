"""PFM (portable float map) files: the float32 images the 4D Light Field Benchmark stores depth and
disparity in.

A greyscale PFM is the ASCII header ``Pf``, ``width height`` and a scale whose sign gives the byte
order (negative: little-endian), each followed by one whitespace byte, then the rows as float32,
bottom row first. (``PF`` is the three-channel variant.)
"""

import re
from pathlib import Path

import numpy as np

from clevr_remv.errors import ClevrRemvError

_HEADER = re.compile(rb"(P[fF])\s+(\d+)\s+(\d+)\s+([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s")


def write_pfm(path, image: np.ndarray) -> None:
    """Write a float32 greyscale PFM: header ``Pf``, width height, -1 (little-endian), then the
    rows bottom row first."""
    height, width = image.shape
    with open(path, "wb") as stream:
        stream.write(f"Pf\n{width} {height}\n-1\n".encode("ascii"))
        stream.write(np.ascontiguousarray(image[::-1], "<f4").tobytes())


def read_pfm(path) -> np.ndarray:
    """A greyscale PFM as float32 (height, width), top row first; ClevrRemvError naming the file
    when it is not one (a colour ``PF``, a broken header, too few or too many bytes)."""
    path = Path(path)
    raw = path.read_bytes()
    match = _HEADER.match(raw)
    if match is None:
        raise ClevrRemvError(
            f"{path}: not a PFM file (it must start with 'Pf', the width and height and "
            "a scale); write it as a greyscale float32 PFM"
        )
    kind, width, height, scale = match.groups()
    if kind == b"PF":
        raise ClevrRemvError(
            f"{path}: a three-channel PFM ('PF'); a disparity map has one channel, write it as a greyscale PFM ('Pf')"
        )
    width, height = int(width), int(height)
    data = raw[match.end() :]
    if len(data) != 4 * width * height:
        raise ClevrRemvError(
            f"{path}: the header says {width}x{height} float32 values ({4 * width * height} "
            f"bytes) but {len(data)} bytes follow it; write the file again"
        )
    dtype = "<f4" if float(scale) < 0 else ">f4"
    return np.frombuffer(data, dtype).reshape(height, width)[::-1].astype(np.float32)
