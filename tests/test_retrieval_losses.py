"""SH / MH / IMC losses on tiny hand-computed batches."""

import math

import pytest

torch = pytest.importorskip("torch")

from clevr_remv.retrieval.losses import DISTANCES, imc_loss, intra_modal_constraint, mh_loss, pairwise_distance, sh_loss  # noqa: E402


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


# images e1, e2, e3: the similarity matrix S[i, j] = txt_j[i] has the text vectors as columns
# S = [[0.6, 0, 0.48], [0.8, 1, 0.6], [0, 0, 0.64]], positives 0.6, 1, 0.64.
IMG = t([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
TXT = t([[0.6, 0.8, 0], [0, 1, 0], [0.48, 0.6, 0.64]])
# violations (margin 0.2): image 0 -> text 2: 0.08; text 0 -> image 1: 0.4;
# text 2 -> image 0: 0.04, text 2 -> image 1: 0.16; every other hinge is <= 0.
SH_EXPECTED = 0.08 + 0.4 + 0.04 + 0.16
MH_EXPECTED = 0.08 + 0.4 + 0.16


def test_sh_loss_sums_every_violation():
    assert sh_loss(IMG, TXT).item() == pytest.approx(SH_EXPECTED)


def test_mh_loss_keeps_the_hardest_negative_of_each_query():
    assert mh_loss(IMG, TXT).item() == pytest.approx(MH_EXPECTED)


def test_losses_normalise_their_inputs_and_use_the_margin():
    assert mh_loss(3 * IMG, 0.5 * TXT).item() == pytest.approx(MH_EXPECTED)
    # margin 0.5: image 0 -> text 2 costs 0.38, image 1 -> text 0 0.3, image 1 -> text 2 0.1,
    # image 2: none; text 0 -> image 1 0.7; text 1 -> none; text 2 -> image 0 0.34, -> image 1 0.46
    assert sh_loss(IMG, TXT, margin=0.5).item() == pytest.approx(0.38 + 0.3 + 0.1 + 0.7 + 0.34 + 0.46)


def test_rows_with_the_same_id_are_not_negatives():
    same = t([[1, 0], [1, 0]])
    assert sh_loss(same, same).item() == pytest.approx(4 * 0.2)
    assert sh_loss(same, same, ids=[7, 7]).item() == 0.0
    assert mh_loss(same, same, ids=torch.tensor([7, 7])).item() == 0.0


# x0 = (1, 0), x1 = (0.8, 0.6), x2 = (0, 1)
X = t([[1, 0], [0.8, 0.6], [0, 1]])


@pytest.mark.parametrize(
    "distance, expected",
    [
        ("cos", [0.2, 1.0, 0.4]),
        ("msd", [0.4, 2, 0.8]),  # paper eq. 5.6: squared differences, not rescaled (range [0, 4])
        ("l2", [math.sqrt(0.4), math.sqrt(2), math.sqrt(0.8)]),
        ("l1", [0.8 / math.sqrt(2), 2 / math.sqrt(2), 1.2 / math.sqrt(2)]),  # |dx| + |dy| over sqrt(d)
    ],
)
def test_pairwise_distances(distance, expected):
    dist = pairwise_distance(X, distance)
    assert [dist[0, 1].item(), dist[0, 2].item(), dist[1, 2].item()] == pytest.approx(expected)
    assert torch.allclose(dist, dist.T)
    assert dist.diagonal().abs().max().item() < 1e-7
    largest = 4.0 if distance == "msd" else 2.0  # the others are brought to the cosine distance's [0, 2]
    antipodal = pairwise_distance(t([[1, 0, 0, 0], [-1, 0, 0, 0]]), distance)[0, 1].item()
    if distance != "l1":  # l1 reaches 2 only when the difference spreads over all dimensions
        assert antipodal == pytest.approx(largest)
    assert pairwise_distance(t([[0.5] * 4, [-0.5] * 4]), distance)[0, 1].item() == pytest.approx(largest)


def test_msd_is_twice_the_cosine_distance_so_its_band_and_loss_differ():
    embeddings = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(pairwise_distance(embeddings, "msd"), 2 * pairwise_distance(embeddings, "cos"), atol=1e-5)
    # cosine distances around 0.05-0.5
    near = torch.nn.functional.normalize(torch.ones(16, 8) + 0.3 * embeddings, dim=1)
    terms = {distance: intra_modal_constraint(near, distance).item() for distance in ("cos", "msd")}
    assert terms["cos"] > 0 and terms["msd"] > 0 and terms["msd"] != pytest.approx(terms["cos"], rel=0.05)


@pytest.mark.parametrize(
    "distance, mu_up, in_band",
    [
        ("cos", 0.5, [0.2, 0.4]),
        ("msd", 0.5, [0.4]),  # twice the cosine distances 0.2 and 0.4: only the first stays below 0.5
        ("l2", 0.5, []),
        ("l2", 0.9, [math.sqrt(0.4), math.sqrt(0.8)]),
        ("l1", 0.9, [0.8 / math.sqrt(2), 1.2 / math.sqrt(2)]),
    ],
)
def test_intra_modal_constraint_sums_one_minus_distance_over_the_band(distance, mu_up, in_band):
    # ordered pairs: each in-band pair counts twice; divided by the batch size 3
    expected = 2 * sum(1 - d for d in in_band) / 3
    assert intra_modal_constraint(X, distance, 0.05, mu_up).item() == pytest.approx(expected)


def test_band_edges_are_exclusive():
    # the cos distances of X are 0.2, 1 and 0.4
    assert intra_modal_constraint(X, "cos", 0.2 - 1e-9, 0.3).item() == pytest.approx(2 * 0.8 / 3)
    assert intra_modal_constraint(X, "cos", 0.2 + 1e-9, 0.3).item() == 0.0
    assert intra_modal_constraint(X, "cos", 0.3, 0.4 + 1e-9).item() == pytest.approx(2 * 0.6 / 3)
    assert intra_modal_constraint(X, "cos", 0.3, 0.4 - 1e-9).item() == 0.0


@pytest.mark.parametrize("distance", DISTANCES)
def test_imc_loss_is_mh_plus_both_constraints(distance):
    lam = 0.7
    expected = MH_EXPECTED + lam * (
        intra_modal_constraint(IMG, distance).item() + intra_modal_constraint(TXT, distance).item()
    )
    assert imc_loss(IMG, TXT, lam=lam, distance=distance).item() == pytest.approx(expected)


def test_imc_cos_on_the_hand_example():
    # images are orthogonal (cos distance 1: out of band); text cos distances 0.2, 0.232, 0.4
    expected = MH_EXPECTED + 2 * (0.8 + 0.768 + 0.6) / 3
    assert imc_loss(IMG, TXT, distance="cos").item() == pytest.approx(expected)


@pytest.mark.parametrize("distance", DISTANCES)
def test_lambda_zero_is_exactly_mh(distance):
    torch.manual_seed(0)
    img, txt = torch.randn(16, 8), torch.randn(16, 8)
    assert torch.equal(imc_loss(img, txt, lam=0.0, distance=distance), mh_loss(img, txt))


def test_unknown_distance_is_refused():
    with pytest.raises(ValueError, match="distance"):
        imc_loss(IMG, TXT, distance="cosine")


@pytest.mark.parametrize("distance", DISTANCES)
def test_a_gradient_step_pushes_in_band_pairs_apart_and_leaves_others_alone(distance):
    # x0, x1: cos distance 0.1 (inside the band for every distance); x2, x3: far from all
    x = t([[1, 0, 0], [0.9, math.sqrt(0.19), 0], [0, 0, 1], [0, 0, -1]]).requires_grad_(True)
    before = pairwise_distance(x, distance)[0, 1].item()
    assert 0.05 < before < 0.5
    intra_modal_constraint(x, distance).backward()
    assert torch.count_nonzero(x.grad[2:]) == 0
    assert torch.count_nonzero(x.grad[:2]) > 0
    with torch.no_grad():
        stepped = x - 0.01 * x.grad
    assert pairwise_distance(stepped, distance)[0, 1].item() > before
    assert torch.equal(stepped[2:], x[2:].detach())


# The public code's variant on X (B = 3): band positions round(0.05 * 3) = 0 and round(0.5 * 3) = 2
# of row 0 sorted, i.e. (0, the largest of row 0); each row of the raw distance matrix is divided
# by its own L2 norm. Raw distances of X: l2 sqrt(0.4), sqrt(2), sqrt(0.8); l1 0.8, 2, 1.2;
# msd 0.4, 2, 0.8.
def _row_normalised(d01, d02, d12):
    rows = [(d01, d02), (d01, d12), (d02, d12)]
    return [[value / math.hypot(*row) for value in row] for row in rows]


@pytest.mark.parametrize(
    "distance, raw",
    [
        ("l2", (math.sqrt(0.4), math.sqrt(2), math.sqrt(0.8))),
        ("l1", (0.8, 2, 1.2)),
        ("msd", (0.4, 2, 0.8)),
    ],
)
def test_code_variant_sums_row_normalised_distances_inside_the_rank_band(distance, raw):
    rows = _row_normalised(*raw)
    upper = rows[0][1]  # the largest value of row 0 (x0 to x2): the band's open upper end
    assert upper == max(rows[0])
    in_band = [value for row in rows for value in row if 0 < value < upper]
    assert len(in_band) == 5  # every off-diagonal entry but the edge value itself (x0 -> x2)
    expected = sum(in_band) / 3
    assert intra_modal_constraint(X, distance, variant="code").item() == pytest.approx(expected)


def test_code_variant_hand_computed_l2_value():
    # row 0: [0, sqrt(1/6), sqrt(5/6)]; row 1: [sqrt(1/3), 0, sqrt(2/3)]; row 2: [sqrt(5/7), sqrt(2/7), 0]
    expected = (math.sqrt(1 / 6) + math.sqrt(1 / 3) + math.sqrt(2 / 3) + math.sqrt(5 / 7) + math.sqrt(2 / 7)) / 3
    assert intra_modal_constraint(X, "l2", variant="code").item() == pytest.approx(expected)
    # mu_up 0.34: position round(1.02) = 1, the band (0, sqrt(1/6)) holds no entry
    assert intra_modal_constraint(X, "l2", 0.05, 0.34, variant="code").item() == 0.0
    # the paper variant of the same batch: only sqrt(0.4) < 0.5 would qualify, and it does not (0.63)
    assert intra_modal_constraint(X, "l2").item() == 0.0


def test_code_variant_equals_paper_for_cosine():
    embeddings = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    near = torch.nn.functional.normalize(torch.ones(16, 8) + 0.3 * embeddings, dim=1)
    assert torch.equal(intra_modal_constraint(near, "cos", variant="code"), intra_modal_constraint(near, "cos"))
    assert torch.equal(imc_loss(IMG, TXT, distance="cos", variant="code"), imc_loss(IMG, TXT, distance="cos"))


def test_code_variant_honours_ids_and_none_masks_only_the_diagonal():
    rows = _row_normalised(math.sqrt(0.4), math.sqrt(2), math.sqrt(0.8))
    # ids: x1 and x2 show the same image: their pair (sqrt(2/3) and sqrt(2/7)) is not a negative
    expected = (rows[0][0] + rows[1][0] + rows[2][0]) / 3
    assert intra_modal_constraint(X, "l2", ids=[0, 1, 1], variant="code").item() == pytest.approx(expected)


@pytest.mark.parametrize("distance", ["l1", "l2", "msd"])
def test_imc_loss_code_variant_is_mh_plus_both_code_constraints(distance):
    expected = MH_EXPECTED + 0.5 * (
        intra_modal_constraint(IMG, distance, variant="code").item()
        + intra_modal_constraint(TXT, distance, variant="code").item()
    )
    got = imc_loss(IMG, TXT, lam=0.5, distance=distance, variant="code").item()
    assert got == pytest.approx(expected)
    assert got != pytest.approx(imc_loss(IMG, TXT, lam=0.5, distance=distance).item())


@pytest.mark.parametrize("distance", ["l1", "l2", "msd"])
def test_a_code_variant_step_pulls_in_band_pairs_together(distance):
    # the opposite of the paper variant's push: the summand is the distance itself
    x = t([[1, 0, 0], [0.9, math.sqrt(0.19), 0], [0.6, 0.8, 0], [0, 0, 1]]).requires_grad_(True)
    before = pairwise_distance(x, distance)[0, 1].item()
    loss = intra_modal_constraint(x, distance, 0.05, 0.7, variant="code")  # band: positions 0 and 3 of row 0
    assert loss.item() > 0
    loss.backward()
    with torch.no_grad():
        stepped = x - 0.01 * x.grad
    assert pairwise_distance(stepped, distance)[0, 1].item() < before


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant"):
        imc_loss(IMG, TXT, variant="reference")


# Two captions of one image: images (1, 0), (1, 0), (0, 1) with ids 5, 5, 9; their captions are the
# rows of X. Text cos distances: caption 0 to 1: 0.2, 0 to 2: 1, 1 to 2: 0.4; image distances 0, 1, 1.
SAME_IMAGE = t([[1, 0], [1, 0], [0, 1]])
SAME_IDS = [5, 5, 9]


def test_the_paper_imc_term_skips_captions_of_the_same_image():
    # in the band (0.05, 0.5): pairs 0-1 (0.2: the same image, not a negative) and 1-2 (0.4);
    # ordered pairs count twice, over the batch size 3
    assert intra_modal_constraint(X, "cos", ids=[0, 0, 1]).item() == pytest.approx(2 * (1 - 0.4) / 3)
    assert intra_modal_constraint(X, "cos").item() == pytest.approx(2 * ((1 - 0.2) + (1 - 0.4)) / 3)
    assert intra_modal_constraint(X, "cos", ids=[0, 1, 2]).item() == pytest.approx(2 * 1.4 / 3)


def test_imc_loss_passes_ids_to_its_hinges_and_to_both_constraints():
    # margin 0.1. With ids, the only negatives are the pairs with image / caption 2, and every hinge
    # is <= 0: S = [[1, 0.8, 0], [1, 0.8, 0], [0, 0.6, 1]], positives 1, 0.8, 1; the worst,
    # image 2 for caption 1, costs 0.1 + 0.6 - 0.8 < 0. Images: distances 0 and 1, outside the band.
    # Captions: only the pair 1-2 (0.4) counts, twice over 3. Total 0 + 0 + 2 * 0.6 / 3 = 0.4.
    assert imc_loss(SAME_IMAGE, X, margin=0.1, distance="cos", ids=SAME_IDS).item() == pytest.approx(0.4)
    # Without ids the two captions of image 5 are negatives of each other: MH = 0.3 (caption 0 for
    # image 1) + 0.1 + 0.1 (images 1 and 0 for captions 0 and 1), and the captions' term adds 0.8.
    assert imc_loss(SAME_IMAGE, X, margin=0.1, distance="cos").item() == pytest.approx(0.5 + 2 * 1.4 / 3)
