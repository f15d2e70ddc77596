"""What an expression names, in every kind of dataset, and which template family made it.

The paper's (single-referent) datasets give each expression one ``referent`` (1-based object
index); generalized datasets (``refexps --expressions generalized``) give every expression
``referents``, the sorted 1-based objects it names (empty: no target), and keep ``referent`` on
those that name exactly one. Readers go through these helpers so both read alike.
"""

from pathlib import Path

import numpy as np

GENERALIZED = "generalized"
TARGET_COUNT_LABELS = ("0", "1", "2+")
# dataset.json key: the settings of a `clevr-remv refexps` run that has not finished rewriting every scene.
PENDING = "refexps_pending"


def referents_of(expression: dict) -> list:
    """The 1-based objects ``expression`` names: its ``referents``, or [its ``referent``]."""
    if "referents" in expression:
        return list(expression["referents"])
    return [expression["referent"]]


def target_mask(index: np.ndarray, expression: dict) -> np.ndarray:
    """The pixels of every object ``expression`` names in a view's index mask (all False for a
    no-target expression)."""
    referents = referents_of(expression)
    if len(referents) == 1:
        return index == referents[0]
    return np.isin(index, referents)


def target_count_label(expression: dict) -> str:
    """ "0", "1" or "2+": how many objects ``expression`` names."""
    return TARGET_COUNT_LABELS[min(len(referents_of(expression)), 2)]


def is_generalized(info: dict) -> bool:
    """Whether the dataset described by ``info`` (dataset.json) has generalized expressions."""
    return info.get("refexps", {}).get("expressions") == GENERALIZED


def refexps_command(root, settings: dict) -> str:
    """The `clevr-remv refexps` command line that makes a dataset's expressions with ``settings``
    (dataset.json's ``refexps``)."""
    flags = [f"--data {root}", f"--seed {settings['seed']}", f"--per-scene {settings['per_scene']}"]
    if settings["templates_dir"] is not None:
        flags.append(f"--templates {settings['templates_dir']}")
    if settings["keep_partial"]:
        flags.append("--keep-partial")
    flags.append(f"--min-visible-pixels {settings['min_visible_pixels']}")
    if settings.get("expressions") == GENERALIZED:
        flags.append(f"--expressions {GENERALIZED} --target-mix {','.join(map(str, settings['target_mix']))}")
    return "clevr-remv refexps " + " ".join(flags)


def unfinished_refexps(root, pending: dict) -> str:
    """What is wrong with dataset ``root`` while dataset.json holds ``pending`` (its PENDING
    settings), and the command that finishes it."""
    return (
        "`clevr-remv refexps` stopped before it had rewritten every scene's expressions, so some scenes have "
        f"the new ones and the others the old; finish it by running it again: `{refexps_command(root, pending)}`"
    )


def family_name(expression: dict) -> str:
    """The template family of an expression, e.g. ``zero_hop`` for ``zero_hop.json``."""
    return Path(expression["family"]["template"]).stem
