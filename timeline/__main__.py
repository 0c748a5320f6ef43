"""`python -m timeline` runs the command line, as the `timeline` script does."""

from .cli import main

main()
