"""Turn a template's text variant and parameter values into an English sentence."""

import functools
import re

EMPTY_SHAPE_WORD = "thing"
RELATION_WORDS = {"left": "left of", "right": "right of", "front": "in front of", "behind": "behind"}
VISIBILITY_WORDS = {"fully": "fully visible", "partially": "partially visible"}
ORDINAL_WORDS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
# Plural templates write a shape placeholder followed by this ("<S>s": "cubes", "things"), so a
# shape word and each of its synonyms take it as their plural.
PLURAL_SUFFIX = "s"
# Fresh wordings tried when a rendered text repeats an earlier expression's text.
TEXT_TRIES = 4


def ordinal_word(number: int) -> str:
    """ "first" ... "ninth", then "10th", "11th", ..."""
    return ORDINAL_WORDS[number - 1] if number <= len(ORDINAL_WORDS) else f"{number}th"


def value_words(param_type: str, value: str) -> str:
    """The words a parameter value reads as ("" drops the word; an empty shape reads "thing")."""
    if param_type == "Shape" and not value:
        return EMPTY_SHAPE_WORD
    if param_type == "Relation":
        return RELATION_WORDS[value]
    if param_type == "Ordinal":
        return ordinal_word(int(value))
    if param_type == "Visibility":
        return VISIBILITY_WORDS[value]
    return value.replace("_", " ")


@functools.lru_cache(maxsize=16)
def _synonym_pattern(phrases: tuple):
    alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b")


def apply_synonyms(text: str, synonyms: dict, rng) -> str:
    """Replace every phrase of ``synonyms`` found in ``text`` by one of its variants, at random."""
    if not synonyms:
        return text
    pattern = _synonym_pattern(tuple(synonyms))
    return pattern.sub(lambda match: rng.choice(synonyms[match.group(0)]), text)


def render(variant: str, params: dict, values: dict, synonyms: dict, rng) -> str:
    """Fill ``variant``'s placeholders, keep or drop each [optional] part, vary words with
    ``synonyms``, tidy spaces and capitalise. ``params`` maps names to types."""
    text = variant
    for name, param_type in params.items():
        text = text.replace(name, value_words(param_type, values[name]))
    text = OPTIONAL.sub(lambda match: match.group(1) if rng.random() < 0.5 else "", text)
    text = apply_synonyms(text, synonyms, rng)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([.,;?!])", r"\1", text)
    return text[:1].upper() + text[1:]


def new_text(instance, synonyms: dict, seen_texts, rng):
    """A wording of ``instance`` (a filled-in template) not in ``seen_texts``, or None after
    TEXT_TRIES tries."""
    for _ in range(TEXT_TRIES):
        text = render(rng.choice(instance.template.text), instance.template.params, instance.values, synonyms, rng)
        if text not in seen_texts:
            return text
    return None
