"""Every fusion strategy: shapes, safe_mode round trips, gradients, documented math."""

import numpy as np
import pytest
import tensorflow as tf

import keras
import mmzoo
from mmzoo.fusion import (
    AttentionFusion,
    BilinearFusion,
    FiLMFusion,
    GatedFusion,
    LayerFusion,
    ProductFusion,
    ProductRuleFusion,
    SumFusion,
    VoteFusion,
    WeightedFusion,
)
from mmzoo.registry import FUSIONS

CATALOGUE = ["concat", "sum", "product", "weighted", "late", "hybrid", "layer",
             "attention", "gated", "bilinear", "film"]
SMALL = dict(image_branch="cnn", text_branch="embedding", image_shape=(32, 32, 3),
             image_filters=4, pooling="avg", vocab_size=30, sequence_length=6,
             embedding_dim=4, num_classes=3)


def build(fusion, **options):
    if "fusion_dim" in FUSIONS.get(fusion).options:
        options.setdefault("fusion_dim", 8)
    return mmzoo.build_model("classification", **{**SMALL, "fusion": fusion, **options})


def inputs(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.integers(0, 256, (n, 32, 32, 3)).astype("float32"),
            "text": rng.integers(1, 30, (n, 6)).astype("int32")}


def predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False)["probabilities"])


def randomize(model, seed=0):
    """Non-default values everywhere, so a round trip that drops a variable shows."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0, 0.3, v.shape).astype(v.dtype))


def all_layers(layer):
    yield layer
    for sub in getattr(layer, "_layers", []):
        yield from all_layers(sub)


def test_catalogue_is_registered():
    assert set(CATALOGUE) <= set(FUSIONS.names())


@pytest.mark.parametrize("fusion", CATALOGUE)
def test_shapes_names_and_no_lambda(fusion):
    model = build(fusion)
    y = predict(model, inputs())
    assert y.shape == (4, 3)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)
    names = {layer.name for layer in model.layers}
    assert {"image_cnn", "text_embedding", f"fusion_{fusion}"} <= names
    assert list(model.input) == ["image", "text"]
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in all_layers(model))


@pytest.mark.parametrize("fusion", CATALOGUE)
def test_round_trip_with_safe_mode(fusion, tmp_path):
    model = build(fusion, compile=False)
    randomize(model)
    x = inputs()
    expected = predict(model, x)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded) is mmzoo.MultimodalModel
    assert loaded.build_options == model.build_options
    layer, again = model.get_layer(f"fusion_{fusion}"), loaded.get_layer(f"fusion_{fusion}")
    assert type(again) is type(layer) and again.get_config() == layer.get_config()
    np.testing.assert_allclose(predict(loaded, x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fusion", CATALOGUE)
def test_gradients_reach_every_branch_and_fusion_weight(fusion):
    model = build(fusion, compile=False)
    x, labels = inputs(8), np.arange(8) % 3
    with tf.GradientTape() as tape:
        probs = model(x, training=True)["probabilities"]
        loss = keras.losses.sparse_categorical_crossentropy(labels, probs)
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    branch_vars = {id(v) for name in ("image_cnn", "text_embedding")
                   for v in model.get_layer(name).trainable_variables}
    assert len(branch_vars) == 3  # conv kernel + bias, embedding table
    for v, g in zip(variables, grads):
        assert g is not None, v.path
        g = tf.convert_to_tensor(g).numpy()
        assert np.isfinite(g).all(), v.path
        assert np.abs(g).sum() > 0, f"no gradient reaches {v.path}"
    assert branch_vars <= {id(v) for v in variables}


# ---- the math each layer documents, on plain arrays -------------------------

RNG = np.random.default_rng(0)
A = RNG.normal(size=(5, 7)).astype("float32")
B = RNG.normal(size=(5, 3)).astype("float32")


def _proj(layer, i, x):
    kernel, bias = (w.numpy() for w in layer.projections[i].weights)
    return x @ kernel + bias


def test_sum_and_product_add_and_multiply_the_projections():
    s = SumFusion(4)
    np.testing.assert_allclose(s([A, B]), _proj(s, 0, A) + _proj(s, 1, B), rtol=1e-5, atol=1e-6)
    p = ProductFusion(4)
    np.testing.assert_allclose(p([A, B]), _proj(p, 0, A) * _proj(p, 1, B), rtol=1e-5, atol=1e-6)


def test_weighted_fixed_weights_are_normalised():
    layer = WeightedFusion(4, input_weights=(3, 1))
    out = layer([A, B])
    np.testing.assert_allclose(out, 0.75 * _proj(layer, 0, A) + 0.25 * _proj(layer, 1, B),
                               rtol=1e-5, atol=1e-6)
    # Fixed weights are constants: only the two projections train.
    assert [w.name for w in layer.trainable_weights] == ["kernel", "bias"] * 2


def test_weighted_learned_weights_start_equal_and_train():
    layer = WeightedFusion(None)
    out = layer([A, A[:, ::-1].copy()])
    np.testing.assert_allclose(out, 0.5 * A + 0.5 * A[:, ::-1], rtol=1e-6)
    assert [w.name for w in layer.trainable_weights] == ["weight_logits"]
    with pytest.raises(ValueError, match="equal size"):
        WeightedFusion(None)([A, B])


def test_attention_weights_are_a_softmax_per_example():
    layer = AttentionFusion(4)
    fused, weights = layer([A, B], return_weights=True)
    weights = weights.numpy()
    assert weights.shape == (5, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    assert np.ptp(weights[:, 0]) > 0  # depends on the example
    expected = weights[:, :1] * _proj(layer, 0, A) + weights[:, 1:] * _proj(layer, 1, B)
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)


def test_gated_fusion_is_gates_times_tanh():
    layer = GatedFusion(4)
    fused, gates = layer([A, B], return_weights=True)
    gates = gates.numpy()
    assert gates.shape == (5, 2, 4) and ((gates > 0) & (gates < 1)).all()
    expected = gates[:, 0] * np.tanh(_proj(layer, 0, A)) + gates[:, 1] * np.tanh(_proj(layer, 1, B))
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)


def test_bilinear_is_mfb():
    layer = BilinearFusion(4, factors=3)
    out = layer([A, B]).numpy()
    joint = (_proj(layer, 0, A) * _proj(layer, 1, B)).reshape(5, 4, 3).sum(-1)
    root = np.sign(joint) * (np.sqrt(np.abs(joint) + 1e-7) - np.sqrt(1e-7))
    np.testing.assert_allclose(out, root / np.linalg.norm(root, axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_film_scales_and_shifts_the_projected_map():
    fmap = RNG.normal(size=(5, 3, 3, 2)).astype("float32")
    layer = FiLMFusion(4, pooling="avg")
    out = layer([fmap, B]).numpy()
    k, b = (w.numpy() for w in layer.project_map.weights)
    z = fmap @ k + b
    gk, gb = (w.numpy() for w in layer.film.weights)
    gamma, beta = np.split(B @ gk + gb, 2, axis=-1)
    expected = np.maximum((1 + gamma[:, None, None]) * z + beta[:, None, None], 0).mean(axis=(1, 2))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="rank 4"):
        FiLMFusion(4)([A, B])


@pytest.mark.parametrize("depth,layers,private,shared,size", [
    (0, 2, 0, 2, 4), (1, 2, 2, 1, 4), (2, 2, 4, 0, 8), (1, 3, 2, 2, 4)])
def test_layer_fusion_meets_at_the_given_depth(depth, layers, private, shared, size):
    layer = LayerFusion(4, depth=depth, num_layers=layers)
    assert layer([A, B]).shape == (5, size)
    assert (len(layer.private), len(layer.shared)) == (private, shared)
    if depth == 0:  # early: the first shared layer sees the concatenated inputs
        assert layer.shared[0].kernel.shape == (10, 4)


def test_vote_fusion_is_a_weighted_hard_vote():
    p1 = np.array([[0.6, 0.4], [0.1, 0.9]], "float32")
    p2 = np.array([[0.2, 0.8], [0.3, 0.7]], "float32")
    out = VoteFusion((3, 1))([p1, p2]).numpy()
    np.testing.assert_allclose(out, [[0.75, 0.25], [0.0, 1.0]])
    binary = VoteFusion((1, 1))([np.array([[0.7]], "float32"), np.array([[0.2]], "float32")])
    np.testing.assert_allclose(binary, [[0.5]])


@pytest.mark.parametrize("layer", [
    SumFusion(4), ProductFusion(4), WeightedFusion(4, input_weights=(1, 2)), AttentionFusion(4),
    GatedFusion(4), BilinearFusion(4, factors=2), LayerFusion(4, depth=1, num_layers=2),
    WeightedFusion(4, modalities=("image", "text")),
], ids=lambda layer: type(layer).__name__)
def test_layer_config_round_trip(layer):
    out = layer([A, B])
    config = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(config, safe_mode=True)
    again([A, B])
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(again([A, B]), out, rtol=1e-6)


# ---- documented special cases in whole models --------------------------------


def _head(model, name, x):
    return keras.Model(model.inputs, model.get_layer(name).output)(x, training=False).numpy()


def test_late_fusion_with_weights_1_0_is_the_image_head():
    x = inputs()
    model = build("late", fusion_weights=(1, 0))
    np.testing.assert_array_equal(predict(model, x), _head(model, "head_softmax_image", x))
    model = build("late", fusion_weights=(0, 2.5))
    np.testing.assert_allclose(predict(model, x), _head(model, "head_softmax_text", x), rtol=1e-6)


def test_late_fusion_learns_normalised_weights():
    model = build("late")
    assert mmzoo.fusion.modality_weights(model) == {"image": 0.5, "text": 0.5}
    model.get_layer("fusion_late").weight_logits.assign([np.log(3.0), 0.0])
    weights = mmzoo.fusion.modality_weights(model)
    assert weights["image"] == pytest.approx(0.75) and weights["text"] == pytest.approx(0.25)
    x = inputs()
    expected = 0.75 * _head(model, "head_softmax_image", x) + 0.25 * _head(model, "head_softmax_text", x)
    np.testing.assert_allclose(predict(model, x), expected, rtol=1e-5)


def _geometric_mean(probs, weights):
    """Normalised weighted geometric mean of rows of probabilities (numpy)."""
    w = np.asarray(weights, "float64") / np.sum(weights)
    logs = sum(wi * np.log(np.clip(p, 1e-7, 1 - 1e-7)) for wi, p in zip(w, probs))
    out = np.exp(logs - logs.max(axis=-1, keepdims=True))
    return out / out.sum(axis=-1, keepdims=True)


def test_late_fusion_product_rule_is_the_weighted_geometric_mean():
    x = inputs()
    model = build("late", decision_rule="product", fusion_weights=(3, 1), compile=False)
    randomize(model)
    image, text = _head(model, "head_softmax_image", x), _head(model, "head_softmax_text", x)
    np.testing.assert_allclose(predict(model, x), _geometric_mean([image, text], (3, 1)),
                               rtol=1e-4, atol=1e-6)
    # (1, 0): the image head alone, as with the mean rule.
    model = build("late", decision_rule="product", fusion_weights=(1, 0))
    np.testing.assert_allclose(predict(model, x), _head(model, "head_softmax_image", x),
                               rtol=1e-4, atol=1e-6)


def test_product_rule_can_pick_what_neither_head_picks_alone():
    layer = ProductRuleFusion(None, input_weights=(1, 1))
    image = np.array([[0.45, 0.45, 0.10]], "float32")  # the scene has classes 0 and 1
    text = np.array([[0.10, 0.40, 0.50]], "float32")  # the question asks for 1 or 2
    out = keras.ops.convert_to_numpy(layer([image, text]))
    assert out.argmax() == 1 and image.argmax() != 1 and text.argmax() != 1
    mean = keras.ops.convert_to_numpy(WeightedFusion(None, input_weights=(1, 1))([image, text]))
    np.testing.assert_allclose(mean, (image + text) / 2, rtol=1e-6)


def test_product_rule_with_sigmoid_heads_adds_logits():
    layer = ProductRuleFusion(None, input_weights=(1, 1))
    a, b = np.array([[0.9]], "float32"), np.array([[0.3]], "float32")
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    expected = 1 / (1 + np.exp(-(logit(a) + logit(b)) / 2))
    np.testing.assert_allclose(layer([a, b]), expected, rtol=1e-5)


def test_product_rule_ignores_a_missing_modality_and_never_gives_nan():
    layer = ProductRuleFusion(None, input_weights=(1, 1), modalities=("image", "text"))
    image = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], "float32")  # a hard zero too
    text = np.array([[0.0, 0.5, 0.5], [0.6, 0.3, 0.1]], "float32")
    mask = np.array([[1.0, 0.0], [0.0, 0.0]], "float32")
    out = keras.ops.convert_to_numpy(layer([image, text], modality_mask=mask))
    assert not np.isnan(out).any()
    np.testing.assert_allclose(out[0], image[0], atol=1e-6)  # text missing: the image head
    np.testing.assert_allclose(out[1], [1 / 3] * 3, rtol=1e-6)  # nothing present: uniform
    with pytest.raises(ValueError, match="fusion_dim` must be None"):
        ProductRuleFusion(8)


def test_product_rule_round_trips_with_safe_mode(tmp_path):
    model = build("hybrid", decision_rule="product", compile=False)
    randomize(model)
    x = inputs()
    expected = predict(model, x)
    assert type(model.get_layer("fusion_hybrid")) is ProductRuleFusion
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded.get_layer("fusion_hybrid")) is ProductRuleFusion
    np.testing.assert_allclose(predict(loaded, x), expected, rtol=1e-5, atol=1e-6)


def test_hybrid_combines_the_early_head_with_the_modality_heads():
    x = inputs()
    model = build("hybrid", fusion_weights=(2, 1, 1), hidden_units=(5,))
    assert model.get_layer("head_hidden_1_fused").input.shape == (None, 4 + 6 * 4)
    expected = (2 * _head(model, "head_softmax_fused", x) + _head(model, "head_softmax_image", x)
                + _head(model, "head_softmax_text", x)) / 4
    np.testing.assert_allclose(predict(model, x), expected, rtol=1e-5)
    early_only = build("hybrid", fusion_weights=(1, 0, 0))
    np.testing.assert_array_equal(predict(early_only, x), _head(early_only, "head_softmax_fused", x))


def test_attention_weights_are_inspectable_per_example():
    model = build("attention")
    randomize(model)
    weights = mmzoo.fusion.modality_weights(model, inputs(6))
    assert set(weights) == {"image", "text"} and weights["image"].shape == (6,)
    np.testing.assert_allclose(weights["image"] + weights["text"], 1.0, rtol=1e-6)
    assert np.ptp(weights["image"]) > 0
    with pytest.raises(ValueError, match="Received: inputs=None"):
        mmzoo.fusion.modality_weights(model)


def test_film_gets_the_image_feature_map_and_pools_after_modulating():
    model = build("film", pooling="max")
    assert model.get_layer("image_cnn").output.shape == (None, 30, 30, 4)
    assert model.get_layer("fusion_film").output.shape == (None, 8)
    flat = build("film", pooling="flatten")
    assert flat.get_layer("fusion_film").output.shape == (None, 30 * 30 * 8)
    with pytest.raises(ValueError, match=r"Received: pooling=None"):
        build("film", pooling=None)


def test_layer_depth_is_an_option():
    early, late = build("layer", fusion_depth=0), build("layer", fusion_depth=2)
    assert early.get_layer("fusion_layer").output.shape == (None, 8)
    assert late.get_layer("fusion_layer").output.shape == (None, 16)
    assert early.count_params() != late.count_params()
    with pytest.raises(ValueError, match=r"Received: fusion_depth=3"):
        build("layer", fusion_depth=3, fusion_layers=2)


def test_fusion_dim_sets_the_common_space():
    for fusion in ("sum", "product", "weighted", "attention", "gated", "bilinear"):
        assert build(fusion, fusion_dim=5).get_layer(f"fusion_{fusion}").output.shape == (None, 5)


@pytest.mark.parametrize("option,value,words", [
    ("fusion_dim", 0, "positive integer"),
    ("fusion_dim", 2.5, "positive integer"),
    ("fusion_weights", (1, -1), "non-negative numbers"),
    ("fusion_weights", (0, 0), "not all zero"),
    ("fusion_weights", "ab", "non-negative numbers"),
    ("fusion_depth", -1, "integer >= 0"),
    ("fusion_layers", 0, "positive integer"),
    ("bilinear_factors", 0, "positive integer"),
    ("modality_mask", "yes", "True or False"),
    ("modality_dropout", 1.0, "[0, 1)"),
])
def test_bad_fusion_option_values(option, value, words):
    with pytest.raises(ValueError) as error:
        mmzoo.build_model("classification", **{**SMALL, option: value})
    assert f"Received: {option}={value!r}" in str(error.value) and words in str(error.value)


def test_fusion_weights_must_match_the_modalities():
    with pytest.raises(ValueError, match=r"2 non-negative numbers.*Received: fusion_weights=\(1.0, 2.0, 3.0\)"):
        build("late", fusion_weights=(1, 2, 3))
    with pytest.raises(ValueError, match=r"3 non-negative numbers.*the fused head first"):
        build("hybrid", fusion_weights=(1, 2))


def test_an_option_of_another_fusion_is_refused():
    with pytest.raises(ValueError, match=r"`fusion_dim` has no effect .*fusion='concat'.*fusion='sum'"):
        build("concat", fusion_dim=8)
    with pytest.raises(ValueError, match=r"`bilinear_factors` has no effect"):
        build("sum", bilinear_factors=3)


def test_adding_a_fusion_is_one_registration(monkeypatch):
    monkeypatch.setattr(FUSIONS, "_components", dict(FUSIONS._components))

    @FUSIONS.register("max_test")
    def max_fusion(features, *, fusion_dim=6, name="fusion_max_test"):
        x = SumFusion(fusion_dim, name=f"{name}_sum")(list(features.values()))
        return keras.layers.Dense(fusion_dim, name=name)(x)

    model = build("max_test", fusion_dim=7)
    assert model.get_layer("fusion_max_test").output.shape == (None, 7)
    assert model.build_options["fusion_dim"] == 7
    with pytest.raises(ValueError, match="does not take a `modality_mask`"):
        build("max_test", modality_mask=True)


@pytest.mark.parametrize("fusion", ["concat", "sum", "attention"])
def test_feature_maps_are_refused_outside_film(fusion):
    with pytest.raises(ValueError, match=r"pooling=None .*fusion='film'"):
        build(fusion, pooling=None)
