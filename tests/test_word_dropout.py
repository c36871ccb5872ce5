"""Word dropout and frequent-word subsampling (training.word_dropout, word_subsampling)."""

import json
import re

import numpy as np
import pytest

import tensorflow as tf
from mmzoo.data.augment import dropout_rates, subsampling_rates, word_dropout
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


@pytest.mark.parametrize("rate, shown", [(1.0, "1.0"), (-0.1, "-0.1"),
                                         ([0.0, 1.0], "an array of shape (2,)"),
                                         ([[0.1]], "an array of shape (1, 1)")])
def test_rate_outside_zero_one_is_refused(rate, shown):
    with pytest.raises(ValueError, match=r"`rate` must be in \[0, 1\), a number or one per id "
                       rf"\(1-D\). Received: rate={re.escape(shown)}"):
        word_dropout(tf.constant([[5, 6]]), rate, seed=[0, 0])


def test_per_id_rates_drop_each_word_at_its_own_rate():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 8, size=(400, 40)).astype(np.int64)
    rates = np.zeros(8)
    rates[[0, 1, 2, 3]] = 0.9  # special ids: never dropped whatever their rate
    rates[4], rates[6] = 0.8, 0.2
    out = word_dropout(tf.constant(ids), rates, seed=tf.constant([5, 5])).numpy()
    for i in range(8):
        changed = (out != ids)[ids == i].mean()
        assert abs(changed - (rates[i] if i > END else 0.0)) < 0.02, (i, changed)
    assert (out[out != ids] == OOV).all()


def test_subsampling_rates_follow_mikolov():
    # Shares among words: id 4 one half, 5 and 6 a quarter each; specials not counted.
    ids = np.array([[4, 4, 5, 6, END, PAD], [START, 4, 4, 5, 6, OOV]])
    rates = subsampling_rates(ids, threshold=0.25, vocab_size=9)
    expected = np.zeros(9)
    expected[4] = 1 - np.sqrt(0.25 / 0.5)  # 0.293: above the threshold
    np.testing.assert_allclose(rates, expected)  # at or below it (and unseen): kept
    both = dropout_rates(0.1, 0.25, ids, 9)
    np.testing.assert_allclose(both, 1 - 0.9 * (1 - expected))
    assert dropout_rates(0.1) == 0.1
    with pytest.raises(ValueError, match=r"`threshold` must be in \(0, 1\). Received: threshold=1"):
        subsampling_rates(ids, 1, 9)
    with pytest.raises(ValueError, match=r"Every id must be in \[0, vocab_size=6\). Received: "
                       r"ids in \[0, 6\]"):
        subsampling_rates(ids, 0.1, 6)
    with pytest.raises(ValueError, match="`ids` holds no word to count"):
        subsampling_rates([[START, END, PAD]], 0.1, 6)


def test_subsampling_drops_the_frame_words_of_shapes_questions_and_never_the_names():
    from mmzoo.data import shapes

    def run(**training):
        config = recipe(word_dropout=0.0, batch_size=64, **training).to_dict()
        config["dataset"]["num_train"] = 1200
        return build_run(Recipe.from_dict(config)).data

    data, plain = run(word_subsampling=0.025), run()
    vocabulary = data.info.tokenizer.vocabulary
    dropped, seen = np.zeros(len(vocabulary)), np.zeros(len(vocabulary))
    for noisy, words in zip(texts(data.train), texts(plain.train), strict=True):
        np.add.at(seen, words.ravel(), 1)
        np.add.at(dropped, words[noisy != words], 1)
    rate = {w: dropped[i] / seen[i] for i, w in enumerate(vocabulary) if seen[i] >= 20}
    assert rate["the"] > rate["what"] > 0.2, rate
    names = [w for w in (*shapes.COLOURS, *shapes.SHAPES) if w in rate]
    assert len(names) >= 8 and all(rate[w] == 0 for w in names), {w: rate[w] for w in rate}
    # The rates the run reports (`mmzoo train` prints them), most dropped first.
    reported = data.word_rates
    assert list(reported)[0] == "the" and "what" in reported and not set(names) & set(reported)
    assert list(reported.values()) == sorted(reported.values(), reverse=True)
    assert plain.word_rates == {}


@pytest.mark.parametrize("source, options", [
    ("stream", {}), ("memory", {}),
    ("stream", {"word_dropout": 0.1, "word_subsampling": 0.05}),
    ("memory", {"word_dropout": 0.1, "word_subsampling": 0.05}),
])
def test_training_texts_lose_words_and_a_resumed_run_replays_the_draws(source, options):
    # One row order every epoch (a shuffle buffer of 1), so epochs compare row by row.
    plain = build_run(recipe(source, word_dropout=0.0, shuffle_buffer=1)).data
    data = build_run(recipe(source, shuffle_buffer=1, **options)).data
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
        resumed = build_run(recipe(source, shuffle_buffer=1, **options)).data
        again = texts(resumed.train_from(step).take(2 * steps - step))
        for a, b in zip(again, run[step:], strict=True):
            np.testing.assert_array_equal(a, b)
    # Validation is never augmented.
    for a, b in zip(texts(data.validation), texts(plain.validation), strict=True):
        np.testing.assert_array_equal(a, b)


def test_word_dropout_starts_at_its_epoch_and_a_resumed_run_replays_it():
    """`word_dropout_from_epoch = 2`: epoch 1 reads whole texts, epoch 2 the same draws as
    a run with word dropout throughout."""
    plain = build_run(recipe(word_dropout=0.0)).data
    throughout = build_run(recipe()).data
    later = build_run(recipe(word_dropout_from_epoch=2)).data
    steps = later.steps_per_epoch
    run, clean, every = texts(later.train), texts(plain.train), texts(throughout.train)
    assert len(run) == 2 * steps
    for noisy, words in zip(run[:steps], clean[:steps], strict=True):
        np.testing.assert_array_equal(noisy, words)
    for noisy, words in zip(run[steps:], every[steps:], strict=True):
        np.testing.assert_array_equal(noisy, words)
    assert any((a != b).any() for a, b in zip(run[steps:], clean[steps:]))
    shorter = build_run(recipe(epochs=1, word_dropout_from_epoch=2)).data
    for noisy, words in zip(texts(shorter.train), clean[:steps], strict=True):
        np.testing.assert_array_equal(noisy, words)  # a run that ends before it starts
    resumed = build_run(recipe(word_dropout_from_epoch=2)).data
    for step in (1, steps + 1):
        again = texts(resumed.train_from(step).take(2 * steps - step))
        for a, b in zip(again, run[step:], strict=True):
            np.testing.assert_array_equal(a, b)


def test_train_says_which_words_it_drops(tmp_path, capsys):
    from mmzoo.training import train

    train(recipe(word_dropout=0.0, word_subsampling=0.05, epochs=1), tmp_path / "run", verbose=2)
    said = [line for line in capsys.readouterr().out.splitlines()
            if "words dropped" in line]
    assert len(said) == 1, said
    assert said[0].startswith("mmzoo train: training text read with words dropped "
                              "(word_dropout 0.0, word_subsampling 0.05): 'the' 0.")
    train(recipe(epochs=1), tmp_path / "uniform", verbose=2)
    assert ("mmzoo train: training text read with words dropped (word_dropout 0.25, "
            "word_subsampling 0.0): every word 0.25") in capsys.readouterr().out
    train(recipe(epochs=2, word_dropout_from_epoch=2), tmp_path / "later", verbose=2)
    said = capsys.readouterr().out
    assert ("mmzoo train: training text read with words dropped (word_dropout 0.25, "
            "word_subsampling 0.0, from epoch 2): every word 0.25") in said
    assert "note: word dropout starts" not in said
    # A run shorter than the curriculum (`--epochs`, a tuner's trial) reads whole texts.
    train(recipe(epochs=1, word_dropout_from_epoch=2), tmp_path / "short", verbose=2)
    assert ("mmzoo train: note: word dropout starts at epoch 2, after this run's 1 epoch: "
            "every epoch reads whole texts") in capsys.readouterr().out
