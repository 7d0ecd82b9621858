"""``python -m sessions.cli``: the same as the ``sessions`` console script."""

from . import main

main()
