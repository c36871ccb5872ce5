"""The `mmzoo` command line, run as a user runs it (a subprocess)."""

import os
import re
import subprocess
import sys

import numpy as np

import keras
import mmzoo


def _mmzoo(*args, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "mmzoo", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_version_and_help():
    version = _mmzoo("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"mmzoo {mmzoo.__version__}"
    bare = _mmzoo()
    assert bare.returncode == 2 and "demo" in bare.stdout


def test_bad_arguments_are_one_clear_line():
    result = _mmzoo("demo", "--steps", "0")
    assert result.returncode == 1
    assert "mmzoo demo: error: The demo needs steps >= 1" in result.stderr
    assert "Traceback" not in result.stderr
    usage = _mmzoo("demo", "--image-size", "48")
    assert usage.returncode == 2 and "invalid choice: 48" in usage.stderr


def test_demo_trains_reports_and_saves(tmp_path):
    out = tmp_path / "demo"
    result = _mmzoo("demo", "--out", str(out), "--steps", "3", "--batch-size", "8",
                    "--examples", "32")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mmzoo demo summary" in result.stdout
    assert "eval accuracy" in result.stdout and "majority answer" in result.stdout
    assert "answers given" in result.stdout and "per type" in result.stdout
    assert "Total params" in result.stdout  # the model summary
    model = keras.saving.load_model(out / "demo_model.keras", safe_mode=True)
    assert model.name == "demo_model"
    assert model.build_options["fusion"] == "film" and model.build_options["film_blocks"] == 2
    assert model.optimizer.iterations.numpy() == 3  # it did train, 3 steps
    assert (out / "demo_model.keras").stat().st_size < 2_000_000  # not a 178 MB VGG16 file
    png = (out / "training_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # Three steps cannot beat the majority answer, and the summary says so.
    assert "FAILED: not clearly above the majority answer" in result.stdout
    assert "FAILED: trained model beats the majority answer" in result.stdout
    # The zoo part: the default entry answered, and was exported with parity checks.
    assert "zoo entry        mobile_vqa:" in result.stdout
    assert (out / "answers.png").read_bytes()[:4] == b"\x89PNG"
    # The captioner captioned the same 8 scenes: a sentence of shape words each.
    assert "captioner        shapes_captioner: card BLEU-4" in result.stdout
    part = result.stdout.split("captions the same scenes")[1].split("Exporting")[0]
    captions = [line.strip() for line in part.splitlines()[1:] if line.startswith("  ")
                and not line.strip().startswith("a reference:")]
    assert len(captions) == 8
    assert all(any(w in c.split() for w in ("shape", "shapes", "circle", "square", "cross",
                                             "triangle", "diamond")) for c in captions)
    assert "int8 vs float: test accuracy on 2000 test questions" in result.stdout
    assert "export           SavedModel:" in result.stdout
    assert "serving_default max |diff|" in result.stdout
    assert "export           TFLite int8:" in result.stdout and "litert agreement" in result.stdout
    assert (out / "export" / "saved_model" / "saved_model.pb").exists()
    assert (out / "export" / "mobile_vqa_int8.tflite").stat().st_size < 5_000_000


def test_demo_is_reproducible(tmp_path):
    from mmzoo.demo import run_demo

    kwargs = dict(steps=2, batch_size=8, num_examples=16, image_size=32, entry=None, verbose=0)
    a = run_demo(out=str(tmp_path / "a"), **kwargs)
    b = run_demo(out=str(tmp_path / "b"), **kwargs)
    assert a["eval_loss_after"] == b["eval_loss_after"]
    wa = keras.saving.load_model(a["model_path"]).get_weights()
    wb = keras.saving.load_model(b["model_path"]).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))


def test_cli_int8_export_of_an_entry_calibrates_on_its_own_validation_scenes(tmp_path):
    out = tmp_path / "phone.tflite"
    result = _mmzoo("export", "mobile_vqa", str(out), "--quantization", "int8")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1000 validation examples of the entry's dataset" in result.stdout
    assert re.search(r"litert +agreement [\d.]+% \(>= 97%\)", result.stdout)
    assert out.stat().st_size > 0
    # A plain .keras file has no dataset: int8 still needs --data.
    model_file = tmp_path / "m.keras"
    mmzoo.load("mobile_vqa").model.save(model_file)
    bare = _mmzoo("export", str(model_file), str(tmp_path / "b.tflite"), "--quantization", "int8")
    assert bare.returncode == 1 and "needs --data NPZ" in bare.stderr
