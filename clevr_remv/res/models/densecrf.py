"""Optional DenseCRF refinement of a predicted mask (Krähenbühl and Koltun's fully connected CRF),
the post-processing step the paper reports its CNN-LSTM models with and without (Table 7.1).

Needs the ``pydensecrf2`` package (``pip install pydensecrf2``: a source distribution, so it
compiles, with a C++ compiler, on install; it provides the ``pydensecrf`` module). Unaries are the
model's softmax probabilities; the pairwise terms are a Gaussian smoothness kernel and a bilateral
(position + colour) appearance kernel, with mean-field inference.
"""

import numpy as np

from clevr_remv.errors import ClevrRemvError

GAUSSIAN = {"sxy": 3, "compat": 3}
BILATERAL = {"sxy": 20, "srgb": 3, "compat": 10}
ITERATIONS = 5


def _densecrf():
    try:
        import pydensecrf.densecrf as densecrf
    except ImportError as error:
        raise ClevrRemvError(
            "--densecrf: needs the pydensecrf2 package; pip install pydensecrf2 (it compiles "
            "on install: a C++ compiler is needed), or drop --densecrf"
        ) from error
    return densecrf


def check_available() -> None:
    """ClevrRemvError naming the package to install when DenseCRF cannot be imported."""
    _densecrf()


def refine(image: np.ndarray, probability: np.ndarray, iterations: int = ITERATIONS) -> np.ndarray:
    """The referent mask (bool (H, W)) after DenseCRF inference, from an RGB image (H, W, 3) uint8
    and the model's class probabilities (2, H, W) (background, referent)."""
    densecrf = _densecrf()
    height, width = image.shape[:2]
    probability = np.clip(np.asarray(probability, np.float32), 1e-6, 1.0)
    crf = densecrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(-np.log(probability).reshape(2, -1)))
    crf.addPairwiseGaussian(**GAUSSIAN)
    crf.addPairwiseBilateral(rgbim=np.ascontiguousarray(image, dtype=np.uint8), **BILATERAL)
    marginals = np.asarray(crf.inference(iterations)).reshape(2, height, width)
    return marginals[1] > marginals[0]
