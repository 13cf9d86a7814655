"""``python -m partita.cli``: the ``partita`` command."""

from partita.cli import main

main()
