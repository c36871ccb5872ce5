"""notebooks/shapes_dataset.ipynb runs top to bottom and draws the scene grid."""

from pathlib import Path

from conftest import execute_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "shapes_dataset.ipynb"


def test_shapes_dataset_notebook_runs():
    nb = execute_notebook(NOTEBOOK, timeout=120, parameters={"NUM_SCENES": 4, "IMAGE_SIZE": 32})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the grid of scenes
    for task in ("classification", "binary", "multilabel", "regression", "captioning"):
        assert f"{task} " in text
    assert "image (4, 32, 32, 3)" in text and "<start>" in text
    for qtype in ("colour", "shape", "count", "existence", "relational"):
        assert qtype in text
