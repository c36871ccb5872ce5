"""Bagging, SAMME boosting and stacking: the algorithms, and one Keras model each."""

import numpy as np
import pytest

import keras
import mmzoo
from mmzoo.fusion import VoteFusion, WeightedFusion
from mmzoo.tasks import ensembles

BUILD = dict(task="classification", image_branch="cnn", text_branch="embedding",
             image_shape=(16, 16, 3), image_filters=4, pooling="avg", vocab_size=20,
             sequence_length=5, embedding_dim=4, num_classes=3, learning_rate=0.01)


def data(n=48, seed=0):
    """Class c: brighter images and tokens 5c+1..5c+5, so small members learn it."""
    rng = np.random.default_rng(seed)
    c = np.arange(n) % 3
    image = rng.integers(0, 80, (n, 16, 16, 3)).astype("float32") + 80 * c[:, None, None, None]
    text = (rng.integers(1, 6, (n, 5)) + 5 * c[:, None]).astype("int32")
    return {"image": image, "text": text}, c


def probs(model, x):
    (out,) = model.predict(x, verbose=0).values()
    return out


def member_probs(model, x):
    outs = []
    for layer in model.layers:
        if isinstance(layer, mmzoo.MultimodalModel):
            (out,) = layer.predict({k: x[k] for k in layer.input}, verbose=0).values()
            outs.append(out)
    return outs


def round_trip(model, x, tmp_path):
    model.save(tmp_path / "ensemble.keras")
    loaded = keras.saving.load_model(tmp_path / "ensemble.keras", safe_mode=True)
    np.testing.assert_allclose(probs(loaded, x), probs(model, x), rtol=1e-5, atol=1e-6)
    assert loaded.trainable_weights == [] or all(
        "member" not in w.path for w in loaded.trainable_weights)
    return loaded


def test_bagging_averages_members_trained_on_bootstrap_replicas(tmp_path, monkeypatch):
    sizes, seen = [], []
    fit = ensembles._fit

    def recording_fit(model, x, y, *args, **kwargs):
        sizes.append(len(y))
        seen.append(x["text"].copy())
        return fit(model, x, y, *args, **kwargs)

    monkeypatch.setattr(ensembles, "_fit", recording_fit)
    x, y = data()
    model = ensembles.bagging(BUILD, x, y, n_members=3, sample_fraction=0.5, epochs=4,
                              batch_size=8, seed=1)
    assert sizes == [24, 24, 24]
    # With replacement: replicas repeat examples, and differ from one another.
    assert any(len(np.unique(s, axis=0)) < 24 for s in seen)
    assert not np.array_equal(seen[0], seen[1])

    assert list(model.input) == ["image", "text"] and list(model.output) == ["probabilities"]
    assert isinstance(model.get_layer("bagging_average"), WeightedFusion)
    assert model.trainable_weights == []  # one frozen model
    members = member_probs(model, x)
    assert len(members) == 3
    np.testing.assert_allclose(probs(model, x), np.mean(members, axis=0), rtol=1e-5, atol=1e-6)
    assert model.evaluate(x, y, verbose=0)[1] > 0.6  # compiled with the head's metrics
    round_trip(model, x, tmp_path)

    from mmzoo.export import export

    report = export(model, str(tmp_path / "serving"), format="saved_model")
    assert report.check("serving_default").max_abs_diff <= 1e-5


def test_boosting_follows_samme(monkeypatch):
    """Scripted member predictions: check errors, alphas and the reweighting."""
    x, y = data(n=6)
    y = np.array([0, 1, 2, 0, 1, 2])
    scripted = iter([
        np.eye(3)[[0, 1, 2, 0, 1, 0]],  # wrong on example 5: error 1/6
        np.eye(3)[[0, 1, 1, 1, 1, 2]],  # wrong on 2 and 3
        np.eye(3)[[1, 2, 0, 1, 2, 0]],  # all wrong: worse than chance, dropped
    ])
    weights_seen = []
    monkeypatch.setattr(ensembles, "_fit", lambda m, x, y, *a, sample_weight=None, **k:
                        weights_seen.append(sample_weight) or m)
    monkeypatch.setattr(ensembles, "_predict", lambda m, x, b: next(scripted))
    model = ensembles.boosting(BUILD, x, y, n_members=5)

    np.testing.assert_allclose(weights_seen[0], np.ones(6))
    alpha1 = np.log(5) + np.log(2)  # err = 1/6, K = 3
    w = np.ones(6) / 6
    w[5] *= np.exp(alpha1)
    w /= w.sum()
    np.testing.assert_allclose(weights_seen[1], w * 6, rtol=1e-6)
    err2 = w[2] + w[3]
    alpha2 = np.log((1 - err2) / err2) + np.log(2)
    assert len(weights_seen) == 3  # the third member was trained, then dropped
    vote = model.get_layer("boosting_vote")
    assert isinstance(vote, VoteFusion)
    np.testing.assert_allclose(vote.input_weights, np.array([alpha1, alpha2]) / (alpha1 + alpha2),
                               rtol=1e-6)
    assert len(member_probs(model, x)) == 2


def test_boosting_trains_real_members_and_round_trips(tmp_path):
    x, y = data()
    model = ensembles.boosting(BUILD, x, y, n_members=2, epochs=4, batch_size=8)
    out = probs(model, x)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)  # vote shares
    alphas = np.asarray(model.get_layer("boosting_vote").input_weights)
    votes = [np.eye(3)[p.argmax(-1)] for p in member_probs(model, x)]
    np.testing.assert_allclose(out, sum(a * v for a, v in zip(alphas, votes)), rtol=1e-6)
    round_trip(model, x, tmp_path)


def test_boosting_first_member_no_better_than_chance(monkeypatch):
    x, y = data(n=6)
    monkeypatch.setattr(ensembles, "_fit", lambda m, *a, **k: m)
    monkeypatch.setattr(ensembles, "_predict", lambda m, x, b: np.eye(3)[(y + 1) % 3])
    with pytest.raises(ValueError, match="no better than chance"):
        ensembles.boosting(BUILD, x, y)


def test_stacking_meta_learner_on_out_of_fold_predictions(tmp_path, monkeypatch):
    taken = []
    take = ensembles._take
    monkeypatch.setattr(ensembles, "_take", lambda x, idx: taken.append(np.sort(idx)) or take(x, idx))
    x, y = data()
    image_only = dict(BUILD, text_branch=None)
    model = ensembles.stacking([BUILD, image_only], x, y, n_folds=2, epochs=4, batch_size=8,
                               meta_epochs=30)
    # Per member and fold: train on one part, predict the other, never the same example.
    assert len(taken) == 2 * 2 * 2
    for train, held_out in zip(taken[::2], taken[1::2]):
        assert not set(train) & set(held_out)
        np.testing.assert_array_equal(np.union1d(train, held_out), np.arange(48))

    assert list(model.input) == ["image", "text"]  # the union of the members' inputs
    members = member_probs(model, x)
    assert len(members) == 2
    kernel, bias = model.get_layer("stacking_meta").get_weights()
    logits = np.concatenate(members, axis=-1) @ kernel + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(probs(model, x), expected, rtol=1e-4, atol=1e-6)
    assert model.evaluate(x, y, verbose=0)[1] > 0.6
    round_trip(model, x, tmp_path)


def test_ensemble_arguments_are_checked():
    x, y = data(n=6)
    with pytest.raises(ValueError, match=r"with a `task` key.*Received: build="):
        ensembles.bagging({"num_classes": 3}, x, y)
    with pytest.raises(ValueError, match=r"Received: task='regression'"):
        ensembles.boosting(dict(BUILD, task="regression", num_classes=None), x, y)
    with pytest.raises(ValueError, match=r"Received: n_folds=1"):
        ensembles.stacking([BUILD], x, y, n_folds=1)
    with pytest.raises(ValueError, match=r"Received: sample_fraction=0"):
        ensembles.bagging(BUILD, x, y, sample_fraction=0)
    with pytest.raises(ValueError, match="same number of examples"):
        ensembles.bagging(BUILD, x, y[:4])
    with pytest.raises(ValueError, match="share one task"):
        ensembles.stacking([BUILD, dict(BUILD, task="binary", num_classes=None)], x, y)
