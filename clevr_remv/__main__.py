"""Allow ``python -m clevr_remv``."""

from clevr_remv.cli import main

main()
