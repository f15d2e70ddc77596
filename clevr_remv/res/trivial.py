"""Reference RES predictors that need no training: three floors every model must beat, and a
perception oracle.

The floors see no pixels of the image and no words, only which objects the view shows (its index
mask):

- ``empty``: the empty mask;
- ``largest``: the object with the most pixels in the view;
- ``random``: a visible object drawn at random (seeded per sample, so the draw does not depend on
  which other samples are scored).

``attributes`` is a perception oracle, not a floor: it reads the true instance masks and the
scene's object attributes, and parses the referent's words perfectly. It takes the words of the
expression's first noun phrase (the referent's, in every shipped template) as size, colour,
material and shape with the dataset's own synonym list, and predicts the object when exactly one
visible object has them all, else the empty mask. A plural noun ("cubes", "things": a
multi-target expression of a generalized dataset) predicts every visible object that has them. It
shows what perfect perception with the referent's attribute words alone reaches (no relations,
ordinals or visibility words).

On a generalized dataset the empty mask is the answer "no target": ``empty`` always gives it
(N-acc 100, T-acc 0), ``largest`` and ``random`` never do while an object is visible, and
``attributes`` does when no visible object has the words.

A predictor is a prediction source for ``clevr_remv.res.evaluate.score_predictions``.
"""

import re
from pathlib import Path

import numpy as np

from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.refexp import load_template_set
from clevr_remv.refexp.generator import PROPERTY_KEYS
from clevr_remv.refexp.templates import ATTRIBUTE_TYPES
from clevr_remv.refexp.text import EMPTY_SHAPE_WORD, PLURAL_SUFFIX, value_words

FLOORS = ("empty", "largest", "random")
ORACLES = ("attributes",)
PREDICTORS = FLOORS + ORACLES


def attribute_phrases(properties: dict, synonyms: dict) -> dict:
    """Lower-case phrase -> (attribute, value) for every way an expression names a value;
    the words for "no particular shape" ("thing", "object") map to ("shape", None)."""
    phrases = {}
    for param_type, attribute in ATTRIBUTE_TYPES.items():
        for value in properties[PROPERTY_KEYS[attribute]]:
            word = value_words(param_type, value)
            for phrase in synonyms.get(word, [word]):
                phrases[phrase.lower()] = (attribute, value)
    for phrase in synonyms.get(EMPTY_SHAPE_WORD, [EMPTY_SHAPE_WORD]):
        phrases[phrase.lower()] = ("shape", None)
    return phrases


class AttributeParser:
    """Reads the referent's attributes off an expression's first noun phrase."""

    def __init__(self, properties: dict, synonyms: dict):
        self.phrases = attribute_phrases(properties, synonyms)
        nouns = [phrase for phrase, (attribute, _) in self.phrases.items() if attribute == "shape"]
        self.plurals = {noun + PLURAL_SUFFIX: self.phrases[noun] for noun in nouns}
        words = {**self.phrases, **self.plurals}
        alternatives = "|".join(re.escape(p) for p in sorted(words, key=len, reverse=True))
        self.pattern = re.compile(rf"\b(?:{alternatives})\b")

    def __call__(self, text: str) -> dict:
        """{attribute: value} named before the first shape noun (a shape, "thing" or "object")."""
        return self.parse(text)[0]

    def parse(self, text: str) -> tuple:
        """({attribute: value} as `__call__`, whether the first noun is plural)."""
        found = {}
        for match in self.pattern.finditer(text.lower()):
            plural = match.group(0) in self.plurals
            attribute, value = (self.plurals if plural else self.phrases)[match.group(0)]
            if value is not None:
                found.setdefault(attribute, value)
            if attribute == "shape":
                return found, plural
        return found, False


def _dataset_synonyms(store: DatasetStore) -> dict:
    """The synonyms the dataset's expressions were written with (its template folder's)."""
    folder = store.info()["refexps"]["templates_dir"]
    if folder is not None and not Path(folder).is_dir():
        raise ClevrRemvError(
            f"{store.dataset_json_path}: the expressions were made with the templates in "
            f"{folder}, which is gone; the attributes predictor reads their synonyms.json, "
            "so restore that folder"
        )
    return load_template_set(folder).synonyms


class TrivialPredictions:
    """Masks of predictor ``name`` (one of ``PREDICTORS``) on the dataset ``store``;
    ``path`` is how the reports name the source."""

    def __init__(self, store: DatasetStore, name: str, seed: int = 0):
        if name not in PREDICTORS:
            raise ValueError(f"predictor must be one of {PREDICTORS}, not {name!r}")
        self.store, self.name, self.seed = store, name, seed
        self.path = f"predictor:{name}"
        self._scene_index, self._scene, self._texts = None, None, None
        self._view_key, self._index = None, None
        if name == "attributes":
            self._parse = AttributeParser(store.info()["config"]["properties"], _dataset_synonyms(store))

    def _load_scene(self, scene: int) -> None:
        if scene != self._scene_index:
            self._scene = self.store.load_scene(scene, check=False)
            self._texts = {e["id"]: e["text"] for e in self.store.load_refexps(scene, check=False)["expressions"]}
            self._scene_index = scene

    def _view_index(self, scene: int, u: int, v: int) -> np.ndarray:
        if (scene, u, v) != self._view_key:
            self._index = self.store.read_index(scene, u, v)
            self._view_key = (scene, u, v)
        return self._index

    def choose(self, key, index: np.ndarray):
        """The 1-based object predicted for sample ``key`` = (scene, expression_id, u, v) given
        the view's index mask, or None for the empty mask."""
        counts = np.bincount(index.ravel())
        visible = np.flatnonzero(counts[1:]) + 1
        if self.name == "empty" or len(visible) == 0:
            return None
        if self.name == "largest":
            return int(visible[np.argmax(counts[visible])])
        if self.name == "random":
            return int(np.random.default_rng([self.seed, *key]).choice(visible))
        matches, _ = self._attribute_matches(key, visible)
        return matches[0] if len(matches) == 1 else None

    def _attribute_matches(self, key, visible) -> tuple:
        """(the visible objects having the expression's attribute words, whether its noun is plural)."""
        scene, expression_id = key[:2]
        self._load_scene(scene)
        wanted, plural = self._parse.parse(self._texts[expression_id])
        objects = self._scene["objects"]
        return [int(k) for k in visible if all(objects[k - 1][a] == value for a, value in wanted.items())], plural

    def choose_all(self, key, index: np.ndarray) -> list:
        """The 1-based objects predicted for sample ``key``: `choose`'s one, or for a plural
        noun every matching visible object (``attributes``); empty for the empty mask."""
        if self.name == "attributes":
            visible = np.flatnonzero(np.bincount(index.ravel())[1:]) + 1
            matches, plural = self._attribute_matches(key, visible)
            return matches if plural or len(matches) == 1 else []
        chosen = self.choose(key, index)
        return [] if chosen is None else [chosen]

    def mask(self, key, shape):
        """The predicted boolean mask of ``key`` = (scene, expression_id, u, v)."""
        index = self._view_index(key[0], *key[2:])
        return np.isin(index, self.choose_all(key, index))

    def unused_keys(self) -> list:
        """A predictor has a mask for every sample: none unused."""
        return []
