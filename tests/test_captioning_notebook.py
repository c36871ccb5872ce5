"""notebooks/captioning.ipynb runs top to bottom (small settings) and reports BLEU."""

import re
from pathlib import Path

from conftest import execute_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "captioning.ipynb"


def test_captioning_notebook_trains_generates_and_scores():
    nb = execute_notebook(NOTEBOOK, parameters={
        "NUM_TRAIN_SCENES": 40, "EPOCHS": 1, "NUM_TEST_SCENES": 8, "TEXT_UNITS": 16,
        "BATCH_SIZE": 50, "BEAM_WIDTHS": (2,)})
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    match = re.search(r"test BLEU-4: (\d\.\d{3}) \((greedy|beam-2)\), CIDEr-D: (\d+\.\d{3})",
                      outputs)
    assert match, outputs[-2000:]
    assert 0.0 <= float(match.group(1)) <= 1.0
    assert re.search(r"greedy +\d\.\d{3} +\d\.\d{3}", outputs)  # the BLEU-1.. table
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1
