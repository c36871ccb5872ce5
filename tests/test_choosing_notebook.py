"""notebooks/choosing_and_explaining.ipynb runs top to bottom (small settings): a search, then
explanations of shapes_vqa's answers, a wrong one included."""

import re
from pathlib import Path

from conftest import execute_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "choosing_and_explaining.ipynb"


def test_choosing_and_explaining_notebook():
    nb = execute_notebook(NOTEBOOK, parameters={
        "NUM_TRAIN": 128, "MAX_EPOCHS": 1, "MAX_TRIALS": 2, "TUNER": "random",
        "MAX_MINUTES": 5, "NUM_SCENES": 2000, "EXPLAIN_STEPS": 4})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert re.search(r"^2 trials, scored by val_accuracy \(maximised\); best: \{", text, re.M), text
    assert any("text/markdown" in o.get("data", {}) and "| trial | val_accuracy |" in
               o["data"]["text/markdown"] for o in outputs)
    assert 'name = "shapes_vqa_tuned"' in text  # the best recipe, with the recipe's data
    assert 'source = "stream"' in text and "num_train = 100000" in text
    right = float(re.search(r"^(\d+\.\d)% right on 2000 fresh scenes", text, re.M).group(1))
    assert right > 90  # the shipped entry, on fresh scenes
    for what in ("a colour question", "a relational question", "a wrong answer"):
        assert re.search(rf"^{what}: answer '\w+' \(truth '\w+'\); shares: image \d+%, "
                         rf"text \d+%; strongest word: '\w+'$", text, re.M), (what, text[-2000:])
    wrong = re.search(r"^a wrong answer: answer '(\w+)' \(truth '(\w+)'\)", text, re.M)
    assert wrong.group(1) != wrong.group(2)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4  # the search plot and three explanations
