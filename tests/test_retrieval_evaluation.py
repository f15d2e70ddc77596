"""Recall metrics on hand-made similarity matrices."""

import numpy as np
import pytest

pytest.importorskip("torch")

from clevr_remv.retrieval import evaluation  # noqa: E402
from clevr_remv.retrieval.evaluation import fold_metrics, image_to_text_ranks, recall_metrics, text_to_image_ranks  # noqa: E402


def test_perfect_matrix():
    result = recall_metrics(np.eye(3), np.arange(3))
    assert result["i2t"] == {"r1": 100.0, "r5": 100.0, "r10": 100.0, "medr": 1.0, "meanr": 1.0}
    assert result["t2i"] == result["i2t"]
    assert result["rsum"] == 600.0


def test_ties_count_against_the_query():
    result = recall_metrics(np.zeros((3, 3)), np.arange(3))
    assert result["i2t"]["r1"] == 0.0 and result["i2t"]["medr"] == 3.0
    assert result["t2i"]["r1"] == 0.0 and result["t2i"]["r5"] == 100.0


def test_five_captions_per_image_use_the_best_caption():
    caption_image = np.arange(10) // 5
    sim = np.array(
        [[0.1, 0.5, 0.2, 0.3, 0.1, 0.6, 0.0, 0.0, 0.0, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2, 0.9, 0.8, 0.1, 0.1, 0.1]]
    )
    # image 0: best own caption 0.5, one wrong caption (0.6) above it; image 1: first
    assert image_to_text_ranks(sim, caption_image).tolist() == [1, 0]
    # captions 0 and 4 lose to image 1; caption 2 ties with it (a tie ranks the query second)
    assert text_to_image_ranks(sim, caption_image).tolist() == [1, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    result = recall_metrics(sim, caption_image)
    assert result["i2t"]["r1"] == 50.0 and result["i2t"]["r5"] == 100.0 and result["i2t"]["medr"] == 1.0
    assert result["t2i"]["r1"] == 70.0 and result["t2i"]["meanr"] == pytest.approx(1.3)
    assert result["rsum"] == pytest.approx(520.0)


def test_variable_caption_counts_and_caption_less_distractors():
    # image 0: one caption, image 1: three, image 2: none (a distractor, never a query)
    caption_image = np.array([0, 1, 1, 1])
    sim = np.array([[0.9, 0.1, 0.95, 0.0], [0.2, 0.3, 0.5, 0.4], [0.95, 0.6, 0.1, 0.0]])
    assert image_to_text_ranks(sim, caption_image).tolist() == [1, 0]
    assert text_to_image_ranks(sim, caption_image).tolist() == [1, 1, 1, 0]
    result = recall_metrics(sim, caption_image)
    assert result["i2t"]["r1"] == 50.0 and result["t2i"]["r1"] == 25.0


def _brute_force_ranks(sim, caption_image):
    i2t = []
    for image in range(sim.shape[0]):
        own = caption_image == image
        if own.any():
            wrong = sim[image][~own]
            i2t.append(min(int((wrong >= s).sum()) for s in sim[image][own]))
    t2i = [int((np.delete(sim[:, j], caption_image[j]) >= sim[caption_image[j], j]).sum()) for j in range(sim.shape[1])]
    return i2t, t2i


def test_chunked_ranks_match_a_brute_force_count(monkeypatch):
    monkeypatch.setattr(evaluation, "CHUNK", 3)
    rng = np.random.RandomState(0)
    caption_image = np.sort(rng.randint(0, 9, size=23))  # some images get no caption
    sim = rng.randint(0, 4, size=(9, 23)).astype(float)  # many ties
    i2t, t2i = _brute_force_ranks(sim, caption_image)
    assert image_to_text_ranks(sim, caption_image).tolist() == i2t
    assert text_to_image_ranks(sim, caption_image).tolist() == t2i


def test_five_folds_score_each_block_of_images_on_its_own():
    sim = 0.5 * np.eye(10)
    sim[5, 0] = 0.9  # caption 0 prefers image 5, which sits in another fold
    full = recall_metrics(sim, np.arange(10))
    assert full["i2t"]["r1"] == 90.0 and full["t2i"]["r1"] == 90.0
    folds = fold_metrics(sim, np.arange(10))
    assert len(folds["folds"]) == 5
    assert folds["mean"]["rsum"] == 600.0


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        recall_metrics(np.eye(3), np.arange(4))
    with pytest.raises(ValueError, match="folds"):
        fold_metrics(np.eye(3), np.arange(3))
