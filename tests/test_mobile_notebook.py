"""notebooks/mobile_export.ipynb runs top to bottom (small settings) and prints real figures."""

import re
from pathlib import Path

from conftest import execute_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "mobile_export.ipynb"
VARIANTS = ("float32", "float16", "dynamic_range", "int8")


def test_mobile_export_notebook_exports_measures_and_answers(tmp_path):
    nb = execute_notebook(NOTEBOOK, parameters={
        "NUM_CALIBRATION": 20, "NUM_TEST": 40, "LATENCY_RUNS": 5, "OUT": str(tmp_path)})
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))

    # The table: one row per TFLite variant, with measured figures, and the Keras row.
    rows = dict(re.findall(
        r"^\| TFLite (\w+) \| ([\d.]+ MB \| [\d.]+ ms \| [\d.]+% \| (?:[\d.]+|nan)% \| "
        r"[\d.]+%) \|$", outputs, re.MULTILINE))
    assert set(rows) == set(VARIANTS), outputs[-3000:]
    assert re.search(r"^\| Keras float32 \(model\.keras\) \| [\d.]+ MB .* \| [\d.]+% \|$",
                     outputs, re.MULTILINE)
    for variant, row in rows.items():
        size, latency = re.match(r"([\d.]+) MB \| ([\d.]+) ms", row).groups()
        assert 0 < float(size) < 5 and float(latency) > 0, (variant, row)

    # The bar, measured: the int8 file is under 5 MB; accuracy verdict printed.
    size = re.search(r"int8 file: ([\d.]+) MB \(< 5 MB: yes\)", outputs)
    assert size and float(size.group(1)) < 5, outputs[-3000:]
    assert (tmp_path / "mobile_vqa_int8.tflite").stat().st_size < 5e6
    assert re.search(r"int8 test accuracy [\d.]+% vs Keras float [\d.]+%: [+-][\d.]+ points "
                     r"\(within 1 point: (yes|NO)\)", outputs)
    assert re.search(r"the bar (holds|does NOT hold) on these 40 test examples", outputs)

    # The exports' side files, which the "phone app" reads.
    for variant in VARIANTS:
        for suffix in (".tflite", ".vocab.txt", ".preprocessing.json"):
            assert (tmp_path / f"mobile_vqa_{variant}{suffix}").is_file()
    assert "Exported 'mmzoo_classification'" in outputs and "int8 calibrated on 10" in outputs

    # The plots: the comparison chart (also saved) and the raw vs model-input images.
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2
    assert (tmp_path / "mobile_export.png").stat().st_size > 10_000

    # The phone-style run: JSON-only tokenizer matches Python's; every variant answers
    # the raw PNG + typed question for both scenes, next to entry.predict.
    assert outputs.count("same ids as the Python tokenizer: True") == 2
    for variant in VARIANTS:
        answers = re.findall(rf"TFLite {variant} +answers: (\w+) [\d.]+, \w+ [\d.]+", outputs)
        assert len(answers) == 2, (variant, outputs[-3000:])
    keras_top = re.findall(r"entry\.predict +answers: (\w+) [\d.]+", outputs)
    assert len(keras_top) == 2

    # The SavedModel's raw endpoint (PNG bytes + strings, preprocessed in TF) gives
    # entry.predict's answers.
    assert re.search(r"endpoints: \[.*'serve_raw'.*'serving_default'\]", outputs)
    raw_top = re.findall(r"SavedModel serve_raw, '[^']+': (\w+) [\d.]+", outputs)
    assert raw_top == keras_top
