"""notebooks/matching.ipynb runs top to bottom (small settings) and reports its measurements."""

import re
from pathlib import Path

from conftest import execute_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "matching.ipynb"
NUMBER = r"(\d\.\d{3})"


def test_matching_notebook_trains_evaluates_and_scores():
    nb = execute_notebook(NOTEBOOK, parameters={
        "NUM_TRAIN": 192, "NUM_VALIDATION": 64, "NUM_TEST": 256, "EPOCHS": 1,
        "IMAGE_SIZE": 32, "BATCH_SIZE": 64})
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    # Test accuracy, AUC and loss of each fused model and the text-only baseline.
    for name in ("concat", "film", "text only"):
        match = re.search(rf"^{name} +{NUMBER} +{NUMBER} +(\d+\.\d{{3}})$", outputs, re.M)
        assert match, (name, outputs[-3000:])
        assert 0.0 <= float(match.group(1)) <= 1.0 and 0.0 <= float(match.group(2)) <= 1.0
    assert re.search(r"film vs text only: [+-]\d\.\d{3} ROC AUC", outputs)
    # Accuracy per perturbation kind: the true captions and at least three edits.
    rows = re.findall(rf"^(none|colour|shape|size|count|relation|position) +\d+ +{NUMBER} +"
                      rf"{NUMBER} +{NUMBER}$", outputs, re.M)
    assert "none" in [r[0] for r in rows] and len(rows) >= 4, outputs[-3000:]
    # The new scene scored against its true caption and four edits, by every model.
    for what in ("true caption", "colour edited", "shape edited", "count edited", "size edited"):
        assert re.search(rf"^{what} +{NUMBER} +{NUMBER} +{NUMBER}$", outputs, re.M), what
    # The zoo's shapes_matching: its card per kind, then the same scene and edits.
    assert re.search(rf"^shapes_matching: test accuracy {NUMBER} on 5000 captions", outputs, re.M)
    verdicts = dict(re.findall(r"^(true caption|colour edited|shape edited|size edited) +"
                               r"\d\.\d{3} \((match|no match)\)$", outputs, re.M))
    assert verdicts == {"true caption": "match", "colour edited": "no match",
                        "shape edited": "no match", "size edited": "no match"}, outputs[-1500:]
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 5  # scenes, training curves, ROC, per-kind bars, the new scene
