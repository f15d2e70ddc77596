"""The one exception type for bad user input; the CLI turns it into a message and exit code 2."""

# torch re-raises an error of a DataLoader worker process as the same type, with the worker's
# whole traceback as the message; the user's message is what follows this marker.
_WORKER_MARKER = "clevr_remv.errors.ClevrRemvError: "


class ClevrRemvError(Exception):
    """A user-facing error: the message names the file or flag, the field and the fix."""

    def __str__(self):
        text = super().__str__()
        return text.rsplit(_WORKER_MARKER, 1)[-1].strip() if _WORKER_MARKER in text else text
