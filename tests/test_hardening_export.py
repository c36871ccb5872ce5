"""Issue 14, hardening of exports: what overwrite may replace, what a kill leaves
behind, mixed precision, and the batch size of exported files.

The models are tiny and untrained: these tests are about files, processes,
dtypes and shapes, not about accuracy (test_export.py covers parity).
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

import keras
import mmzoo
from mmzoo.export import _io

IMAGE_SHAPE = (16, 16, 3)
SEQUENCE_LENGTH = 8


def _build(task="classification", **options):
    defaults = dict(image_branch="cnn", image_shape=IMAGE_SHAPE, image_filters=4,
                    text_branch="lstm", vocab_size=20, sequence_length=SEQUENCE_LENGTH,
                    embedding_dim=8, text_units=8)
    if task in ("classification", "multilabel"):
        defaults["num_classes"] = 3
    defaults.update(options)
    if defaults["text_branch"] is None:
        for key in ("vocab_size", "sequence_length", "embedding_dim", "text_units"):
            defaults.pop(key)
    elif defaults["text_branch"] != "lstm":
        defaults.pop("text_units")
    return mmzoo.build_model(task, **defaults)


def _inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.uniform(0, 255, (n,) + IMAGE_SHAPE).astype("float32"),
            "text": rng.integers(1, 20, (n, SEQUENCE_LENGTH)).astype("int32")}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return _build()


def _dead_pid():
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ------------------------------------------------ 1. overwrite replaces only mmzoo's


def test_overwrite_never_replaces_a_folder_of_the_users(model, tmp_path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.txt").write_text("four years of work")
    with pytest.raises(FileExistsError, match="is not an mmzoo export") as info:
        mmzoo.export(model, folder, overwrite=True, verbose=False)
    assert "Received: path=" in str(info.value) and "thesis.txt" in str(info.value)
    assert os.listdir(folder) == ["thesis.txt"]
    assert (folder / "thesis.txt").read_text() == "four years of work"
    assert sorted(os.listdir(tmp_path)) == ["thesis"]  # no staging folder left either


@pytest.mark.parametrize("name,content", [
    ("model.tflite", b"my notes, not a model"),
    ("model.preprocessing.json", b'{"my": "settings"}'),
    ("model.vocab.txt", b"my word list\n"),
])
def test_overwrite_never_replaces_a_file_of_the_users_at_a_tflite_path(
        model, tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(FileExistsError, match="is not an mmzoo export"):
        mmzoo.export(model, tmp_path / "model.tflite", format="tflite", overwrite=True,
                     verbose=False)
    assert os.listdir(tmp_path) == [name] and (tmp_path / name).read_bytes() == content


def test_overwrite_replaces_an_earlier_export_but_not_a_file_added_to_it(model, tmp_path):
    path = tmp_path / "serving"
    mmzoo.export(model, path, parity=None, verbose=False)
    assert _io.foreign_reason(path) is None
    report = mmzoo.export(model, path, parity=None, overwrite=True, verbose=False)
    assert report.path == str(path) and (path / "saved_model.pb").exists()

    (path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="'notes.txt', which no mmzoo export writes"):
        mmzoo.export(model, path, parity=None, overwrite=True, verbose=False)
    assert (path / "notes.txt").read_text() == "mine"

    tflite = tmp_path / "phone" / "model.tflite"
    mmzoo.export(model, tflite, format="tflite", parity=None, verbose=False)
    mmzoo.export(model, tflite, format="tflite", parity=None, overwrite=True, verbose=False)
    assert sorted(os.listdir(tflite.parent)) == ["model.preprocessing.json", "model.tflite"]


def test_what_counts_as_an_mmzoo_export(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _io.foreign_reason(empty) is None
    assert _io.foreign_reason(tmp_path / "missing") is None
    captioner = tmp_path / "captioner"
    captioner.mkdir()
    (captioner / "captioner.json").write_text(json.dumps({"format": "mmzoo-tflite-captioner"}))
    (captioner / "encoder.tflite").write_bytes(b"\0\0\0\0TFL3")
    assert _io.foreign_reason(captioner) is None
    (captioner / "draft.docx").write_bytes(b"x")
    assert "draft.docx" in _io.foreign_reason(captioner)
    # A SavedModel that some other tool wrote is not mmzoo's to replace.
    other = tmp_path / "other_saved_model"
    other.mkdir()
    (other / "saved_model.pb").write_bytes(b"x")
    (other / "variables").mkdir()
    assert _io.foreign_reason(other) is not None
    link = tmp_path / "link"
    link.symlink_to(empty)
    assert "symbolic link" in _io.foreign_reason(link)


def test_captioner_saved_model_is_marked_as_mmzoo_export(tmp_path):
    folder = tmp_path / "sm"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"x")
    assert _io.foreign_reason(folder) is not None
    _io.write_export_marker(str(folder), "captioner")
    assert (folder / "assets.extra" / _io.EXPORT_MARKER).exists()
    assert _io.foreign_reason(folder) is None


# ------------------------------------------------------ 2. leftovers after a kill


def test_staging_folder_says_it_is_partial(tmp_path):
    with _io.Staging([tmp_path / "sm"], overwrite=False) as staging:
        name = os.path.basename(staging.dir)
        assert name.startswith(".sm.partial-") and f"-{os.getpid()}-" in name
        marker = json.loads(open(staging.path(_io.PARTIAL_MARKER)).read())
        assert marker["format"] == "mmzoo-partial-export" and marker["pid"] == os.getpid()
        assert "unfinished" in marker["note"].lower()
        # A staging folder of a live process is left alone by other exports.
        assert _io.sweep_partials(str(tmp_path)) == []
    assert os.listdir(tmp_path) == []


def _fake_staging(parent, name, pid, journal=None):
    folder = parent / f".{name}.partial-{pid}-0123abcd"
    folder.mkdir()
    import socket

    (folder / _io.PARTIAL_MARKER).write_text(json.dumps(
        {"format": "mmzoo-partial-export", "pid": pid, "host": socket.gethostname()}))
    (folder / "saved_model").mkdir()
    (folder / "saved_model" / "saved_model.pb").write_bytes(b"looks complete")
    if journal is not None:
        (folder / _io.JOURNAL).write_text(json.dumps(journal))
    return folder


def test_next_export_removes_partial_folders_of_dead_processes(model, tmp_path):
    dead = _fake_staging(tmp_path, "sm", _dead_pid())
    alive = _fake_staging(tmp_path, "other", os.getppid())
    legacy = tmp_path / ".sm.partial-ab12cd34"
    legacy.mkdir()
    (legacy / "saved_model-spec.json").write_text("{}")
    old = time.time() - 2 * _io.LEGACY_MIN_AGE_S
    os.utime(legacy, (old, old))
    young_legacy = tmp_path / ".x.partial-zz12cd34"
    young_legacy.mkdir()
    (young_legacy / "tflite-spec.json").write_text("{}")
    mmzoo.export(model, tmp_path / "sm", parity=None, verbose=False)
    names = sorted(os.listdir(tmp_path))
    assert dead.name not in names and legacy.name not in names
    assert alive.name in names and young_legacy.name in names  # maybe still at work
    assert "sm" in names


def test_a_commit_killed_halfway_is_rolled_back_not_lost(tmp_path):
    """A kill between moving the old export aside and the new one in: the old comes back."""
    destination = tmp_path / "model.tflite"
    side = tmp_path / "model.preprocessing.json"
    pid = _dead_pid()
    folder = tmp_path / f".model.tflite.partial-{pid}-0123abcd"
    journal = {"state": "moving",
               "backups": [[str(folder / "old-0"), str(side)],
                           [str(folder / "old-1"), str(destination)]],
               "moves": [[str(folder / "model.preprocessing.json"), str(side)],
                         [str(folder / "model.tflite"), str(destination)]]}
    _fake_staging(tmp_path, "model.tflite", pid, journal)
    # The old export moved aside, the new side file already in place, the new model not.
    (folder / "old-0").write_text('{"inputs": {}, "outputs": [], "signature": "old"}')
    (folder / "old-1").write_bytes(b"\0\0\0\0TFL3 old model")
    side.write_text('{"inputs": {}, "outputs": [], "signature": "new"}')
    (folder / "model.tflite").write_bytes(b"\0\0\0\0TFL3 new model")
    assert _io.sweep_partials(str(tmp_path)) == [str(folder)]
    assert sorted(os.listdir(tmp_path)) == ["model.preprocessing.json", "model.tflite"]
    assert destination.read_bytes().endswith(b"old model")
    assert json.loads(side.read_text())["signature"] == "old"


_KILLED_EXPORT = textwrap.dedent("""
    import sys, mmzoo
    import mmzoo.export._io as io
    model = mmzoo.build_model("classification", image_branch="cnn", image_shape=(16, 16, 3),
                              image_filters=4, text_branch="lstm", vocab_size=20,
                              sequence_length=8, embedding_dim=8, text_units=8, num_classes=3)
    real = io._Worker.run
    def run(self, spec_path, timeout):
        print("WORKER", self.process.pid, flush=True)
        return real(self, spec_path, timeout)
    io._Worker.run = run
    mmzoo.export(model, sys.argv[1], format="tflite", quantization="float16", verbose=False)
""")


def _process_exists(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_export_leaves_nothing_that_looks_finished_and_no_worker(tmp_path):
    out = tmp_path / "out"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "TF_CPP_MIN_LOG_LEVEL": "3"}
    parent = subprocess.Popen([sys.executable, "-c", _KILLED_EXPORT, str(out / "m.tflite")],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = parent.stdout.readline()  # the conversion has started in the worker
        assert line.startswith("WORKER"), line
        worker = int(line.split()[1])
        assert _process_exists(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
        for _ in range(100):
            if not _process_exists(worker):
                break
            time.sleep(0.1)
        assert not _process_exists(worker), "the converter outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
    # TensorFlow's autograph leaves files there too; no mmzoo-export-worker-* folder.
    assert [n for n in os.listdir(scratch) if n.startswith("mmzoo")] == []
    left = os.listdir(out)
    assert not os.path.exists(out / "m.tflite")
    assert len(left) == 1 and left[0].startswith(f".m.tflite.partial-{parent.pid}-")
    assert (out / left[0] / _io.PARTIAL_MARKER).exists()
    assert _io.sweep_partials(str(out)) == [str(out / left[0])]
    assert os.listdir(out) == []


def test_legacy_worker_log_folders_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(_io.tempfile, "gettempdir", lambda: str(tmp_path))
    stale = tmp_path / "mmzoo-export-worker-abcd1234"
    stale.mkdir()
    (stale / "log.txt").write_text("old log")
    in_use = tmp_path / "mmzoo-export-worker-efgh5678"
    in_use.mkdir()
    with open(in_use / "log.txt", "w"):
        other = tmp_path / "mmzoo-export-worker-ijkl9012"
        other.mkdir()
        (other / "mine.txt").write_text("not a log folder")
        assert _io.sweep_worker_dirs() == [str(stale)]
    assert sorted(os.listdir(tmp_path)) == [in_use.name, other.name]


# ---------------------------------------------------------------- 6. mixed precision


@pytest.fixture
def mixed_precision():
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("task,options", [
    ("classification", {}),
    ("binary", dict(text_branch="embedding")),
    ("multilabel", dict(fusion="late")),
    ("regression", dict(fusion="hybrid", text_branch="embedding")),
    ("classification", dict(fusion="late", decision_rule="product", text_branch="embedding")),
    ("classification", dict(text_branch=None)),
])
def test_heads_output_float32_under_mixed_precision(mixed_precision, task, options):
    model = _build(task, **options)
    assert model.layers[-1].dtype_policy.name == "float32"
    (output,) = model.outputs
    assert output.dtype == "float32"
    x = {k: v for k, v in _inputs(2).items() if k in model.input}
    (prediction,) = model.predict(x, verbose=0).values()
    assert prediction.dtype == np.float32
    # The rest of the model does compute in float16.
    assert any(layer.compute_dtype == "float16" for layer in model.layers)


def test_vote_fusion_outputs_float32_under_mixed_precision(mixed_precision):
    from mmzoo.fusion.decision import VoteFusion

    layer = VoteFusion([1.0, 2.0])
    out = layer([keras.ops.ones((2, 3)), keras.ops.zeros((2, 3))])
    assert layer.compute_dtype == "float32" and keras.backend.standardize_dtype(out.dtype) == "float32"


def test_mixed_precision_model_exports_to_tflite_and_saved_model(mixed_precision, tmp_path):
    keras.utils.set_random_seed(0)
    model = _build()
    report = mmzoo.export(model, tmp_path / "m.tflite", format="tflite", verbose=False)
    assert report.passed and report.check("litert").max_abs_diff <= 1e-5
    assert any("mixed-precision" in note for note in report.notes)
    report = mmzoo.export(model, tmp_path / "sm", verbose=False)
    assert report.passed
    loaded = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    out = loaded(**{k: tf.constant(v) for k, v in _inputs(3).items()})
    assert out["probabilities"].dtype == tf.float32
    # The user's model is left as it was.
    assert any(layer.compute_dtype == "float16" for layer in model.layers)


def test_mixed_precision_captioner_export_says_what_to_do(mixed_precision):
    from mmzoo.export.captioning import _check_model

    class FakeCaptioner(keras.Model):
        encode = decode_step = None

    fake = FakeCaptioner()
    with pytest.raises(ValueError, match=r"float32 only.*mixed_float16") as info:
        _check_model(fake)
    assert len(str(info.value).splitlines()) == 1
    assert "set_global_policy('float32')" in str(info.value)


# -------------------------------------------------------- 7. batch of exported files


def test_static_batch_saved_model_names_its_batch_at_the_signature(model, tmp_path):
    path = tmp_path / "sm"
    report = mmzoo.export(model, path, batch_size=2, verbose=False)
    assert report.passed
    loaded = tf.saved_model.load(str(path))
    serving = loaded.signatures["serving_default"]
    x = {k: tf.constant(v) for k, v in _inputs(5).items()}
    # What TF Serving and the C API do: feed the tensors without Python's check.
    with pytest.raises(tf.errors.InvalidArgumentError, match="exported_with_batch_size_2"):
        _, specs = serving.structured_input_signature
        serving._call_flat([x[name] for name in sorted(specs)], serving.captured_inputs)
    two = {k: v[:2] for k, v in x.items()}
    np.testing.assert_allclose(serving(**two)["probabilities"].numpy(),
                               model.predict({k: v.numpy() for k, v in two.items()},
                                             verbose=0)["probabilities"], atol=1e-5)


def test_dynamic_batch_tflite_resizes(model, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    path = tmp_path / "m.tflite"
    report = mmzoo.export(model, path, format="tflite", batch_size=None, verbose=False)
    assert report.passed and report.batch_size is None
    assert "image float32(-1, 16, 16, 3)" in report.endpoints["serving_default"]
    config = json.loads((tmp_path / "m.preprocessing.json").read_text())
    assert config["batch_size"] is None
    x = _inputs(5)
    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    out = runner(**x)["probabilities"]
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out, model.predict(x, verbose=0)["probabilities"], atol=1e-5)
    assert not report.custom_ops  # builtins only, resizable


def test_default_tflite_is_static_batch_one(model, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    path = tmp_path / "m.tflite"
    report = mmzoo.export(model, path, format="tflite", parity=None, verbose=False)
    assert report.batch_size == 1
    details = Interpreter(model_path=str(path)).get_signature_runner(
        "serving_default").get_input_details()
    assert all(list(d["shape_signature"])[0] == 1 for d in details.values())
    # mmzoo's own runner feeds a static file batch by batch.
    from mmzoo.export.tflite import run_tflite

    assert run_tflite(str(path), _inputs(3))["probabilities"].shape == (3, 3)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, "8", True, "dynamic"])
def test_bad_batch_sizes_are_refused(model, tmp_path, batch_size):
    with pytest.raises(ValueError, match=r"batch_size.*Received: batch_size="):
        mmzoo.export(model, tmp_path / "sm", batch_size=batch_size, verbose=False)
    assert os.listdir(tmp_path) == []


def test_cli_batch_size_takes_dynamic():
    import argparse

    from mmzoo.export import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    parse = lambda *a: parser.parse_args(["m.keras", "out", *a]).batch_size  # noqa: E731
    assert parse() == "auto" and parse("--batch-size", "dynamic") is None
    assert parse("--batch-size", "4") == 4
    with pytest.raises(SystemExit):
        parse("--batch-size", "0")
