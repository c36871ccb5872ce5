"""Missing modalities: the `modality_mask` input and modality dropout, for every fusion."""

import numpy as np
import pytest

import keras
import mmzoo
from mmzoo.fusion import ModalityDropout
from mmzoo.registry import FUSIONS

# Every registered fusion (a new one is tested without being listed here).
CATALOGUE = FUSIONS.names()
SMALL = dict(image_branch="cnn", text_branch="embedding", image_shape=(32, 32, 3),
             image_filters=4, pooling="avg", vocab_size=30, sequence_length=6,
             embedding_dim=4, num_classes=3, compile=False)
PATTERNS = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], "float32")


def build(fusion, **options):
    if "fusion_dim" in FUSIONS.get(fusion).options:
        options.setdefault("fusion_dim", 8)
    return mmzoo.build_model("classification", **{**SMALL, "fusion": fusion, **options})


def inputs(n=4, seed=0, mask=None):
    rng = np.random.default_rng(seed)
    x = {"image": rng.integers(0, 256, (n, 32, 32, 3)).astype("float32"),
         "text": rng.integers(1, 30, (n, 6)).astype("int32")}
    if mask is not None:
        x["modality_mask"] = np.asarray(mask, "float32")
    return x


def predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False)["probabilities"])


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0, 0.3, v.shape).astype(v.dtype))


@pytest.mark.parametrize("fusion", CATALOGUE)
def test_mask_is_ignored_when_all_present_and_hides_a_missing_modality(fusion):
    masked, plain = build(fusion, modality_mask=True), build(fusion)
    assert list(masked.input) == ["image", "text", "modality_mask"]
    randomize(masked)
    plain.set_weights(masked.get_weights())  # the mask adds no weights

    # All ones: exactly the model without a mask.
    np.testing.assert_allclose(predict(masked, inputs(mask=np.ones((4, 2)))),
                               predict(plain, inputs()), rtol=1e-5, atol=1e-6)

    # Every pattern, even with NaN placeholders for the missing modalities: finite.
    x = inputs(mask=PATTERNS)
    x["image"][2:] = np.nan  # rows 2 and 3 have no image
    y = predict(masked, x)
    assert np.isfinite(y).all()

    # A missing modality's content does not matter; masking it changes the output.
    other = inputs(seed=1, mask=PATTERNS)
    other["image"][:1], other["text"][:1] = x["image"][:1], x["text"][:1]  # row 0: both present
    other["image"][1], other["text"][2] = x["image"][1], x["text"][2]  # the present ones
    other["image"][3] = 0.0
    np.testing.assert_allclose(predict(masked, other), y, rtol=1e-5, atol=1e-6)
    assert not np.allclose(y[1], predict(masked, inputs(mask=np.ones((4, 2))))[1], atol=1e-4)


def _head(model, name, x):
    return keras.Model(model.inputs, model.get_layer(name).output)(x, training=False).numpy()


def test_late_fusion_with_a_missing_modality_is_the_other_head():
    model = build("late", modality_mask=True, fusion_weights=(0.3, 0.7))
    randomize(model)
    x = inputs(mask=PATTERNS)
    y = predict(model, x)
    image, text = _head(model, "head_softmax_image", x), _head(model, "head_softmax_text", x)
    np.testing.assert_allclose(y[0], 0.3 * image[0] + 0.7 * text[0], rtol=1e-5)
    np.testing.assert_allclose(y[1], image[1], rtol=1e-6)
    np.testing.assert_allclose(y[2], text[2], rtol=1e-6)
    np.testing.assert_array_equal(y[3], 0.0)  # documented: nothing present, zeros


def test_hybrid_keeps_the_fused_head_and_drops_the_missing_one():
    model = build("hybrid", modality_mask=True, fusion_weights=(1, 1, 2))
    randomize(model)
    x = inputs(mask=PATTERNS)
    y = predict(model, x)
    fused = _head(model, "head_softmax_fused", x)
    image, text = _head(model, "head_softmax_image", x), _head(model, "head_softmax_text", x)
    np.testing.assert_allclose(y[1], (fused[1] + image[1]) / 2, rtol=1e-5)
    np.testing.assert_allclose(y[2], (fused[2] + 2 * text[2]) / 3, rtol=1e-5)
    np.testing.assert_allclose(y[3], fused[3], rtol=1e-5)


def test_attention_gives_a_missing_modality_weight_zero():
    model = build("attention", modality_mask=True)
    randomize(model)
    weights = mmzoo.fusion.modality_weights(model, inputs(mask=PATTERNS))
    np.testing.assert_array_equal(weights["image"], [weights["image"][0], 1, 0, 0])
    np.testing.assert_array_equal(weights["text"][1:], [0, 1, 0])


def test_sum_of_a_missing_text_is_the_image_projection_alone():
    model = build("sum", modality_mask=True)
    randomize(model)
    x = inputs(mask=[[1, 0]] * 4)
    image_features = model.get_layer("fusion_sum").input[0]
    features = keras.Model(model.inputs, image_features)(x).numpy()
    proj = model.get_layer("fusion_sum").projections[0]
    fused = keras.Model(model.inputs, model.get_layer("fusion_sum").output)(x).numpy()
    np.testing.assert_allclose(fused, proj(features).numpy(), rtol=1e-5, atol=1e-6)


def test_modality_dropout_never_drops_everything_and_is_off_at_inference():
    layer = ModalityDropout(0.6, seed=3)
    feats = [np.zeros((2000, 3), "float32"), np.zeros((2000, 5), "float32")]
    mask = layer(feats, training=True).numpy()
    assert mask.shape == (2000, 2) and set(np.unique(mask)) == {0.0, 1.0}
    assert (mask.sum(axis=1) >= 1).all()
    # P(drop image) = 0.6 * P(text kept) = 0.6 * 0.4 = 0.24.
    assert abs((mask[:, 0] == 0).mean() - 0.24) < 0.04
    np.testing.assert_array_equal(layer(feats, training=False), np.ones((2000, 2)))
    given = np.tile(PATTERNS, (500, 1))
    out = layer(feats, modality_mask=given, training=True).numpy()
    assert (out <= given).all()  # never brings a missing modality back
    np.testing.assert_array_equal(out[3::4], 0.0)  # nothing to drop, nothing present


def test_training_with_modality_dropout(tmp_path):
    x, labels = inputs(16), np.arange(16) % 3
    model = build("weighted", modality_dropout=0.5, compile=True)
    assert list(model.input) == ["image", "text"]
    history = model.fit(x, labels, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # At inference the dropout is off: same as the model without it.
    plain = build("weighted")
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(predict(model, x), predict(plain, x), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.get_layer("modality_dropout").rate == 0.5
    np.testing.assert_allclose(predict(loaded, x), predict(model, x), rtol=1e-5, atol=1e-6)


def test_masked_model_round_trip_and_fit(tmp_path):
    x, labels = inputs(8, mask=np.tile(PATTERNS[:3], (3, 1))[:8]), np.arange(8) % 3
    model = build("late", modality_mask=True, modality_dropout=0.2, compile=True)
    model.fit(x, labels, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.build_options["modality_mask"] is True
    np.testing.assert_allclose(predict(loaded, x), predict(model, x), rtol=1e-5, atol=1e-6)


def test_mask_options_need_two_modalities_and_a_wrong_mask_is_refused():
    single = mmzoo.build_model("classification", **{**SMALL, "text_branch": None,
                                                    "modality_mask": True})
    assert list(single.input) == ["image"]  # a baseline built from the fused options
    model = build("sum", modality_mask=True)
    with pytest.raises(ValueError, match="modality_mask"):
        model(inputs(mask=np.ones((4, 3))))


def test_weighted_renormalises_over_the_present_modalities():
    from mmzoo.fusion import WeightedFusion

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(3, 4)).astype("float32")
    layer = WeightedFusion(None, input_weights=(0.3, 0.7))
    out = layer([a, b], modality_mask=np.array([[1, 1], [1, 0], [0, 1]], "float32")).numpy()
    np.testing.assert_allclose(out, [0.3 * a[0] + 0.7 * b[0], a[1], b[2]], rtol=1e-6)
