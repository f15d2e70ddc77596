"""Helpers that keep a scene's expressions varied: least-used choice and program identity."""

import json


def least_used(options, uses: dict, rng):
    """The option used least so far; ties broken at random."""
    tie_breaks = {option: rng.random() for option in sorted(options)}
    return min(sorted(options), key=lambda option: (uses[option], tie_breaks[option]))


def program_key(program: list) -> str:
    """A program as a string, equal for equal programs."""
    return json.dumps(program, sort_keys=True)
