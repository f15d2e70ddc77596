"""Referring expressions: CLEVR-format templates, a program engine and per-scene instantiation.

By default every expression names exactly one object with at most one relation (CLEVR-REMV's
restriction of CLEVR-Ref+), and only objects visible in every rendered view are referents.
Generalized expressions (`clevr_remv.refexp.generalized`) also name several objects or none.
"""

from clevr_remv.refexp.engine import SceneFacts, answer_set, execute, referent_of
from clevr_remv.refexp.generator import generate_refexps, refexp_settings
from clevr_remv.refexp.templates import load_template_set

__all__ = [
    "generate_refexps",
    "refexp_settings",
    "load_template_set",
    "SceneFacts",
    "execute",
    "referent_of",
    "answer_set",
]
