"""Image-text retrieval: the dual encoder, InfoNCE, recall@K, the entry and its export."""

import json
import math

import numpy as np
import pytest

import keras
import mmzoo
from mmzoo import training
from mmzoo.data import shapes
from mmzoo.data.tokenizer import split_words
from mmzoo.metrics import task_metrics
from mmzoo.zoo import save_entry
from mmzoo.retrieval import rank_gallery, retrieval_metrics
from mmzoo.retrieval.metrics import pair_ranks
from mmzoo.retrieval.model import DualEncoderModel, InfoNCELoss

SMALL = dict(image_branch="convnet", image_filters=8, image_blocks=2, pooling="max",
             text_branch="gru", embedding_dim=8, text_units=16, projection_dim=16)


@pytest.fixture(scope="module")
def data():
    return mmzoo.data.shapes_arrays("retrieval", 64, image_size=16)


# ----------------------------------------------------------------------------
# Metrics


def test_recall_and_median_rank_by_hand():
    # Scores q @ g.T: rows [1, 0, -1], [0.8, 0.6, -0.8], [0, 1, 0]: query 0
    # ranks its pair 1st, query 1 2nd, query 2 3rd (its tie with g0 counts
    # against it).
    q = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    g = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(pair_ranks(q, g), [1, 2, 3])
    m = retrieval_metrics(q, g, ks=(1, 2))
    assert m["image_to_text_recall_at_1"] == pytest.approx(1 / 3)
    assert m["image_to_text_recall_at_2"] == pytest.approx(2 / 3)
    assert m["image_to_text_median_rank"] == 2.0
    assert m["num_examples"] == 3
    # The other direction reads the transposed scores.
    np.testing.assert_array_equal(pair_ranks(g, q), [1, 2, 1])


def test_perfect_and_constant_embeddings():
    eye = np.eye(10)
    perfect = retrieval_metrics(eye, eye)
    assert perfect["image_to_text_recall_at_1"] == perfect["text_to_image_recall_at_1"] == 1.0
    assert perfect["text_to_image_median_rank"] == 1.0
    # Ties count against the query: a constant embedding is the worst, not the best.
    constant = retrieval_metrics(np.ones((10, 4)), np.ones((10, 4)))
    assert constant["image_to_text_recall_at_1"] == 0.0
    assert constant["image_to_text_median_rank"] == 10.0


def test_metrics_refuse_unpaired_galleries():
    with pytest.raises(ValueError, match="paired row by row"):
        pair_ranks(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        retrieval_metrics(np.ones(3), np.ones(3))


def test_rank_gallery_orders_by_cosine():
    g = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    ranked = rank_gallery(np.array([[1.0, 0.0]]), g, top_k=2)
    assert [j for j, _ in ranked[0]] == [0, 2]
    assert ranked[0][1][1] == pytest.approx(0.8)


# ----------------------------------------------------------------------------
# The loss


def test_infonce_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 4)).astype("float32")
    b = rng.normal(size=(5, 4)).astype("float32")
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    layer = InfoNCELoss(initial_temperature=0.1)
    out = layer([keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out[0]), a)
    (loss,) = layer.losses
    logits = 10.0 * a @ b.T

    def ce(z):
        z = z - z.max(1, keepdims=True)
        return -(np.diag(z) - np.log(np.exp(z).sum(1))).mean()

    assert float(loss) == pytest.approx(0.5 * (ce(logits) + ce(logits.T)), rel=1e-5)
    assert layer.temperature == pytest.approx(0.1)


def test_temperature_is_capped_and_validated():
    layer = InfoNCELoss(initial_temperature=1e-4)  # 1 / T = 10,000 > 100
    layer.build(None)
    assert layer.temperature == pytest.approx(0.01)
    with pytest.raises(ValueError, match="initial_temperature"):
        mmzoo.build_model("retrieval", image_shape=(16, 16, 3), vocab_size=61,
                          initial_temperature=0, **SMALL)


# ----------------------------------------------------------------------------
# The model


def test_dual_encoder_learns_saves_and_splits_into_towers(data, tmp_path):
    x, y, info = data
    keras.utils.set_random_seed(0)
    model = mmzoo.build_model("retrieval", **SMALL, **info.model_options(),
                              learning_rate=3e-3)
    assert isinstance(model, DualEncoderModel) and model.task == "retrieval"
    # The loss needs no labels: fit ignores them (any y, or none).
    first = model.evaluate(x, y, batch_size=32, verbose=0)
    model.fit(x, y, batch_size=32, epochs=15, verbose=0)
    last = model.evaluate(x, y, batch_size=32, verbose=0)
    assert last < 0.7 * first, (first, last)          # 2 log 32 = 6.9 at chance
    out = model.predict(x, verbose=0)
    assert set(out) == {"image_embeds", "text_embeds"}
    np.testing.assert_allclose(np.linalg.norm(out["image_embeds"], axis=1), 1.0, atol=1e-5)
    metrics = task_metrics("retrieval", out, y)
    assert metrics["image_to_text_recall_at_10"] > 10 / 64   # above chance on its data
    # Each tower alone gives the model's embeddings.
    np.testing.assert_allclose(model.image_tower.predict({"image": x["image"]}, verbose=0),
                               out["image_embeds"], atol=1e-6)
    np.testing.assert_allclose(model.text_tower.predict({"text": x["text"]}, verbose=0),
                               out["text_embeds"], atol=1e-6)
    assert model.loss_layer.temperature != pytest.approx(0.07)  # learned
    path = tmp_path / "dual.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    reloaded = again.predict(x, verbose=0)
    for key in out:
        np.testing.assert_array_equal(reloaded[key], out[key])
    assert again.loss_layer.temperature == pytest.approx(model.loss_layer.temperature)


def test_options_a_dual_encoder_does_not_use_are_refused():
    with pytest.raises(ValueError, match="`fusion` has no effect on a dual encoder"):
        mmzoo.build_model("retrieval", image_shape=(16, 16, 3), fusion="concat", **SMALL)
    with pytest.raises(ValueError, match="text_branch"):
        mmzoo.build_model("retrieval", image_shape=(16, 16, 3),
                          **{**SMALL, "text_branch": None})
    with pytest.raises(ValueError, match="recall@K"):
        mmzoo.build_model("retrieval", image_shape=(16, 16, 3), metrics=["accuracy"],
                          **SMALL)


def test_the_problem_pairs_each_image_with_its_first_caption():
    x, y, info = mmzoo.data.shapes_arrays("retrieval_pairs", 4, image_size=16)
    scenes = shapes.generate_scenes(4, image_size=16)
    texts = info.tokenizer.decode(x["text"])
    for text, captions in zip(texts, scenes["captions"]):
        assert text.split() == split_words(captions[0])
    np.testing.assert_array_equal(y[:, 0], scenes["scene_id"])


# ----------------------------------------------------------------------------
# A trained entry: predict, evaluate, export


TINY_RECIPE = """
name = "tiny_retrieval"
task = "retrieval"
description = "Smoke-test dual encoder."

[dataset]
source = "memory"
image_size = 16
num_train = 96
num_validation = 32
num_test = 40
seed = 0
sequence_length = 32

[model]
image_branch = "convnet"
image_filters = 8
image_blocks = 2
pooling = "max"
text_branch = "gru"
embedding_dim = 8
text_units = 16
projection_dim = 16

[training]
epochs = 2
batch_size = 32
learning_rate = 3e-3
seed = 0
monitor = "val_loss"

[evaluation]
metrics = ["recall", "median_rank"]
"""


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_retrieval")
    recipe = folder / "tiny_retrieval.toml"
    recipe.write_text(TINY_RECIPE)
    result = training.train(recipe, folder / "run", verbose=0)
    path = save_entry(folder / "tiny_retrieval", result.model, result.preprocessor(),
                      metadata=result.entry_metadata())
    return mmzoo.load(path), result


def test_entry_card_holds_recall_and_evaluate_reproduces_it(entry):
    loaded, result = entry
    metrics = loaded.metadata["metrics"]
    for direction in ("image_to_text", "text_to_image"):
        for k in (1, 5, 10):
            assert 0.0 <= metrics[f"{direction}_recall_at_{k}"] <= 1.0
        assert 1.0 <= metrics[f"{direction}_median_rank"] <= 40
    assert metrics["num_examples"] == 40
    measured = loaded.evaluate()
    assert json.dumps(measured, sort_keys=True) == json.dumps(
        {k: metrics[k] for k in measured}, sort_keys=True)
    assert "recall_at_1" in (loaded.path / "README.md").read_text()


def test_entry_embeds_and_ranks(entry):
    loaded, _ = entry
    scenes = shapes.generate_scenes(3, split="test", image_size=16)
    captions = [c[0] for c in scenes["captions"]]
    images = loaded.predict(images=list(scenes["image"]))
    texts = loaded.predict(texts=captions)
    assert images.shape == texts.shape == (3, 16)
    ranked = loaded.predict(images=list(scenes["image"]), texts=captions, top_k=2)
    assert len(ranked) == 3 and all(len(row) == 2 for row in ranked)
    best_text, score = ranked[0][0]
    assert best_text in captions
    assert score == pytest.approx(float(np.max(images[0] @ texts.T)), abs=1e-5)
    by_text = loaded.predict(images=list(scenes["image"]), texts=captions[0],
                             query="texts", top_k=3)
    assert sorted(j for j, _ in by_text[0]) == [0, 1, 2]
    with pytest.raises(ValueError, match="pass `images`, `texts`, or both"):
        loaded.predict()
    with pytest.raises(ValueError, match="query"):
        loaded.predict(texts="a", query="both")


def test_each_tower_exports_with_parity(entry, tmp_path):
    loaded, _ = entry
    for fmt in ("saved_model", "tflite"):
        reports = mmzoo.export(loaded, tmp_path / fmt, format=fmt, verbose=False)
        assert set(reports) == {"image_tower", "text_tower"}
        for report in reports.values():
            assert report.checks and all(check.passed for check in report.checks)
    assert (tmp_path / "tflite" / "image_tower.tflite").is_file()
    assert (tmp_path / "saved_model" / "text_tower" / "saved_model.pb").is_file()
    with pytest.raises(ValueError, match="exported in parts"):
        mmzoo.export(loaded, tmp_path / "x.tflite", format="tflite", verbose=False)
    assert math.isfinite(loaded.model.loss_layer.temperature)
