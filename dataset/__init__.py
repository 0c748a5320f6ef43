"""Curation of the bundled dataset (not installed: the built log is)."""
