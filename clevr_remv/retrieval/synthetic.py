"""A small synthetic set in the precomputed-feature layout, for tests and demos.

Each image is a random object (colour, shape, size, place: 720 combinations). Its "CNN feature" is
the sum of one random vector per attribute value plus Gaussian noise; its captions name the shape
and a random subset of the other attributes, with synonyms and varied wording. The task is
learnable (features and words share the attributes) but not trivial: a caption leaving attributes
out fits many images, several images share all four attributes, and the noise blurs the rest.
"""

from pathlib import Path

import numpy as np

from clevr_remv.dataset.atomic import atomic_path, write_text_atomic
from clevr_remv.retrieval.data import precomp_paths

ATTRIBUTES = {
    "colour": [["red"], ["green"], ["blue"], ["yellow"], ["purple"], ["cyan"], ["brown"], ["gray", "grey"]],
    "shape": [["cube", "block"], ["sphere", "ball"], ["cylinder", "can"], ["cone"], ["ring", "torus"], ["pyramid"]],
    "size": [["small", "tiny"], ["medium sized"], ["large", "big"]],
    "place": [
        ["on the grass"],
        ["on a table", "on a desk"],
        ["in the snow"],
        ["on the beach", "on the sand"],
        ["in a box"],
    ],
}
MENTION_PROBABILITY = {"colour": 0.8, "size": 0.6, "place": 0.5}
OPENINGS = ["a", "there is a", "a photo of a", "this shows a", "one"]


def _caption(values: dict, rng: np.random.RandomState) -> str:
    def word(attribute):
        synonyms = ATTRIBUTES[attribute][values[attribute]]
        return synonyms[rng.randint(len(synonyms))]

    said = {a: rng.rand() < p for a, p in MENTION_PROBABILITY.items()}
    words = [OPENINGS[rng.randint(len(OPENINGS))]]
    words += [word("size")] if said["size"] else []
    words += [word("colour")] if said["colour"] else []
    words += [word("shape")]
    words += [word("place")] if said["place"] else []
    return " ".join(words)


def _write_split(
    root: Path,
    split: str,
    count: int,
    attribute_vectors: dict,
    captions_per_image: int,
    noise: float,
    rng: np.random.RandomState,
) -> None:
    feature_dim = next(iter(attribute_vectors.values())).shape[1]
    features = noise * rng.randn(count, feature_dim)
    captions = []
    for row in range(count):
        values = {a: rng.randint(len(choices)) for a, choices in ATTRIBUTES.items()}
        for attribute, value in values.items():
            features[row] += attribute_vectors[attribute][value]
        captions += [_caption(values, rng) for _ in range(captions_per_image)]
    ims_path, caps_path = precomp_paths(root, split)
    with atomic_path(ims_path) as tmp:
        with open(tmp, "wb") as stream:
            np.save(stream, features.astype(np.float32))
    write_text_atomic(caps_path, "\n".join(captions) + "\n")


def make_synthetic_precomp(
    root,
    train: int = 1000,
    dev: int = 200,
    test: int = 200,
    feature_dim: int = 256,
    captions_per_image: int = 5,
    noise: float = 1.0,
    seed: int = 0,
) -> dict:
    """Write ``{train,dev,test}_ims.npy`` and ``_caps.txt`` under ``root``; return the image counts."""
    rng = np.random.RandomState(seed)
    attribute_vectors = {a: rng.randn(len(choices), feature_dim) for a, choices in ATTRIBUTES.items()}
    counts = {"train": train, "dev": dev, "test": test}
    for split, count in counts.items():
        _write_split(Path(root), split, count, attribute_vectors, captions_per_image, noise, rng)
    return counts
