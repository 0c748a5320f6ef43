"""`python -m timeline` runs the command line, as the `timeline` script does.

The one import upwards, out of the library: this module is the program, never imported by it.
"""

from timeline_cli import main

main()
