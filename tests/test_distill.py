"""Cross-modal distillation (training.distill_*) and freezing (training.freeze)."""

import json
import os

import keras
import numpy as np
import pytest

from mmzoo import training
from mmzoo.data import speech
from mmzoo.modalities import branch_of
from mmzoo.training import Recipe, RecipeError
from mmzoo.training.distill import FeatureDistiller
from mmzoo.training.warm_start import layers_by_path

needs_espeak = pytest.mark.skipif(
    speech.shutil.which(speech.ESPEAK) is None and not os.environ.get("CI"),
    reason="espeak-ng is not installed (apt-get install espeak-ng)")


def _dense(inputs, units, name):
    x = keras.Input((inputs,), name=f"{name}_in")
    return keras.Model(x, keras.layers.Dense(units, name=f"{name}_dense")(x), name=name)


def test_the_student_learns_the_teachers_features_and_only_the_student_trains():
    rng = np.random.default_rng(0)
    teacher, student = _dense(4, 3, "teacher"), _dense(6, 3, "student")
    a = rng.normal(size=(256, 4)).astype("float32")
    # The student sees the teacher's input (and noise it must learn to ignore).
    b = np.concatenate([a, rng.normal(size=(256, 2))], axis=1).astype("float32")
    before = [w.copy() for w in teacher.get_weights()]
    distiller = FeatureDistiller(student, teacher, student_input="b", teacher_input="a")
    distiller.compile(optimizer=keras.optimizers.Adam(0.02))
    x = {"a": a, "b": b}
    first = distiller.evaluate(x, verbose=0, return_dict=True)
    history = distiller.fit(x, epochs=150, batch_size=32, verbose=0).history
    last = distiller.evaluate(x, verbose=0, return_dict=True)
    assert last["loss"] < 1e-3 * first["loss"] and last["cosine"] > 0.99
    assert history["loss"][-1] < history["loss"][0]
    for old, new in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(distiller(x).numpy(), teacher(a).numpy(), atol=0.05)


def test_features_of_another_shape_are_refused_with_both_shapes():
    with pytest.raises(ValueError, match=r"student 'student' gives \(5,\), teacher 'teacher' "
                                         r"gives \(3,\)"):
        FeatureDistiller(_dense(6, 5, "student"), _dense(4, 3, "teacher"), "b", "a")


SPOKEN = {
    "name": "spoken", "task": "classification",
    "dataset": {"source": "memory", "problem": "spoken_vqa", "image_size": 16,
                "num_train": 32, "num_validation": 8, "num_test": 12, "seed": 3},
    "model": {"image_branch": "cnn", "image_filters": 2, "text_branch": "none",
              "audio_branch": "gru", "audio_units": 8, "audio_mel_bins": 8,
              "fusion": "concat"},
    "training": {"epochs": 1, "batch_size": 16},
}


def _spoken(**training_keys):
    config = json.loads(json.dumps(SPOKEN))
    config["training"].update(training_keys)
    return Recipe.from_dict(config)


@pytest.mark.parametrize("keys, expected", [
    ({"freeze": "copied"}, "training.freeze='copied' freezes the layers `init_from` starts"),
    ({"freeze": "all"}, "training.freeze must be one of 'none', 'copied'"),
    ({"distill_from": "text"}, "needs training.distill_from, distill_to and distill_epochs"),
    ({"distill_from": "text", "distill_to": "audio", "distill_epochs": 1},
     "names a branch of the `init_from` model"),
    ({"distill_from": "audio", "distill_to": "text", "distill_epochs": 1,
      "init_from": "shapes_vqa"}, "training.distill_to must be a modality of the model "
                                  "('image', 'audio'). Received: distill_to='text'"),
    ({"distill_from": "smell", "distill_to": "audio", "distill_epochs": 1},
     "training.distill_from must be one of 'image', 'text', 'audio'"),
    ({"distill_learning_rate": 0}, "training.distill_learning_rate must be a number > 0"),
])
def test_bad_transfer_keys_fail_early_and_clearly(keys, expected):
    with pytest.raises(RecipeError) as info:
        _spoken(**keys)
    assert expected in str(info.value)


@needs_espeak
def test_a_spoken_model_is_distilled_from_a_written_one_and_the_copied_layers_stay(
        tmp_path, monkeypatch):
    monkeypatch.setenv("MMZOO_SPEECH_CACHE", str(tmp_path / "speech"))
    # The teacher: a written-VQA model whose text feature has the student's size (8).
    teacher_recipe = Recipe.from_dict({
        **SPOKEN, "name": "written",
        "dataset": {**SPOKEN["dataset"], "problem": "vqa"},
        "model": {"image_branch": "cnn", "image_filters": 2, "text_branch": "gru",
                  "embedding_dim": 4, "text_units": 8, "fusion": "concat"}})
    teacher = training.train(teacher_recipe, tmp_path / "teacher", verbose=0).model
    path = str(tmp_path / "teacher.keras")
    teacher.save(path)
    recipe = _spoken(init_from=path, freeze="copied", distill_from="text",
                     distill_to="audio", distill_epochs=2, distill_learning_rate=1e-2)
    result = training.train(recipe, tmp_path / "run", verbose=0)

    done = result.distillation
    assert done.student == "audio_gru" and done.teacher == "teacher.keras/text_gru"
    assert done.epochs == 2 and not done.resumed
    assert len(done.history["loss"]) == 2 and len(done.history["val_cosine"]) == 2
    assert 0 < done.seconds <= result.training_seconds
    # Copied layers (image branch, head) are frozen: the teacher's weights exactly.
    source = dict(layers_by_path(teacher))
    copied = result.warm_start.copied
    assert "head_softmax" in copied and any(p.startswith("image_cnn/") for p in copied)
    for path_, layer in layers_by_path(result.model):
        if path_ in copied:
            assert not layer.trainable
            for a, b in zip(layer.get_weights(), source[path_].get_weights()):
                np.testing.assert_array_equal(a, b)
    # The student really learned the teacher's features: closer than at the start.
    student = branch_of(result.model, "audio")
    fresh = branch_of(training.build_run(recipe).model, "audio")
    data = training.load_evaluation_data(recipe)
    from mmzoo.data import pipeline

    x, _, _ = pipeline.shapes_arrays("spoken_vqa", 12, image_size=16, seed=3, split="test",
                                     tokenizer=result.tokenizer)
    target = branch_of(teacher, "text")(x["text"]).numpy()
    error = np.mean((student(x["audio"]).numpy() - target) ** 2)
    assert error < np.mean((fresh(x["audio"]).numpy() - target) ** 2)
    assert set(data.inputs) == {"image", "audio"}
    # The card and metadata say what happened.
    meta = result.entry_metadata()["training"]
    assert meta["warm_start"]["frozen"] is True
    assert meta["distillation"]["teacher"] == "teacher.keras/text_gru"
    json.dumps(meta)
    from mmzoo.zoo import save_entry

    save_entry(tmp_path / "entry", result.model, result.preprocessor(),
               metadata=result.entry_metadata())
    card = (tmp_path / "entry" / "README.md").read_text()
    assert "and kept them fixed" in card and "cross-modal distillation, 2 epochs" in card
    # The training curve shows the distillation first: three panels of 500 px.
    from PIL import Image

    assert Image.open(result.paths["plot"]).size[0] == 1500
    # Run again in the same folder: the finished stage is read back, not run again.
    again = training.train(recipe, tmp_path / "run", verbose=0, resume="auto")
    assert again.distillation.resumed
    assert again.distillation.history == done.history


WRITTEN = {
    "name": "written", "task": "classification",
    "dataset": {"source": "memory", "image_size": 16, "num_train": 64, "num_validation": 16,
                "num_test": 16, "seed": 3},
    "model": {"image_branch": "cnn", "image_filters": 2, "text_branch": "gru",
              "embedding_dim": 4, "text_units": 8, "fusion": "concat"},
    "training": {"epochs": 1, "batch_size": 16},
}


def _written(tmp_path, **changes):
    config = json.loads(json.dumps(WRITTEN))
    for section, values in changes.items():
        config[section].update(values)
    return Recipe.from_dict(config)


@pytest.fixture(scope="module")
def gru_teacher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher")
    model = training.train(_written(folder), folder / "run", verbose=0).model
    model.save(folder / "teacher.keras")
    return model, str(folder / "teacher.keras")


def test_a_branch_is_replaced_by_another_design_for_the_same_modality(tmp_path, gru_teacher):
    """distill_from = distill_to: a text CNN learns the GRU's features (the mobile entry)."""
    teacher, path = gru_teacher
    recipe = _written(tmp_path, model={"text_branch": "cnn", "text_layers": 2,
                                       "text_kernel_size": 3, "text_projection": "tanh"},
                      training={"init_from": path, "freeze": "copied", "distill_from": "text",
                                "distill_to": "text", "distill_epochs": 3,
                                "distill_learning_rate": 1e-2})
    result = training.train(recipe, tmp_path / "run", verbose=0)
    done = result.distillation
    assert done.teacher == "teacher.keras/text_gru" and done.student == "text_cnn"
    assert "text_gru/text_gru_gru" not in result.warm_start.copied
    ids = training.load_evaluation_data(recipe).inputs["text"]
    target = branch_of(teacher, "text")(ids).numpy()
    fresh = branch_of(training.build_run(recipe).model, "text")(ids).numpy()
    learned = branch_of(result.model, "text")(ids).numpy()
    assert np.mean((learned - target) ** 2) < np.mean((fresh - target) ** 2)
    from mmzoo.zoo import save_entry

    save_entry(tmp_path / "entry", result.model, result.preprocessor(),
               metadata=result.entry_metadata())
    card = (tmp_path / "entry" / "README.md").read_text()
    assert "(feature distillation, 3 epochs" in card and "cross-modal" not in card


def test_a_student_copied_from_the_teacher_has_nothing_to_learn(tmp_path, gru_teacher):
    _, path = gru_teacher
    recipe = _written(tmp_path, training={"init_from": path, "freeze": "copied",
                                          "distill_from": "text", "distill_to": "text",
                                          "distill_epochs": 1})
    with pytest.raises(ValueError, match=r"'text_gru' has nothing to learn.*copied by the "
                                         r"warm start and frozen"):
        training.train(recipe, tmp_path / "run", verbose=0)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("source", ["stream", "memory"])
def test_a_distillation_killed_after_an_epoch_resumes_bit_for_bit(tmp_path, gru_teacher,
                                                                   monkeypatch, source):
    """The stage continues from its last finished epoch with the batches an uninterrupted
    run trains on next (it replayed the first epoch's before), so the student ends the same."""
    _, path = gru_teacher
    recipe = _written(tmp_path, dataset={"source": source},
                      model={"text_branch": "cnn", "text_layers": 1, "text_kernel_size": 3,
                             "text_projection": "tanh"},
                      training={"init_from": path, "freeze": "copied", "distill_from": "text",
                                "distill_to": "text", "distill_epochs": 3,
                                "distill_learning_rate": 1e-2, "epochs": 1})
    whole = training.train(recipe, tmp_path / "whole", verbose=0)

    save = keras.callbacks.BackupAndRestore._save_model
    calls = []

    def save_then_die(self):  # the process dies right after epoch 2's backup
        save(self)
        calls.append(self._current_epoch)
        if self._current_epoch == 2 and len(calls) == 2:
            raise _Killed

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "_save_model", save_then_die)
    with pytest.raises(_Killed):
        training.train(recipe, tmp_path / "killed", verbose=0)
    monkeypatch.undo()
    resumed = training.train(recipe, tmp_path / "killed", verbose=0, resume="auto")
    assert not resumed.distillation.resumed  # the stage ran on, it was not read back
    assert resumed.distillation.epochs == 3

    def student(run):  # the weights the stage ended with, before the main training
        import h5py

        arrays = []
        with h5py.File(tmp_path / run / "distill" / "student.weights.h5", "r") as f:
            f.visititems(lambda name, item: arrays.append((name, item[()]))
                         if isinstance(item, h5py.Dataset) else None)
        return arrays

    expected = student("whole")
    assert expected
    for (name, a), (other, b) in zip(expected, student("killed"), strict=True):
        assert name == other
        np.testing.assert_array_equal(a, b, err_msg=name)
