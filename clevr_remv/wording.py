"""Wording of messages shared by every command."""


def plural(count: int, noun: str, nouns: str = None) -> str:
    """``count`` with ``noun`` in the number it needs.

    Args:
        count: how many.
        noun: the singular, e.g. "scene".
        nouns: the plural where it is not ``noun`` + "s", e.g. "entries".

    Returns:
        "1 scene", "0 scenes", "2 entries".
    """
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
