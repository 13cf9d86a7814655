"""``python -m partita``: the ``partita`` command, for a Python without the console script."""

from partita.cli import main

main()
