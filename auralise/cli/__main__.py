"""``python -m auralise.cli``: the same as the ``auralise`` command."""

from auralise.cli import main

main()
