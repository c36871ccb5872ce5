"""The notebooks run top to bottom (with small settings)."""

from pathlib import Path

from conftest import execute_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_quickstart_notebook_runs():
    nb = execute_notebook(NOTEBOOKS / "quickstart.ipynb",
                          parameters={"EPOCHS": 2, "NUM_TRAIN": 256, "IMAGE_SIZE": 32})
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "validation accuracy" in outputs
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the training curve and the predictions
