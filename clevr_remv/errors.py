"""The one exception type for bad user input; the CLI turns it into a message and exit code 2."""


class ClevrRemvError(Exception):
    """A user-facing error: the message names the file or flag, the field and the fix."""
