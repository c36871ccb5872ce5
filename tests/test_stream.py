"""Training data that never runs out: the endless stream of fresh scenes (dataset.source = "stream")."""

import json

import numpy as np
import pytest

import keras
from mmzoo.data import shapes, shapes_arrays
from mmzoo.training import Recipe, build_run, distribute, train
from mmzoo.training.data import load_evaluation_data

STREAM = {
    "name": "tiny_stream", "task": "classification",
    "dataset": {"source": "stream", "image_size": 32, "num_train": 40, "num_validation": 16,
                "num_test": 24, "seed": 3},
    "model": {"image_branch": "cnn", "image_filters": 4, "pooling": "max",
              "text_branch": "embedding", "embedding_dim": 4},
    "training": {"epochs": 3, "batch_size": 16, "learning_rate": 3e-3, "seed": 0},
}


def recipe(**dataset):
    config = json.loads(json.dumps(STREAM))
    config["dataset"].update(dataset)
    return Recipe.from_dict(config)


def batches(dataset):
    return [(x["image"].numpy(), x["text"].numpy(), y.numpy()) for x, y in dataset]


def test_stream_scenes_are_addressable_fresh_and_never_in_the_fixed_splits():
    a = [shapes.stream_scene(5, k) for k in range(300)]
    again = [shapes.stream_scene(5, k) for k in (299, 7, 0)]
    assert [s.scene_id for s in again] == [a[299].scene_id, a[7].scene_id, a[0].scene_id]
    assert again[1].question == a[7].question and again[1].objects == a[7].objects
    assert all(s.scene_id >= shapes.STREAM_OFFSET for s in a)
    assert len({s.scene_id for s in a}) == 300
    assert all(shapes.split_of(s.layout_key(), 5) == "train" for s in a)
    test_layouts = {s.layout_key() for s in shapes.generate_scenes(400, "test", 16, seed=5)["scenes"]}
    assert not test_layouts & {s.layout_key() for s in a}
    # Answers stay balanced per question type, as in the fixed splits.
    assert {s.question_type for s in a} == set(range(len(shapes.QUESTION_TYPES)))
    other = shapes.stream_scene(6, 0)
    assert other.question != a[0].question or other.objects != a[0].objects
    with pytest.raises(ValueError, match=r"Received: k=-1"):
        shapes.stream_scene(5, -1)


def test_every_epoch_draws_fresh_scenes_and_any_step_can_be_regenerated():
    data = build_run(recipe()).data
    assert data.fresh_each_epoch and data.steps_per_epoch == 3  # 16 + 16 + 8 rows
    everything = batches(data.train)
    assert len(everything) == 9 and [len(b[2]) for b in everything[:3]] == [16, 16, 8]
    epoch1 = np.concatenate([b[0] for b in everything[:3]])
    epoch2 = np.concatenate([b[0] for b in everything[3:6]])
    assert not any((epoch1[i] == epoch2).all(axis=(1, 2, 3)).any() for i in range(len(epoch1)))
    for step in (4, 8):  # a resumed run starts at its batch, with the same rows
        again = batches(data.train_from(step))
        assert len(again) == 9 - step
        for x, y in zip(again, everything[step:]):
            for u, v in zip(x, y):
                np.testing.assert_array_equal(u, v)
    assert everything[0][0].dtype == np.float32 and everything[0][1].dtype == np.int32
    # The same recipe gives the same stream; the validation split is fixed.
    np.testing.assert_array_equal(batches(build_run(recipe()).data.train.take(1))[0][0],
                                  everything[0][0])


def test_validation_and_test_are_the_fixed_splits():
    r = recipe()
    memory = Recipe.from_dict({**STREAM, "dataset": {**STREAM["dataset"], "source": "memory"}})
    a, b = load_evaluation_data(r), load_evaluation_data(memory)
    np.testing.assert_array_equal(a.inputs["image"], b.inputs["image"])
    np.testing.assert_array_equal(a.labels, b.labels)
    assert len(a) == 24


def test_keras_fit_trains_on_every_epochs_batches(tmp_path):
    result = train(recipe(), tmp_path / "run", verbose=0)
    assert result.epochs_run == 3
    steps = int(result.model.optimizer.iterations.numpy())
    assert steps == 9  # Keras kept its iterator across epochs: 3 fresh epochs of 3 steps


def test_resumed_stream_run_ends_as_if_never_interrupted(tmp_path):
    class Crash(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 5:
                raise KeyboardInterrupt("simulated kill after step 5")

    strategy = distribute.get_strategy("default")

    def fit(out, callbacks=()):
        keras.backend.clear_session()
        run = distribute.build_distributed_run(recipe(), strategy)
        distribute.fit_steps(run, out, strategy=strategy, verbose=0, backup_every=2,
                             callbacks=callbacks)
        return run.model.get_weights()

    reference = fit(tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "resumed", [Crash()])
    resumed = fit(tmp_path / "resumed")
    for a, b in zip(reference, resumed):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def _matching(**dataset):
    config = json.loads(json.dumps(STREAM))
    config["task"] = "binary"
    config["dataset"].update(dataset)
    return Recipe.from_dict(config)


def test_paired_negatives_stream_each_scene_with_its_true_and_its_one_edit_false_caption():
    """Minimal pairs: the two rows of a scene share the image and differ by one edit."""
    assert _matching().dataset["negatives"] == "sampled"
    assert "negatives" not in recipe().dataset  # other tasks do not have the setting
    paired = build_run(_matching(negatives="paired")).data
    assert paired.num_train_examples == 80 and paired.steps_per_epoch == 5
    images, texts, labels = (np.concatenate(a) for a in zip(*batches(paired.train.take(5))))
    assert labels.ravel().tolist() == [1.0, 0.0] * 40
    np.testing.assert_array_equal(images[0::2], images[1::2])
    data = shapes.stream_scenes(40, "train", image_size=32, seed=3)
    tok = paired.info.tokenizer
    for k in range(40):
        true, false = tok.decode(texts[2 * k]).split(), tok.decode(texts[2 * k + 1]).split()
        assert true == tok.decode(tok.encode([data["match_true"][k]], 32)[0]).split()
        assert len(true) == len(false) and sum(a != b for a, b in zip(true, false)) >= 1
        # The sampled caption of the same scene is one side of its pair.
        assert data["match_caption"][k] in (data["match_true"][k], data["match_false"][k])
        assert data["match_false_perturbation"][k] >= 1
    # The next epoch pairs fresh scenes; validation stays one row per scene.
    later = batches(paired.train.skip(5).take(1))[0][0]
    assert not any((later[i] == images).all(axis=(1, 2, 3)).any() for i in range(len(later)))
    assert sum(len(y) for _, y in paired.validation) == 16


def test_paired_negatives_are_checked():
    with pytest.raises(ValueError, match=r"dataset.negatives applies to 'matching' only.*"
                                         r"negatives='paired' with task='classification'"):
        recipe(negatives="paired")
    with pytest.raises(ValueError, match=r"source='stream' or 'memory'. Received: source='tfds'"):
        _matching(negatives="paired", source="tfds")
    with pytest.raises(ValueError, match=r"negatives"):
        _matching(negatives="both")
    with pytest.raises(ValueError, match=r"for 'matching' only. Received: negatives='paired' "
                                         r"with task='vqa'"):
        shapes_arrays("vqa", 4, image_size=16, negatives="paired")
