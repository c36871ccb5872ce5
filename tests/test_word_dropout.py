"""Word dropout (training.word_dropout): training texts' words read as unknown."""

import json

import numpy as np
import pytest

import tensorflow as tf
from mmzoo.data.augment import word_dropout
from mmzoo.data.tokenizer import END, OOV, PAD, START
from mmzoo.training import Recipe, build_run

RECIPE = {
    "name": "tiny_wd", "task": "classification",
    "dataset": {"source": "stream", "image_size": 16, "num_train": 40, "num_validation": 16,
                "num_test": 16, "seed": 3},
    "model": {"image_branch": "cnn", "image_filters": 4, "pooling": "max",
              "text_branch": "embedding", "embedding_dim": 4},
    "training": {"epochs": 2, "batch_size": 16, "seed": 0, "word_dropout": 0.25},
}


def recipe(source="stream", **training):
    config = json.loads(json.dumps(RECIPE))
    config["dataset"]["source"] = source
    config["training"].update(training)
    return Recipe.from_dict(config)


def texts(dataset):
    return [x["text"].numpy() for x, _ in dataset]


def test_drops_words_at_the_rate_and_keeps_the_special_ids():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 40, size=(500, 32)).astype(np.int32)
    out = word_dropout(tf.constant(ids), 0.3, seed=tf.constant([1, 2])).numpy()
    assert out.dtype == np.int32 and out.shape == ids.shape
    special = np.isin(ids, (PAD, OOV, START, END))
    np.testing.assert_array_equal(out[special], ids[special])
    changed = out != ids
    assert (out[changed] == OOV).all()
    assert abs(changed[~special].mean() - 0.3) < 0.01
    again = word_dropout(tf.constant(ids), 0.3, seed=tf.constant([1, 2])).numpy()
    other = word_dropout(tf.constant(ids), 0.3, seed=tf.constant([1, 3])).numpy()
    np.testing.assert_array_equal(out, again)
    assert (other != out).any()
    np.testing.assert_array_equal(word_dropout(ids, 0.0, seed=[0, 0]), ids)


@pytest.mark.parametrize("rate", [1.0, -0.1])
def test_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(ValueError, match=rf"`rate` must be in \[0, 1\). Received: rate={rate}"):
        word_dropout(tf.constant([[5, 6]]), rate, seed=[0, 0])


@pytest.mark.parametrize("source", ["stream", "memory"])
def test_training_texts_lose_words_and_a_resumed_run_replays_the_draws(source):
    # One row order every epoch (a shuffle buffer of 1), so epochs compare row by row.
    plain = build_run(recipe(source, word_dropout=0.0, shuffle_buffer=1)).data
    data = build_run(recipe(source, shuffle_buffer=1)).data
    steps = data.steps_per_epoch
    # Two epochs in a row, as Keras iterates them (a stream holds both in one pass).
    run = texts(data.train) if source == "stream" else texts(data.train) + texts(data.train)
    clean = texts(plain.train) if source == "stream" else texts(plain.train) + texts(plain.train)
    assert len(run) == 2 * steps
    dropped = kept = 0
    for noisy, words in zip(run, clean):
        # The same rows in the same order, some words read as unknown.
        changed = noisy != words
        assert (noisy[changed] == OOV).all() and (words[changed] > END).all()
        dropped, kept = dropped + changed.sum(), kept + (words > END).sum()
    assert 0.15 < dropped / kept < 0.35
    if source == "memory":  # the same rows again in epoch 2, with a fresh draw
        assert any((a != b).any() for a, b in zip(run[:steps], run[steps:]))
    # A run resumed at any step (a new process: the data built again) gets the
    # batches an uninterrupted run trains on.
    for step in (1, steps + 1):
        resumed = build_run(recipe(source, shuffle_buffer=1)).data
        again = texts(resumed.train_from(step).take(2 * steps - step))
        for a, b in zip(again, run[step:], strict=True):
            np.testing.assert_array_equal(a, b)
    # Validation is never augmented.
    for a, b in zip(texts(data.validation), texts(plain.validation), strict=True):
        np.testing.assert_array_equal(a, b)
