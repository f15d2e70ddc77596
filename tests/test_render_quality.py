"""PSNR over the whole image, the objects and the worst object (clevr_remv.generate.quality)."""

import math

import numpy as np
import pytest

from clevr_remv.generate.quality import dilate, psnr, view_quality


def test_psnr_follows_the_mean_squared_error():
    reference = np.full((4, 4, 3), 100, np.uint8)
    image = reference.copy()
    assert psnr(image, reference) == math.inf
    image[0, 0, 0] = 110  # squared error 100 on 1 of 48 values
    assert psnr(image, reference) == pytest.approx(10 * math.log10(255**2 / (100 / 48)))
    region = np.zeros((4, 4), bool)
    region[0, :2] = True  # 6 values, one of them wrong
    assert psnr(image, reference, region) == pytest.approx(10 * math.log10(255**2 / (100 / 6)))
    assert psnr(image, reference, ~region) == math.inf


def test_dilate_grows_a_mask_by_the_given_pixels():
    mask = np.zeros((11, 11), bool)
    mask[5, 5] = True
    grown = dilate(mask, 3)
    assert grown.sum() == 49 and grown[2:9, 2:9].all()
    assert dilate(mask, 1).sum() == 9


def test_objects_and_the_worst_object_ignore_the_background():
    index = np.zeros((40, 60), np.uint8)
    index[5:15, 5:15] = 1  # 100 px
    index[20:30, 30:40] = 2  # 100 px
    index[35:38, 55:58] = 3  # 9 px: too small to be judged alone
    reference = np.full((40, 60, 3), 128, np.uint8)
    image = reference.copy()
    image[0:3, 45:60] = 0  # background error, far from every object
    image[22, 32] = 138  # a small error on object 2
    quality = view_quality(image, reference, index)
    assert quality["whole"] < quality["objects"] < math.inf
    assert quality["worst_object"] == pytest.approx(psnr(image, reference, dilate(index == 2)))
    image[7, 7] = 168  # a bigger error on object 1 becomes the worst
    assert view_quality(image, reference, index)["worst_object"] == pytest.approx(
        psnr(image, reference, dilate(index == 1))
    )
    assert view_quality(image, reference, np.zeros_like(index)) == {
        "whole": psnr(image, reference),
        "objects": None,
        "worst_object": None,
    }
