"""The bundled dataset: every toll figure in the seed documents, as a log."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_log() -> Path:
    """The installed path of the bundled log (read-only for the command line)."""
    return Path(str(resources.files(__package__) / "bundled.jsonl"))
