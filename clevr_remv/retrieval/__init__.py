"""Image-text retrieval: VSE++'s sum- and max-of-hinges losses vs the IMC loss (paper chapter 5).

A torch-only subpackage (install the ``torch`` extra). Modules, one job each:
``losses`` (SH, MH, IMC), ``model`` (two-branch embedding network and its token batches),
``split`` (images + captions), ``data`` (precomputed features; either format),
``remv`` (CLEVR-REMV centre views), ``synthetic`` (a learnable
toy precomputed set), ``evaluation`` (R@K, median rank, R-sum, 5-fold), ``checkpoint``,
``train``, ``ablation`` and ``cli`` (``clevr-remv retrieval ...``).
"""
