"""notebooks/inspect_curation.ipynb runs top to bottom against the small quickstart output."""
from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "inspect_curation.ipynb"


@pytest.mark.slow
def test_notebook_executes_against_the_small_demo(small_demo, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("WORLDCLIP_DEMO", str(small_demo))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "rows_in" in text and "kept_images" in text and "8 samples shown" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
