"""Reading images with a clear error: a missing, truncated or non-image file becomes a
ClevrRemvError naming the file and the fix, instead of PIL's traceback."""

import contextlib

from PIL import Image

from clevr_remv.errors import ClevrRemvError

# What PIL raises on files it cannot read or decode (truncated data, not an image, bad chunks).
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


@contextlib.contextmanager
def open_image(path, fix: str):
    """Yield the PIL image at ``path``; failures to open or decode it inside the ``with`` block
    raise ClevrRemvError("<path>: cannot be read as an image (<reason>); <fix>")."""
    try:
        with Image.open(path) as image:
            yield image
    except IMAGE_ERRORS as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ClevrRemvError(f"{path}: cannot be read as an image ({reason}); {fix}") from error
