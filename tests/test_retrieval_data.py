"""Retrieval data: the precomputed layout, the synthetic set, token batches, GloVe, CLEVR-REMV
centre views."""

import numpy as np
import pytest

pytest.importorskip("torch")

from clevr_remv.dataset.vocab import Vocabulary  # noqa: E402
from clevr_remv.errors import ClevrRemvError  # noqa: E402
from clevr_remv.retrieval.data import load_precomp_split, load_split, split_exists  # noqa: E402
from clevr_remv.retrieval.glove import read_glove  # noqa: E402
from clevr_remv.retrieval.model import text_batch  # noqa: E402
from clevr_remv.retrieval.remv import load_remv_split  # noqa: E402
from clevr_remv.retrieval.synthetic import make_synthetic_precomp  # noqa: E402


def write_precomp(root, split, images, captions):
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / f"{split}_ims.npy", np.asarray(images, dtype=np.float32))
    (root / f"{split}_caps.txt").write_text("\n".join(captions) + "\n")


def test_precomp_split_maps_captions_to_images_in_order(tmp_path):
    write_precomp(tmp_path, "dev", np.eye(2, 4), [f"caption {i}" for i in range(10)])
    split = load_precomp_split(tmp_path, "dev")
    assert split.caption_image.tolist() == [0] * 5 + [1] * 5
    assert split.image_kind == "features"
    assert split.image_batch([1, 0]).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]


def test_region_features_are_averaged(tmp_path):
    write_precomp(tmp_path, "test", np.arange(12).reshape(2, 3, 2), ["a", "b"])
    assert load_precomp_split(tmp_path, "test").images.tolist() == [[2, 3], [8, 9]]


def test_caption_count_must_be_a_multiple_of_the_images(tmp_path):
    write_precomp(tmp_path, "train", np.zeros((3, 4)), ["x"] * 7)
    with pytest.raises(ClevrRemvError, match=r"train_caps.txt: 7 captions for 3 images"):
        load_precomp_split(tmp_path, "train")


def test_missing_files_name_the_file_and_the_fix(tmp_path):
    write_precomp(tmp_path, "train", np.zeros((1, 4)), ["x"])
    (tmp_path / "train_caps.txt").unlink()
    with pytest.raises(ClevrRemvError, match=r"train_caps.txt: missing.*retrieval synthetic"):
        load_precomp_split(tmp_path, "train")
    assert not split_exists(tmp_path, "precomp", "test")


def test_a_file_that_is_not_npy_is_refused(tmp_path):
    write_precomp(tmp_path, "train", np.zeros((1, 4)), ["x"])
    (tmp_path / "train_ims.npy").write_text("not numpy")
    with pytest.raises(ClevrRemvError, match="train_ims.npy: not a .npy array"):
        load_precomp_split(tmp_path, "train")


def test_synthetic_set_is_deterministic_and_in_the_precomp_layout(tmp_path):
    make_synthetic_precomp(tmp_path / "a", train=20, dev=5, test=5, feature_dim=8, seed=3)
    make_synthetic_precomp(tmp_path / "b", train=20, dev=5, test=5, feature_dim=8, seed=3)
    for role, count in (("train", 20), ("val", 5), ("test", 5)):
        split = load_split(tmp_path / "a", "precomp", role)
        assert split.images.shape == (count, 8) and len(split.captions) == 5 * count
    assert (tmp_path / "a" / "dev_caps.txt").read_text() == (tmp_path / "b" / "dev_caps.txt").read_text()
    assert np.array_equal(np.load(tmp_path / "a" / "train_ims.npy"), np.load(tmp_path / "b" / "train_ims.npy"))


def test_text_batch_pads_and_never_leaves_a_caption_empty():
    vocab = Vocabulary.build(["a red ball", "a blue ball", "a cube"], min_count=2)
    tokens, lengths = text_batch(vocab, ["a ball", "ball"])
    assert tokens.tolist() == [[2, 3], [3, 0]] and lengths.tolist() == [2, 1]
    tokens, lengths = text_batch(vocab, ["..."])
    assert tokens.tolist() == [[1]] and lengths.tolist() == [1]


def test_glove_vectors_for_vocabulary_words(tmp_path):
    vocab = Vocabulary(["red", "ball"])
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2 0.3\nred 1 2 3\nball -1 0 1\n")
    vectors, lines = read_glove(glove, vocab, 3)
    assert lines == 3 and sorted(vectors) == [2, 3]
    assert vectors[2].tolist() == [1, 2, 3]
    with pytest.raises(ClevrRemvError, match="--word-dim 3"):
        read_glove(glove, vocab, 300)
    with pytest.raises(ClevrRemvError, match="file missing"):
        read_glove(tmp_path / "none.txt", vocab, 3)


def test_remv_centre_views_and_their_expressions(tiny_dataset):
    split = load_remv_split(tiny_dataset, "train")
    assert split.images.shape == (3, 32, 48, 3) and split.images.dtype == np.uint8
    assert split.image_kind == "pixels"
    assert len(split.captions) == len(split.caption_image) > 0
    assert np.all(np.diff(split.caption_image) >= 0) and split.caption_image.max() <= 2
    assert all(isinstance(caption, str) and caption for caption in split.captions)
    small = load_remv_split(tiny_dataset, "train", image_size=24)
    assert small.images.shape == (3, 16, 24, 3)


def test_remv_without_splits_asks_for_clevr_remv_split(tiny_dataset_copy):
    (tiny_dataset_copy / "splits.json").unlink()
    with pytest.raises(ClevrRemvError, match=r"splits.json: missing.*clevr-remv split --data"):
        load_split(tiny_dataset_copy, "remv", "train")


def test_remv_needs_a_dataset_root(tmp_path):
    with pytest.raises(ClevrRemvError, match="dataset.json"):
        load_remv_split(tmp_path, "train")
