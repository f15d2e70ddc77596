"""Ranking losses on a batch of matching image / text embeddings (row n of each is a pair).

* ``sh_loss`` / ``mh_loss``: VSE++'s sum-of-hinges and max-of-hinges on the cosine similarity of
  L2-normalised embeddings, in both directions (image -> texts, text -> images), summed over the batch.
  MH sums each query's hardest negative, as VSE++'s and the IMC authors' code do; the paper's eq.
  5.2 / 5.3 print one max over all (n, m), a single hinge per direction for the whole batch.
* ``imc_loss``: MH plus the intra-modal constraint (IMC) on the images and on the texts.

The intra-modal constraint, for one modality X (rows L2-normalised) of a batch of B rows::

    IMC(X) = lam / B * sum over ordered pairs n != m with mu_down < dist(x_n, x_m) < mu_up
                          of (1 - dist(x_n, x_m))

Minimising it increases the distance of every same-modality negative pair inside the band and
leaves the others alone. For ``cos`` the summand ``1 - dist`` is the cosine similarity, so the term is
exactly the public IMC code's ``lam * sum(in-band similarities) / batch``.

The distances, on L2-normalised rows x, y of dimension d, beside the paper's equations 5.5-5.8::

    name  here                          paper                                  range here
    cos   1 - x.y                       eq. 5.5: 1 - cos(x, y) (the same)      [0, 2]
    msd   sum_k (x_k - y_k)^2           eq. 5.6: the same                      [0, 4]; = 2 (1 - x.y)
    l2    sqrt(sum_k (x_k - y_k)^2)     eq. 5.8: sum_k sqrt((x_k - y_k)^2)     [0, 2]; = sqrt(2 (1 - x.y))
    l1    sum_k |x_k - y_k| / sqrt(d)   eq. 5.7: sum_k |x_k - y_k|             [0, 2]

Every distance uses the one band (mu_down, mu_up) = (0.05, 0.5) of the paper, which was set for
the cosine distance (range [0, 2]). Why each is scaled as it is:

* ``cos`` and ``msd`` follow eq. 5.5 and 5.6 exactly. On unit vectors msd is twice the cosine
  distance, so the shared band selects pairs of cosine distance 0.025-0.25 and each counts
  1 - 2 (1 - cos): a different loss, hence a different row in the ablation (paper Table 5.4).
* ``l2`` is the Euclidean distance. Eq. 5.8 as printed sums sqrt((x_k - y_k)^2) = |x_k - y_k| per
  coordinate, which is L1 again; the Euclidean norm is what the name L2 means. It already lies in
  [0, 2] on the unit sphere and selects pairs of cosine distance 0.00125-0.125.
* ``l1`` is divided by sqrt(d): unscaled, it reaches 2 sqrt(d) (64 for d = 1024) and hardly any
  pair of a trained embedding falls inside (0.05, 0.5), which would switch IMC off. Divided by
  sqrt(d) it stays on the cosine distance's [0, 2] (Cauchy-Schwarz: L1 <= sqrt(d) L2 <= 2 sqrt(d)),
  and where it falls in that range depends on how the difference spreads over the dimensions.

``variant="code"`` is the IMC term as the authors' public code computes it, for l1, l2 and msd
(for cos both variants are the same function)::

    D = the raw distances (l1 not divided by sqrt(d), msd squared) of the L2-normalised rows
    N = D with each row divided by its own L2 norm
    lo, hi = the values at positions round(mu_down * B) and round(mu_up * B) of row 0 of N, sorted
             ascending (Python's round: halves to even; a position past the end takes the last value)
    IMC_code(X) = lam / B * sum over negative pairs with lo < N[n, m] < hi of N[n, m]

So the band is a range of ranks (here the 5th to 50th percentile of the first row), not of
distances, the summand is the normalised distance itself rather than 1 - distance, and minimising it
pulls those pairs together, the opposite of the paper's text. Row normalisation removes any constant
scale, so l1's sqrt(d) makes no difference there.

``ids`` (optional, one integer per row): rows with equal ids show the same image, so they are not
negatives of each other (batches built from several captions per image can repeat an image). Both
variants honour it; the public code masks only the diagonal, which ``ids=None`` reproduces
(``retrieval train --negatives off-diagonal``).
"""

import math

import torch
import torch.nn.functional as F

DISTANCES = ("cos", "msd", "l1", "l2")
VARIANTS = ("paper", "code")

__all__ = ["DISTANCES", "VARIANTS", "sh_loss", "mh_loss", "imc_loss", "pairwise_distance", "intra_modal_constraint"]


def _negatives_mask(size: int, ids, device) -> torch.Tensor:
    """True where (row n, column m) is a negative pair: n != m and, given ids, a different image."""
    if ids is None:
        return ~torch.eye(size, dtype=torch.bool, device=device)
    ids = torch.as_tensor(ids, device=device)
    return ids[:, None] != ids[None, :]


def _hinge_costs(img, txt, margin, ids):
    """Hinge costs of image queries (row n: caption m) and text queries (column m: image n)."""
    scores = F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T
    positive = scores.diagonal()
    negatives = _negatives_mask(scores.shape[0], ids, scores.device)
    cost_texts = (margin + scores - positive[:, None]).clamp(min=0) * negatives
    cost_images = (margin + scores - positive[None, :]).clamp(min=0) * negatives
    return cost_texts, cost_images


def sh_loss(img: torch.Tensor, txt: torch.Tensor, margin: float = 0.2, ids=None) -> torch.Tensor:
    """Sum of hinges (VSE0): every violating negative counts, both directions, summed over the batch."""
    cost_texts, cost_images = _hinge_costs(img, txt, margin, ids)
    return cost_texts.sum() + cost_images.sum()


def mh_loss(img: torch.Tensor, txt: torch.Tensor, margin: float = 0.2, ids=None) -> torch.Tensor:
    """Max of hinges (VSE++): the hardest negative of each query, both directions, summed over the batch."""
    cost_texts, cost_images = _hinge_costs(img, txt, margin, ids)
    return cost_texts.max(dim=1).values.sum() + cost_images.max(dim=0).values.sum()


def pairwise_distance(x: torch.Tensor, distance: str = "l1") -> torch.Tensor:
    """(B, B) distances between the L2-normalised rows of ``x`` (scales: see the module docstring)."""
    x = F.normalize(x, dim=1)
    if distance == "cos":
        return 1 - x @ x.T
    if distance == "msd":
        return torch.cdist(x, x, p=2).square()
    if distance == "l2":
        return torch.cdist(x, x, p=2)
    if distance == "l1":
        return torch.cdist(x, x, p=1) / math.sqrt(x.shape[1])
    raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, not {distance!r}")


def _raw_distance(x: torch.Tensor, distance: str) -> torch.Tensor:
    """(B, B) unscaled distances of the L2-normalised rows (the public code's l1, l2, msd)."""
    x = F.normalize(x, dim=1)
    if distance == "msd":
        return torch.cdist(x, x, p=2).square()
    return torch.cdist(x, x, p=1 if distance == "l1" else 2)


def _rank_band(normalised: torch.Tensor, mu_down: float, mu_up: float) -> tuple:
    """(lo, hi): the values at positions round(mu_down * B), round(mu_up * B) of row 0, sorted."""
    first_row = normalised[0].sort().values
    size = first_row.shape[0]
    return tuple(first_row[min(round(fraction * size), size - 1)] for fraction in (mu_down, mu_up))


def intra_modal_constraint(
    x: torch.Tensor, distance: str = "l1", mu_down: float = 0.05, mu_up: float = 0.5, ids=None, variant: str = "paper"
) -> torch.Tensor:
    """Unweighted IMC term of one modality, divided by the batch size.

    ``paper``: sum of (1 - distance) over the negative pairs whose distance lies strictly inside
    (mu_down, mu_up). ``code`` (l1, l2, msd): sum of the row-normalised distances strictly inside the
    rank band of row 0 (see the module docstring); for cos it is the paper variant.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    negatives = _negatives_mask(x.shape[0], ids, x.device)
    if variant == "code" and distance != "cos":
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, not {distance!r}")
        normalised = F.normalize(_raw_distance(x, distance), dim=1)
        with torch.no_grad():
            lo, hi = _rank_band(normalised, mu_down, mu_up)
            in_band = (normalised > lo) & (normalised < hi) & negatives
        return (normalised * in_band).sum() / x.shape[0]
    dist = pairwise_distance(x, distance)
    with torch.no_grad():
        in_band = (dist > mu_down) & (dist < mu_up) & negatives
    return ((1 - dist) * in_band).sum() / x.shape[0]


def imc_loss(
    img: torch.Tensor,
    txt: torch.Tensor,
    margin: float = 0.2,
    lam: float = 1.0,
    distance: str = "l1",
    mu_down: float = 0.05,
    mu_up: float = 0.5,
    ids=None,
    variant: str = "paper",
) -> torch.Tensor:
    """MH + lam * (IMC(images) + IMC(texts)); ``lam=0`` returns ``mh_loss`` itself. ``variant``:
    ``paper`` (the thesis' text, the default) or ``code`` (the authors' public code)."""
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, not {distance!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    loss = mh_loss(img, txt, margin, ids)
    if lam == 0:
        return loss
    constraint = intra_modal_constraint(img, distance, mu_down, mu_up, ids, variant) + intra_modal_constraint(
        txt, distance, mu_down, mu_up, ids, variant
    )
    return loss + lam * constraint
