"""Training from recipes: end to end, reproducible, measured (tiny settings, seconds)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import keras
from mmzoo import training
from mmzoo.data import QUESTION_TYPES

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = ROOT / "recipes" / "tiny_vqa.toml"


def _event_tags(folder):
    import tensorflow as tf

    tags = set()
    for path in pathlib.Path(folder).glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags |= {v.tag for v in event.summary.value}
    return tags


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_run")
    return training.train(TINY, out, verbose=0)


def test_tiny_recipe_trains_end_to_end(tiny_run):
    result = tiny_run
    paths = {k: pathlib.Path(v) for k, v in result.paths.items()}
    # Checkpoints are loadable models that trained.
    best = keras.saving.load_model(paths["best_checkpoint"], safe_mode=True)
    last = keras.saving.load_model(paths["last_checkpoint"], safe_mode=True)
    assert last.optimizer.iterations.numpy() == 2 * 4  # 2 epochs of 64 / 16
    assert best.build_options == result.model.build_options
    # The returned model carries the best epoch's weights.
    for a, b in zip(best.get_weights(), result.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # TensorBoard scalars, train and validation.
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= _event_tags(
        paths["logs"] / "train")
    assert {"epoch_loss", "epoch_accuracy"} <= _event_tags(paths["logs"] / "validation")
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # History, state and metrics on disk match the result.
    history = json.loads(paths["history"].read_text())
    assert history == result.history and len(history["val_loss"]) == result.epochs_run == 2
    state = json.loads(paths["state"].read_text())
    assert state["epochs_done"] == 2 and state["best_epoch"] == result.best_epoch
    assert state["best"] == min(history["val_loss"])
    assert json.loads(paths["metrics"].read_text()) == result.metrics
    assert json.loads(paths["recipe"].read_text()) == result.recipe.to_dict()


def test_metrics_are_measured_per_question_type(tiny_run):
    metrics = tiny_run.metrics
    assert metrics["num_examples"] == 40
    for qtype in QUESTION_TYPES:
        assert 0.0 <= metrics[f"accuracy_{qtype}"] <= 1.0
    # The overall accuracy is the per-type accuracies weighted by their counts.
    data = training.load_evaluation_data(tiny_run.recipe)
    types = data.groups["question_type"]
    weighted = sum(metrics[f"accuracy_{q}"] * np.sum(types == i)
                   for i, q in enumerate(QUESTION_TYPES)) / len(types)
    assert metrics["accuracy"] == pytest.approx(weighted)
    probs = tiny_run.model.predict(data.inputs, verbose=0)["probabilities"]
    assert metrics["accuracy"] == pytest.approx(np.mean(probs.argmax(-1) == data.labels))
    # Preprocessor facts come with the result.
    assert tiny_run.image_size == 32 and tiny_run.label_names[0] == "red"
    assert tiny_run.tokenizer.sequence_length == 16


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    def weights(name, seed):
        result = training.train(TINY, tmp_path / name, epochs=1, seed=seed, verbose=0)
        return result.model.get_weights(), result.metrics

    a, metrics_a = weights("a", 3)
    b, metrics_b = weights("b", 3)
    c, _ = weights("c", 4)
    assert metrics_a == metrics_b
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c))


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.mark.parametrize("task", ["classification", "binary", "captioning"])
def test_tfds_source_gives_the_same_data_as_memory(task, tfds_dir):
    config = training.load_recipe(TINY).to_dict()
    config["task"] = task
    config["dataset"].update(num_train=24, num_validation=8, num_test=12)
    del config["dataset"]["text_field"], config["dataset"]["sequence_length"]  # per task
    if task == "captioning":
        config["model"] = {"image_branch": "cnn", "architecture": "inject"}
    config["evaluation"] = {}
    recipe = training.Recipe.from_dict(config)
    tfds_recipe = recipe.replace(source="tfds", data_dir=tfds_dir)
    memory = training.load_evaluation_data(recipe)
    built = training.load_evaluation_data(tfds_recipe)
    if task == "captioning":
        np.testing.assert_array_equal(memory.images, built.images)
        assert memory.references == built.references and len(built.references[0]) == 5
    else:
        for key in ("image", "text"):
            np.testing.assert_array_equal(memory.inputs[key], built.inputs[key])
        np.testing.assert_array_equal(memory.labels, built.labels)
        assert memory.groups.keys() == built.groups.keys() and len(built.groups) == 1
        for key in built.groups:
            np.testing.assert_array_equal(memory.groups[key], built.groups[key])
    # And it trains from the TFDS build: every row once per epoch.
    keras.utils.set_random_seed(0)
    data = training.load_training_data(tfds_recipe)
    rows = 24 * (5 if task == "captioning" else 1)
    assert data.num_train_examples == rows and data.steps_per_epoch == -(-rows // 16)
    assert sum(int(y.shape[0]) for _, y in data.train) == rows


@pytest.mark.parametrize("task, keys", [
    ("binary", {"accuracy", "auc", "loss", "accuracy_perturbation_none"}),
    ("multilabel", {"micro_f1", "binary_accuracy", "auc", "loss"}),
    ("regression", {"mae", "count_accuracy", "loss"}),
    ("captioning", {"bleu_1", "bleu_4", "cider_d"}),
])
def test_every_task_is_measured(task, keys):
    config = training.load_recipe(TINY).to_dict()
    config["task"] = task
    config["dataset"]["num_test"] = 12
    del config["dataset"]["text_field"], config["dataset"]["sequence_length"]  # per task
    config["evaluation"] = {}
    if task == "captioning":
        config["model"] = {"image_branch": "cnn", "image_filters": 4, "architecture": "inject",
                           "embedding_dim": 8, "text_units": 8}
    recipe = training.Recipe.from_dict(config)
    model = training.build_model_for(recipe)
    data = training.load_evaluation_data(recipe)
    info = training.load_training_data(recipe).info if task == "captioning" else None
    metrics = training.evaluate_model(model, data, recipe, info)
    assert keys <= set(metrics), metrics
    assert metrics["num_examples"] == 12
    assert all(np.isfinite(v) for k, v in metrics.items() if k != "auc")


def test_cli_train_writes_its_entry_in_the_run_folder_and_publish_copies_it(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    work, zoo = tmp_path / "run", tmp_path / "zoo"
    # A shipped recipe by name, from a folder without recipes/ (as on a fresh install).
    result = subprocess.run(
        [sys.executable, "-m", "mmzoo", "train", "tiny_vqa", "--work-dir", str(work),
         "--epochs", "1", "--seed", "5"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "accuracy_colour" in result.stdout and "mmzoo publish" in result.stdout
    out = work / "tiny_vqa"
    assert (work / "checkpoints" / "best.keras").exists()
    assert json.loads((work / "recipe.json").read_text())["training"]["seed"] == 5
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["task"] == "classification"
    assert metadata["architecture"]["image_branch"] == "cnn"
    assert metadata["recipe"]["training"]["epochs"] == 1
    assert metadata["metrics"] == json.loads((work / "metrics.json").read_text())
    assert "training_curve.png" in metadata["files"]
    assert "![training curve](training_curve.png)" in (out / "README.md").read_text()
    assert "minutes on" in (out / "README.md").read_text()
    # Nothing lands in the shipped zoo until it is published, explicitly.
    assert not (ROOT / "saved_models" / "tiny_vqa").exists()
    publish = [sys.executable, "-m", "mmzoo", "publish", str(work), "--to", str(zoo)]
    done = subprocess.run(publish, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (zoo / "tiny_vqa" / "metadata.json").read_bytes() == (out / "metadata.json").read_bytes()
    again = subprocess.run(publish, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 1 and "already exists" in again.stderr
    mine = tmp_path / "elsewhere" / "tiny_vqa"
    mine.mkdir(parents=True)
    (mine / "thesis.txt").write_text("mine")
    from mmzoo.zoo import publish_entry

    with pytest.raises(FileExistsError, match="is not a zoo entry"):
        publish_entry(out, mine.parent, overwrite=True)
    assert (mine / "thesis.txt").read_text() == "mine"
    assert publish_entry(out, zoo, overwrite=True) == zoo / "tiny_vqa"
    bad = subprocess.run([sys.executable, "-m", "mmzoo", "train", str(tmp_path / "nope.toml")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 1 and "mmzoo train: error: No recipe file" in bad.stderr
    assert "Traceback" not in bad.stderr


class _Stub:
    stop_training = False


def _feed(state, values):
    stops = []
    for epoch, value in enumerate(values, start=state.epochs_done):
        state.on_epoch_end(epoch, {"val_loss": value})
        stops.append(state.model.stop_training)
    return stops


def test_early_stopping_counts_from_the_best_epoch_and_survives_a_resume(tmp_path):
    from mmzoo.training.loop import RunState

    values = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7]  # best at epoch 2; 3 epochs without better
    whole = RunState(tmp_path / "a.json", "val_loss", {}, patience=3)
    whole.set_model(_Stub())
    assert _feed(whole, values[:5]) == [False, False, False, False, True]
    assert whole.stopped_early and whole.best_epoch == 2
    # Keras's own EarlyStopping stops at the same epoch on the same values.
    keras_stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)
    keras_stop.set_model(_Stub())
    keras_stop.on_train_begin()
    for epoch, value in enumerate(values[:5]):
        keras_stop.on_epoch_end(epoch, {"val_loss": value})
    assert keras_stop.model.stop_training and keras_stop.stopped_epoch == 4
    # A run killed after epoch 3 restores history, best and best_epoch from its
    # backup (as distribute.fit does) and stops at epoch 5 too, not at epoch 6.
    before = RunState(tmp_path / "b.json", "val_loss", {}, patience=3)
    before.set_model(_Stub())
    _feed(before, values[:3])
    resumed = RunState(tmp_path / "c.json", "val_loss", {}, patience=3)
    resumed.set_model(_Stub())
    resumed.history, resumed.epochs_done = before.history, before.epochs_done
    resumed.best, resumed.best_epoch = before.best, before.best_epoch
    assert _feed(resumed, values[3:5]) == [False, True]
    never = RunState(tmp_path / "d.json", "val_loss", {}, patience=0)
    never.set_model(_Stub())
    assert not any(_feed(never, values))
