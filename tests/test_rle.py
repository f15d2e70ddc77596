"""COCO RLE: encoding to JSON-ready compressed counts, decoding every counts form."""

import json

import numpy as np
from pycocotools import mask as mask_utils

from clevr_remv.dataset.rle import mask_to_rle, rle_to_mask


def _mask():
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    mask[4, 0] = True
    return mask


def test_encode_round_trip():
    mask = _mask()
    rle = mask_to_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [5, 7]
    assert all(type(n) is int for n in rle["size"])
    assert json.loads(json.dumps(rle)) == rle
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert np.array_equal(decoded.astype(bool), mask)
    decoded = rle_to_mask(rle)
    assert decoded.dtype == bool and decoded.flags.c_contiguous and np.array_equal(decoded, mask)


def test_encode_accepts_array_likes():
    mask = _mask()
    expected = mask_to_rle(mask)
    assert mask_to_rle(mask.astype(np.uint8) * 255) == expected
    assert mask_to_rle(np.asfortranarray(mask)) == expected
    assert mask_to_rle(mask.tolist()) == expected


def test_decode_bytes_counts():
    mask = _mask()
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert isinstance(rle["counts"], bytes)
    assert np.array_equal(rle_to_mask(rle), mask)


def test_decode_uncompressed_list_counts():
    mask = _mask()
    column_major = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(column_major.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], changes, [column_major.size]])).tolist()
    decoded = rle_to_mask({"size": [5, 7], "counts": runs})
    assert decoded.dtype == bool and decoded.flags.c_contiguous and np.array_equal(decoded, mask)
    assert np.array_equal(rle_to_mask({"size": [2, 2], "counts": [0, 4]}), np.ones((2, 2), bool))
