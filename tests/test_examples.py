"""The README's Python blocks and the example notebook run as written, so they never go stale."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "coastal-2025.ipynb"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, re.S | re.M)


def test_the_readme_python_blocks_run(tmp_path, monkeypatch):
    """Every ```python block of README.md runs, in order, in one namespace, in an empty folder."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert len(blocks) >= 4 and "## From Python" in text
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIMELINE_LOG", raising=False)
    namespace: dict = {"__name__": "readme"}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)
    assert (tmp_path / "my-log.jsonl").exists() and (tmp_path / "coastal-2025.html").exists()


def test_the_block_extractor_finds_each_block():
    """The extractor takes each fenced python block whole, and nothing of the sh blocks."""
    sample = "x\n```python\na = 1\n```\n```sh\nrm -rf /\n```\n```python\nb = 2\n\nc = 3\n```\n"
    assert python_blocks(sample) == ["a = 1\n", "b = 2\n\nc = 3\n"]


def test_the_notebook_is_committed_without_outputs():
    """No code cell of the notebook carries outputs or an execution count."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_the_notebook_runs(tmp_path, monkeypatch):
    """nbclient executes every cell of examples/coastal-2025.ipynb; it ends with the chart and the log's head."""
    # A kernel of this very Python (and its installed timeline), whatever kernels the machine has.
    spec = tmp_path / "jupyter" / "kernels" / "toll-timeline-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="toll-timeline-test", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)
    assert "head" in outputs[-1].text
