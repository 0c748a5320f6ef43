"""The bundled dataset as shipped: the built log, every toll figure in the seed documents.

Its sources (the data files of each release, the reading rules and the build) live in
the repository's top-level ``dataset/`` folder, which is not installed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_log() -> Path:
    """The installed path of the bundled log (read-only for the command line)."""
    return Path(str(resources.files(__package__) / "bundled.jsonl"))
