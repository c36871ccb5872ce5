"""Zoo entries: save, verify, find, load (folders, names, URLs), predict, evaluate, CLI."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import keras
import mmzoo
from mmzoo import zoo
from mmzoo.data import Preprocessor
from mmzoo.zoo import registry
from mmzoo.zoo.entry import EntryVerificationError

NAME = "vqa_tiny"


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny cnn+lstm VQA model trained for a few steps, and its entry folder."""
    keras.utils.set_random_seed(0)
    x, y, info = mmzoo.data.shapes_arrays("classification", 128, image_size=32)
    model = mmzoo.build_model("classification", image_branch="cnn", image_filters=4,
                              pooling="avg", text_branch="lstm", embedding_dim=8,
                              text_units=8, **info.model_options())
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # 4 steps
    pre = Preprocessor.from_task_info(info)
    dataset = zoo.shapes_dataset_metadata(image_size=32, num_test=48)
    metrics = zoo.measure_metrics(model, pre, dataset)
    path = zoo.save_entry(tmp_path_factory.mktemp("zoo") / NAME, model, pre, metadata={
        "description": "A tiny VQA model for the tests.", "dataset": dataset,
        "metrics": metrics, "recipe": {"epochs": 1, "batch_size": 32}})
    return {"model": model, "preprocessor": pre, "path": path, "x": x, "metrics": metrics}


@pytest.fixture
def entry_copy(trained, tmp_path):
    return Path(shutil.copytree(trained["path"], tmp_path / NAME))


# -- saving ---------------------------------------------------------------------


def test_entry_folder_holds_the_documented_files(trained):
    path = trained["path"]
    assert sorted(p.name for p in path.iterdir()) == [
        "README.md", "metadata.json", "model.keras", "preprocessor.json", "tokenizer.json"]
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["task"] == "classification" and meta["name"] == NAME
    assert meta["architecture"]["image_branch"] == "cnn"
    assert meta["architecture"]["text_branch"] == "lstm"
    assert meta["recipe"] == {"epochs": 1, "batch_size": 32}
    assert meta["dataset"]["name"] == "mmzoo_shapes" and meta["dataset"]["version"] == "1.0.0"
    assert meta["metrics"]["accuracy_colour"] == trained["metrics"]["accuracy_colour"]
    assert meta["parameters"]["total"] == trained["model"].count_params()
    assert set(meta["versions"]) >= {"keras", "tensorflow", "mmzoo"}
    assert set(meta["files"]) == {"README.md", "model.keras", "preprocessor.json",
                                  "tokenizer.json"}
    for rel, info in meta["files"].items():
        data = (path / rel).read_bytes()
        assert info == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    card = (path / "README.md").read_text()
    assert card.startswith(f"# {NAME}") and "| Size |" in card and "accuracy_colour" in card
    assert "model.keras" in card and "KB" in card
    # An entry is for inference: no optimizer state in the file.
    loaded = keras.saving.load_model(path / "model.keras", safe_mode=True)
    assert getattr(loaded, "optimizer", None) is None


def test_round_trip_predicts_identically(trained):
    entry = zoo.load(str(trained["path"]))
    assert entry.name == NAME and entry.task == "classification"
    assert entry.preprocessor == trained["preprocessor"]
    images, texts = trained["x"]["image"][:5], ["what colour is the circle?"] * 5
    expected = trained["model"].predict(trained["preprocessor"](images, texts), verbose=0)
    np.testing.assert_array_equal(
        entry.model.predict(entry.model_inputs(images, texts), verbose=0)["probabilities"],
        expected["probabilities"])
    results = entry.predict(images=images, texts=texts, top_k=4)
    assert results == trained["preprocessor"].decode(expected, top_k=4)
    assert len(results) == 5 and all(len(r) == 4 for r in results)
    label, score = results[0][0]
    assert label in mmzoo.data.ANSWERS and 0 <= score <= 1


def test_evaluate_remeasures_the_card(trained):
    entry = zoo.load(str(trained["path"]))
    measured = entry.evaluate()
    assert measured.keys() == entry.metadata["metrics"].keys()
    for key, value in entry.metadata["metrics"].items():
        assert measured[key] == pytest.approx(value, abs=1e-6), key
    assert {"accuracy_colour", "accuracy_shape", "accuracy_count", "accuracy_existence",
            "accuracy_relational"} <= set(measured)
    rows = zoo.compare_metrics({"accuracy": 0.5, "per_type": {"a": 1.0}}, {"accuracy": 0.4})
    assert rows == [("accuracy", 0.5, 0.4), ("per_type/a", 1.0, None)]


def test_save_refuses_to_overwrite_unless_asked(trained, entry_copy):
    model, pre = trained["model"], trained["preprocessor"]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        zoo.save_entry(entry_copy, model, pre, metadata={})
    (entry_copy / "README.md").write_text("old")  # replaced below, not patched
    zoo.save_entry(entry_copy, model, pre, metadata={"notes": "again"}, overwrite=True)
    assert zoo.load(str(entry_copy)).metadata["notes"] == "again"
    assert [p.name for p in entry_copy.parent.iterdir()] == [NAME]  # no leftovers
    user_folder = entry_copy.parent / "my_photos"
    user_folder.mkdir()
    (user_folder / "cat.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not a zoo entry"):
        zoo.save_entry(user_folder, model, pre, metadata={}, overwrite=True)
    assert (user_folder / "cat.jpg").exists()


class _Unregistered(keras.layers.Layer):  # deliberately not registered
    def call(self, x):
        return x


def test_failing_save_leaves_nothing(trained, tmp_path, monkeypatch):
    pre = trained["preprocessor"]
    inputs = {"image": keras.Input((32, 32, 3), name="image")}
    x = keras.layers.GlobalAveragePooling2D()(_Unregistered()(inputs["image"]))
    outputs = {"probabilities": keras.layers.Dense(20, activation="softmax")(x)}
    odd = keras.Model(inputs, outputs)
    image_pre = Preprocessor("classification", image_size=(32, 32, 3),
                             label_names=mmzoo.data.ANSWERS)
    with pytest.raises(Exception):
        zoo.save_entry(tmp_path / "odd", odd, image_pre, metadata={})
    assert list(tmp_path.iterdir()) == []

    def broken_save(self, folder):
        raise OSError("No space left on device")

    monkeypatch.setattr(Preprocessor, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        zoo.save_entry(tmp_path / "full", trained["model"], pre, metadata={})
    assert list(tmp_path.iterdir()) == []


def test_save_checks_model_preprocessor_and_metadata(trained, tmp_path):
    model, pre = trained["model"], trained["preprocessor"]
    with pytest.raises(ValueError,
                       match=r"Did you mean 'metrics'\?.*Received: metadata key 'metircs'"):
        zoo.save_entry(tmp_path / "a", model, pre, metadata={"metircs": {}})
    with pytest.raises(TypeError, match=r"metadata\['recipe'\]\['optimizer'\] must be JSON data"):
        zoo.save_entry(tmp_path / "a", model, pre,
                       metadata={"recipe": {"optimizer": keras.optimizers.Adam()}})
    wrong = Preprocessor("classification", pre.tokenizer, image_size=(64, 64, 3),
                         label_names=pre.label_names)
    with pytest.raises(ValueError, match=r"images of shape \(32, 32, 3\).*\(64, 64, 3\)"):
        zoo.save_entry(tmp_path / "a", model, wrong, metadata={})
    with pytest.raises(ValueError, match="Received: name='bad name'"):
        zoo.save_entry(tmp_path / "bad name", model, pre, metadata={})
    lam = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Lambda(lambda t: t * 2)])
    with pytest.raises(ValueError, match="Lambda"):
        zoo.save_entry(tmp_path / "a", lam, pre, metadata={})
    assert list(tmp_path.iterdir()) == []


# -- verification ---------------------------------------------------------------


def _assert_refused(path, file, words):
    with pytest.raises(EntryVerificationError) as error:
        zoo.load(str(path))
    assert error.value.file == file
    assert repr(file) in str(error.value) and words in str(error.value)


def test_changed_byte_is_refused(entry_copy):
    model_file = entry_copy / "model.keras"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    _assert_refused(entry_copy, "model.keras", "does not match its sha256")


def test_truncated_file_is_refused(entry_copy):
    tok = entry_copy / "tokenizer.json"
    tok.write_bytes(tok.read_bytes()[:-10])
    _assert_refused(entry_copy, "tokenizer.json", "truncated")


def test_missing_file_is_refused(entry_copy):
    (entry_copy / "preprocessor.json").unlink()
    _assert_refused(entry_copy, "preprocessor.json", "missing")


def test_extra_file_is_refused(entry_copy):
    (entry_copy / "extra").mkdir()
    (entry_copy / "extra" / "evil.py").write_text("import os")
    _assert_refused(entry_copy, "extra/evil.py", "does not list")


def test_broken_metadata_is_refused(entry_copy, tmp_path):
    (entry_copy / "metadata.json").write_text("{not json")
    _assert_refused(entry_copy, "metadata.json", "not valid JSON")
    with pytest.raises(FileNotFoundError, match="not a zoo entry"):
        zoo.load(str(tmp_path))


def test_model_is_loaded_when_the_entry_is_opened(entry_copy):
    """mmzoo.load verifies in full and loads the model up front: a later change of
    the file cannot reach the entry (it was refused before at the first use)."""
    entry = zoo.load(str(entry_copy))
    assert isinstance(entry.__dict__["model"], keras.Model)
    model_file = entry_copy / "model.keras"
    data = bytearray(model_file.read_bytes())
    data[-100] ^= 0xFF
    model_file.write_bytes(bytes(data))
    assert entry.predict(images=np.zeros((32, 32, 3), np.uint8), texts="what colour")
    _assert_refused(entry_copy, "model.keras", "does not match its sha256")


# -- names, saved_models/, MMZOO_HOME -------------------------------------------------


def test_saved_models_folder_is_beside_the_package():
    assert mmzoo.load is zoo.load and mmzoo.list_models is zoo.list_models
    assert registry.SAVED_MODELS == Path(mmzoo.__file__).resolve().parents[1] / "saved_models"


def _fake_entries(root, names):
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "metadata.json").write_text("{}")


def test_list_models_wildcards(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "SAVED_MODELS", tmp_path / "saved_models")
    monkeypatch.setenv("MMZOO_HOME", str(tmp_path / "home"))
    _fake_entries(tmp_path / "saved_models", ["vqa_cnn_lstm", "vqa_vgg16_lstm", "clip"])
    _fake_entries(tmp_path / "home" / "models", ["blip", "vqa_cnn_lstm"])
    (tmp_path / "saved_models" / "not_an_entry").mkdir()
    (tmp_path / "saved_models" / ".vqa.partial-1234").mkdir()  # an unfinished save
    assert mmzoo.zoo.list_models() == ["blip", "clip", "vqa_cnn_lstm", "vqa_vgg16_lstm"]
    assert zoo.list_models("vqa_*") == ["vqa_cnn_lstm", "vqa_vgg16_lstm"]
    assert zoo.list_models("*lstm*") == ["vqa_cnn_lstm", "vqa_vgg16_lstm"]
    assert zoo.list_models("?lip") == ["blip", "clip"]
    assert zoo.list_models("[bc]*") == ["blip", "clip"]
    assert zoo.list_models("VQA_*") == []
    assert zoo.list_models("nothing*") == []
    with pytest.raises(TypeError, match="wildcard"):
        zoo.list_models(3)


def test_load_by_name_from_saved_models_and_cache(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "SAVED_MODELS", tmp_path / "saved_models")
    monkeypatch.setenv("MMZOO_HOME", str(tmp_path / "home"))
    shutil.copytree(trained["path"], tmp_path / "home" / "models" / "cached_vqa")
    shutil.copytree(trained["path"], tmp_path / "saved_models" / "document_vqa")
    assert zoo.list_models() == ["cached_vqa", "document_vqa"]
    assert zoo.load("document_vqa").path == tmp_path / "saved_models" / "document_vqa"
    assert zoo.load("cached_vqa").path == tmp_path / "home" / "models" / "cached_vqa"
    with pytest.raises(ValueError) as error:
        zoo.load("docment_vqa")
    message = str(error.value)
    assert "Did you mean 'document_vqa'" in message
    assert "Received: name='docment_vqa'" in message


def _archive(folder, out, kind):
    if kind == "zip":
        with zipfile.ZipFile(out, "w") as z:
            for f in sorted(folder.iterdir()):
                z.write(f, f"{folder.name}/{f.name}")
    else:
        with tarfile.open(out, "w:gz") as t:
            t.add(folder, arcname=folder.name)
    return out, hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_url_download_is_hashed_extracted_once_and_cached(trained, tmp_path, monkeypatch, kind):
    home = tmp_path / "home"
    monkeypatch.setenv("MMZOO_HOME", str(home))
    archive, digest = _archive(trained["path"], tmp_path / f"{NAME}.{kind}", kind)
    url = archive.as_uri()

    with pytest.raises(ValueError, match="does not have the expected sha256"):
        zoo.load(url, sha256="0" * 64)
    assert not any(p.is_file() for p in (home / "downloads").rglob("*"))
    assert not (home / "models" / NAME).exists()

    entry = mmzoo.zoo.load(url, sha256=digest)
    assert entry.path == home / "models" / NAME
    stat = (entry.path / "model.keras").stat()
    assert zoo.list_models() == [NAME] or NAME in zoo.list_models()

    archive.unlink()  # a second download would fail: the source is gone

    def no_extraction(*args):
        raise AssertionError("extracted twice")

    real_extract = registry._extract
    monkeypatch.setattr(registry, "_extract", no_extraction)
    again = zoo.load(url, sha256=digest.upper())
    assert again.path == entry.path
    after = (again.path / "model.keras").stat()
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert len([p for p in home.rglob("model.keras")]) == 1
    assert again.predict(images=trained["x"]["image"][:1], texts="what shape is it?")[0]

    # A damaged cached copy is extracted again from the (hash-checked) download.
    monkeypatch.setattr(registry, "_extract", real_extract)
    (again.path / "tokenizer.json").write_text("damaged")
    assert zoo.load(url, sha256=digest).tokenizer == entry.tokenizer


def test_url_with_a_tampered_entry_is_refused(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("MMZOO_HOME", str(tmp_path / "home"))
    folder = Path(shutil.copytree(trained["path"], tmp_path / "src" / NAME))
    (folder / "tokenizer.json").write_text((folder / "tokenizer.json").read_text()
                                           .replace('"red"', '"der"'))
    archive, digest = _archive(folder, tmp_path / f"{NAME}.tar.gz", "tar.gz")
    with pytest.raises(EntryVerificationError, match="tokenizer.json"):
        zoo.load(archive.as_uri(), sha256=digest)
    assert not (tmp_path / "home" / "models" / NAME).exists()
    assert [p.name for p in (tmp_path / "home" / "models").iterdir()] == []


def test_load_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="64 hexadecimal"):
        zoo.load("https://example.com/a.tar.gz", sha256="abc")
    with pytest.raises(ValueError, match="archive of the entry folder"):
        zoo.load("https://example.com/model.keras")
    with pytest.raises(TypeError, match="entry name"):
        zoo.load(None)


# -- raw inputs -------------------------------------------------------------------


def test_predict_on_odd_raw_inputs(trained, tmp_path):
    from PIL import Image

    entry = zoo.load(str(trained["path"]))
    rng = np.random.default_rng(0)
    png = tmp_path / "scene.png"
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(png)
    images = [
        str(png),
        rng.integers(0, 256, (40, 50), dtype=np.uint8),           # grayscale
        rng.integers(0, 256, (10, 10, 4), dtype=np.uint8),        # RGBA
        np.full((1, 1, 3), 200, np.uint8),                       # 1x1
        np.full((2000, 2000, 3), 17, np.uint8),                  # huge
        Image.new("P", (64, 64)),                                # palette PIL image
        rng.uniform(0, 255, (32, 32, 3)).astype(np.float64),     # floats 0..255
        rng.integers(0, 2, (32, 32)).astype(bool),               # bool
    ]
    results = entry.predict(images=images, texts="", top_k=2)
    assert len(results) == len(images)
    assert all(len(r) == 2 and r[0][0] in mmzoo.data.ANSWERS for r in results)
    inputs = entry.preprocessor(images=images, texts=["", "", "", "", "", "", "", "?"])
    assert inputs["image"].shape == (8, 32, 32, 3) and inputs["image"].dtype == np.float32
    assert inputs["text"].shape == (8, 16) and not inputs["text"].any()
    with pytest.raises(TypeError, match=r"Received: texts\[1\]=None"):
        entry.predict(images=images[:2], texts=["a", None])
    with pytest.raises(TypeError, match="Received: texts=3"):
        entry.predict(images=images[:1], texts=3)
    with pytest.raises(ValueError, match=r"needs texts.*Received: texts=None"):
        entry.predict(images=images[:1])


# -- CLI --------------------------------------------------------------------------


def _mmzoo_all(commands, home):
    """Runs `mmzoo <args>` for each args tuple, side by side (each start imports TF)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MMZOO_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, "-m", "mmzoo", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
             for args in commands]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def test_cli_list_info_predict_evaluate(trained, tmp_path):
    from PIL import Image

    home = tmp_path / "home"
    shutil.copytree(trained["path"], home / "models" / NAME)
    image = tmp_path / "scene.png"
    Image.fromarray(trained["x"]["image"][0].astype(np.uint8)).save(image)

    listed, info, predicted, readable, evaluated, unknown = _mmzoo_all([
        ("list", "vqa_*"),
        ("info", NAME),
        ("predict", NAME, "--image", str(image), "--text", "what colour is the circle?",
         "--top-k", "2", "--json"),
        ("predict", NAME, "--image", str(image), "--text", "what colour is the circle?"),
        ("evaluate", NAME),
        ("info", "vqa_tiyn"),
    ], home)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert NAME in listed.stdout and "classification" in listed.stdout and "KB" in listed.stdout

    assert info.returncode == 0, info.stderr[-2000:]
    assert info.stdout.startswith(f"# {NAME}") and "Verified: 4 files" in info.stdout

    assert predicted.returncode == 0, predicted.stderr[-2000:]
    rows = json.loads(predicted.stdout)["predictions"]
    assert len(rows) == 1 and rows[0]["image"] == str(image) and len(rows[0]["result"]) == 2
    expected = zoo.load(str(trained["path"])).predict(images=str(image),
                                                       texts="what colour is the circle?",
                                                       top_k=2)
    assert [label for label, _ in rows[0]["result"]] == [label for label, _ in expected[0]]
    assert [s for _, s in rows[0]["result"]] == pytest.approx([s for _, s in expected[0]])
    lines = readable.stdout.splitlines()
    assert lines[0] == f"{image} | 'what colour is the circle?'" and len(lines) == 4
    assert lines[1].split() == [expected[0][0][0], f"{expected[0][0][1]:.3f}"]

    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    line = next(ln for ln in evaluated.stdout.splitlines() if ln.startswith("accuracy_colour"))
    card, measured = line.split()[1:3]
    assert card == measured == f"{trained['metrics']['accuracy_colour']:.4f}"
    low, _, high = line.split()[4:7]  # the near-tie range
    assert float(low) <= float(measured) <= float(high)
    assert "near ties: " in evaluated.stdout.lower() and "(the model computes in float32)" \
        in evaluated.stdout
    assert evaluated.stdout.strip().splitlines()[-1].startswith("Reproduced: every number")

    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert "Did you mean 'vqa_tiny'" in unknown.stderr.strip().splitlines()[-1]


def test_cli_evaluate_fails_on_a_card_it_does_not_reproduce(trained, tmp_path, capsys):
    from mmzoo.cli import main

    metrics = dict(trained["metrics"])
    metrics["accuracy"] = min(1.0, metrics["accuracy"] + 0.25) if metrics["accuracy"] < 0.5 \
        else metrics["accuracy"] - 0.25  # a card that claims what the model does not do
    path = zoo.save_entry(tmp_path / "claims", trained["model"], trained["preprocessor"],
                          metadata={"dataset": zoo.shapes_dataset_metadata(image_size=32,
                                                                           num_test=48),
                                    "metrics": metrics})
    assert main(["evaluate", str(path)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"Not reproduced: accuracy {metrics['accuracy']:.4f} on the card")
    # On fewer examples than the card's, nothing is claimed either way.
    assert main(["evaluate", str(path), "--examples", "8"]) == 0
    assert "reproduced" not in capsys.readouterr().out.lower()


# -- export --------------------------------------------------------------------------


def test_exported_entry_loads_with_tensorflow_hub(trained, tmp_path):
    import tensorflow_hub as hub

    import mmzoo.export

    entry = zoo.load(str(trained["path"]))
    out = tmp_path / "serving"
    mmzoo.export.export(entry, str(out), format="saved_model", verbose=False)
    module = hub.load(str(out))
    inputs = entry.model_inputs(trained["x"]["image"][:3], ["what colour is the circle?"] * 3)
    serve = module.signatures["serving_default"]
    got = serve(**{k: v for k, v in inputs.items()})
    (got,) = got.values()
    expected = entry.model.predict(inputs, verbose=0)["probabilities"]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("task", ["binary", "multilabel", "regression", "captioning"])
def test_other_tasks_round_trip(task, tmp_path):
    x, y, info = mmzoo.data.shapes_arrays(task, 32, image_size=32, sequence_length=8)
    options = dict(image_branch="cnn", image_filters=2, pooling="avg", embedding_dim=4,
                   **info.model_options())
    if task == "captioning":
        options["text_units"] = 4
    else:
        options["text_branch"] = "embedding"
    model = mmzoo.build_model(task, **options)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    pre = Preprocessor.from_task_info(info)
    dataset = zoo.shapes_dataset_metadata(image_size=32, num_test=8, sequence_length=8)
    metrics = zoo.measure_metrics(model, pre, dataset)
    entry = zoo.load(str(zoo.save_entry(tmp_path / task, model, pre,
                                        metadata={"dataset": dataset, "metrics": metrics})))
    texts = None if task == "captioning" else "a red circle"
    results = entry.predict(images=x["image"][:2], texts=texts)
    assert len(results) == 2
    if task == "binary":
        assert all(isinstance(p, float) and isinstance(b, bool) for p, b in results)
    elif task == "multilabel":
        assert all(s >= 0.5 and label in mmzoo.data.ATTRIBUTES for r in results for label, s in r)
    elif task == "regression":
        assert all(isinstance(v, float) for v in results)
    else:
        assert all(isinstance(c, str) for c in results)
    measured, ranges = entry.evaluate(ranges=True)
    assert measured == pytest.approx(metrics)
    assert not zoo.card_differences(metrics, measured, ranges)
    # Every metric of a task that decides (not a captioner's) has a near-tie range around it.
    assert bool(ranges) == (task != "captioning")
    for key, (low, high) in ((k, v) for k, v in ranges.items() if k != "near_ties"):
        assert low <= measured[key] <= high, key
