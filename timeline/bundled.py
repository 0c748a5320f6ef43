"""The bundled dataset as shipped: the built log, every toll figure in the seed documents.

The log lies at ``timeline/dataset/bundled.jsonl``, package data (a fixed path reports cite).
Its sources (the data files of each release, the reading rules and the build) live in
the repository's top-level ``dataset`` package, which is not installed: only that one
is a Python package called ``dataset``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_log() -> Path:
    """The installed path of the bundled log (read-only for the command line)."""
    return Path(str(resources.files(__package__) / "dataset" / "bundled.jsonl"))
