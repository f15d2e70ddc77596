"""DenseCRF refinement of test predictions (optional package pydensecrf2) and predict()'s refine hook."""

import importlib.util
import sys

import numpy as np
import pytest
import torch

from clevr_remv.errors import ClevrRemvError
from clevr_remv.res.benchmark import run_benchmark
from clevr_remv.res.models import densecrf
from clevr_remv.res.models.training import predict

HAVE_CRF = importlib.util.find_spec("pydensecrf") is not None

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class FixedLogits(torch.nn.Module):
    """A "model" whose logits favour the referent in the left half of the image."""

    def forward(self, image, tokens, token_mask):
        logits = torch.zeros(image.shape[0], 2, *image.shape[-2:])
        logits[:, 1, :, : image.shape[-1] // 2] = 2.0
        return logits


def test_predict_hands_images_and_probabilities_to_refine():
    seen = []

    def refine(image, probability):
        seen.append((image.dtype, image.shape, probability.shape, float(probability.sum(0).mean())))
        return np.ones(image.shape[:2], bool)

    batch = {
        "image": torch.rand(2, 3, 8, 12),
        "mask": torch.zeros(2, 8, 12, dtype=torch.bool),
        "text": ["a", "b"],
        "scene": [0, 0],
        "expression_id": [0, 1],
        "view": [(1, 1), (1, 1)],
    }
    tokenizer = lambda texts: (torch.ones(len(texts), 2, dtype=torch.long),) * 2  # noqa: E731
    plain = [p for *_, p, _ in predict(FixedLogits(), [batch], tokenizer, "cpu", progress=False)]
    refined = [p for *_, p, _ in predict(FixedLogits(), [batch], tokenizer, "cpu", progress=False, refine=refine)]
    assert plain[0][:, :6].all() and not plain[0][:, 6:].any()
    assert all(p.all() for p in refined)
    assert seen == [(np.uint8, (8, 12, 3), (2, 8, 12), pytest.approx(1.0))] * 2


def test_without_the_package_densecrf_is_refused_before_training(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(ClevrRemvError, match="--densecrf: needs the pydensecrf2 package; pip install pydensecrf2"):
        run_benchmark(tiny_dataset, "baseline", tmp_path / "out", epochs=1, densecrf=True, workers=0)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not HAVE_CRF, reason="needs pydensecrf2 (pip install pydensecrf2)")
def test_densecrf_snaps_a_spilled_mask_to_the_object_edges():
    image = np.full((32, 48, 3), 40, np.uint8)
    image[8:24, 10:30] = (200, 60, 60)  # the object
    probability = np.full((2, 32, 48), 0.1, np.float32)
    probability[1, 5:27, 7:33] = 0.6  # a 3-pixel spill around it
    probability[1, 8:24, 10:30] = 0.9
    probability[0] = 1 - probability[1]
    mask = densecrf.refine(image, probability)
    assert (probability[1] > 0.5).sum() == 22 * 26
    assert mask[8:24, 10:30].all() and mask.sum() < (probability[1] > 0.5).sum()
    assert mask[5:8].sum() + mask[24:27].sum() < 10


@pytest.mark.skipif(not HAVE_CRF, reason="needs pydensecrf2 (pip install pydensecrf2)")
def test_benchmark_with_densecrf_says_so_in_its_results(tiny_dataset, tmp_path):
    results = run_benchmark(tiny_dataset, "baseline", tmp_path / "out", epochs=1, densecrf=True, workers=0)
    assert results["benchmark"]["densecrf"] is True and results["missing_predictions"] == 0
