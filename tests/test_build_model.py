"""build_model rebuilds the seeds' models exactly and assembles every model kind."""

import numpy as np
import pytest

import keras
import mmzoo


def _weighted_layers(model):
    """(class name, weight shapes) of every layer with weights, in graph order."""
    out = []

    def walk(layer):
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                walk(sub)
        elif layer.weights:
            out.append((type(layer).__name__, [tuple(w.shape) for w in layer.weights]))

    walk(model)
    return out


def _copy_weights(src, dst):
    """Copies weights layer by layer in graph order (the layouts must match)."""
    src_w = [w for _, w in _weights_in_order(src)]
    dst_layers = [layer for layer, _ in _weights_in_order(dst)]
    assert len(src_w) == len(dst_layers)
    for layer, weights in zip(dst_layers, src_w):
        layer.set_weights(weights)


def _weights_in_order(model):
    pairs = []

    def walk(layer):
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                walk(sub)
        elif layer.weights:
            pairs.append((layer, layer.get_weights()))

    walk(model)
    return pairs


def test_seed_model_conv2d_embedding_flatten_is_exact():
    """Seed 003: Conv2D(32) + Flatten; Embedding(10000, 64) + Flatten; concat; Dense(10)."""
    model = mmzoo.build_model(
        "classification", image_branch="cnn", text_branch="embedding",
        image_shape=(28, 28, 1), vocab_size=10000, sequence_length=100,
        embedding_dim=64, num_classes=10,
    )
    # The same model written by hand in plain Keras, as in the seed.
    image = keras.Input((28, 28, 1))
    text = keras.Input((100,))
    flat1 = keras.layers.Flatten()(keras.layers.Conv2D(32, (3, 3), activation="relu")(image))
    flat2 = keras.layers.Flatten()(keras.layers.Embedding(10000, 64)(text))
    fused = keras.layers.concatenate([flat1, flat2])
    output = keras.layers.Dense(10, activation="softmax")(fused)
    by_hand = keras.Model([image, text], output)

    assert _weighted_layers(model) == _weighted_layers(by_hand)
    assert model.count_params() == by_hand.count_params() == 920_650
    _copy_weights(by_hand, model)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 28, 28, 1)).astype("float32")
    tokens = rng.integers(0, 10000, (4, 100)).astype("int32")
    ours = model.predict({"image": images, "text": tokens}, verbose=0)["probabilities"]
    # mmzoo takes raw pixels and rescales inside the graph; the seed fed [0, 1].
    theirs = by_hand.predict([images / 255.0, tokens], verbose=0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert model.loss == "sparse_categorical_crossentropy"


def test_seed_model_vgg16_dense_text_sigmoid_is_exact():
    """Seed 002: VGG16(include_top=False) + Dense(128) on a 100-d text vector + sigmoid."""
    model = mmzoo.build_model(
        "binary", image_branch="vgg16", text_branch="dense",
        image_shape=(224, 224, 3), sequence_length=100, text_units=128,
    )
    image = keras.Input((224, 224, 3))
    text = keras.Input((100,))
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_tensor=image)
    image_features = keras.layers.Flatten()(vgg.output)  # the seed concatenated a 4-D map
    text_features = keras.layers.Dense(128, activation="relu")(text)
    fused = keras.layers.Concatenate()([image_features, text_features])
    output = keras.layers.Dense(1, activation="sigmoid")(fused)
    by_hand = keras.Model([image, text], output)

    assert _weighted_layers(model) == _weighted_layers(by_hand)
    assert model.count_params() == by_hand.count_params()
    _copy_weights(by_hand, model)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 224, 224, 3)).astype("float32")
    vectors = rng.random((2, 100)).astype("float32")
    ours = model.predict({"image": images, "text": vectors}, verbose=0)["probability"]
    preprocessed = keras.applications.vgg16.preprocess_input(images.copy())
    theirs = by_hand.predict([preprocessed, vectors], verbose=0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    assert model.loss == "binary_crossentropy"


def test_seed_model_conv2d_lstm_softmax_is_exact():
    """Seed 001: Conv2D(64) + Flatten; Embedding + LSTM(128); concat; Dense(10, softmax)."""
    model = mmzoo.build_model(
        "classification", image_branch="cnn", image_filters=64, text_branch="lstm",
        text_units=128, image_shape=(32, 32, 3), vocab_size=10000,
        sequence_length=20, embedding_dim=64, num_classes=10,
    )
    image = keras.Input((32, 32, 3))
    text = keras.Input((20,))
    conv = keras.layers.Flatten()(keras.layers.Conv2D(64, (3, 3), activation="relu")(image))
    lstm = keras.layers.LSTM(128)(keras.layers.Embedding(10000, 64, mask_zero=True)(text))
    output = keras.layers.Dense(10, activation="softmax")(keras.layers.concatenate([conv, lstm]))
    by_hand = keras.Model([image, text], output)

    assert _weighted_layers(model) == _weighted_layers(by_hand)
    assert model.count_params() == by_hand.count_params()
    _copy_weights(by_hand, model)
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (3, 32, 32, 3)).astype("float32")
    tokens = rng.integers(1, 10000, (3, 20)).astype("int32")
    tokens[:, 15:] = 0  # padded tails are masked on both sides
    ours = model.predict({"image": images, "text": tokens}, verbose=0)["probabilities"]
    theirs = by_hand.predict([images / 255.0, tokens], verbose=0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_layer_names_inputs_and_outputs_are_deterministic():
    model = mmzoo.build_model(
        "multilabel", image_branch="vgg16", text_branch="lstm", image_shape=(32, 32, 3),
        vocab_size=50, sequence_length=8, num_classes=6,
    )
    names = [layer.name for layer in model.layers]
    assert names == ["image", "text", "image_vgg16", "text_lstm", "fusion_concat", "head_sigmoid"]
    assert set(model.input) == {"image", "text"}
    assert model.input["text"].dtype == "int32"
    assert list(model.output) == ["probabilities"]
    assert model.get_layer("image_vgg16").get_layer("block5_conv3") is not None


@pytest.mark.parametrize(
    "task,options,output,shape",
    [
        ("classification", dict(text_branch=None, num_classes=4), "probabilities", (4,)),
        ("binary", dict(image_branch=None), "probability", (1,)),
        ("regression", dict(image_branch=None, text_branch="embedding"), "value", (1,)),
        ("regression", dict(num_outputs=3, hidden_units=(16, 8), dropout=0.2), "value", (3,)),
    ],
)
def test_single_modality_baselines_and_other_heads(task, options, output, shape):
    base = dict(image_branch="cnn", text_branch="lstm", image_shape=(16, 16, 3),
                vocab_size=30, sequence_length=6)
    model = mmzoo.build_model(task, **{**base, **options})
    modalities = [m for m in ("image", "text") if model.build_options.get(f"{m}_branch")]
    assert sorted(model.input) == sorted(modalities)
    assert "fusion" not in model.build_options or len(modalities) > 1
    inputs = {
        "image": np.full((2, 16, 16, 3), 128, "float32"),
        "text": np.ones((2, 6), "int32"),
    }
    pred = model.predict({m: inputs[m] for m in modalities}, verbose=0)
    assert pred[output].shape == (2, *shape)


def test_vgg16_frozen_by_default_only_with_pretrained_weights(tmp_path):
    random_init = mmzoo.build_model("binary", image_shape=(32, 32, 3), image_branch="vgg16",
                                    text_branch=None, compile=False)
    assert random_init.get_layer("image_vgg16").get_layer("block1_conv1").trainable
    frozen = mmzoo.build_model("binary", image_shape=(32, 32, 3), image_branch="vgg16",
                               text_branch=None, image_trainable=False, compile=False)
    assert frozen.count_params() == random_init.count_params()
    assert len(frozen.trainable_weights) == 2  # only the head
    # A local weights file: the offline stand-in for image_weights="imagenet".
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    base.save_weights(path)
    loaded = mmzoo.build_model("binary", image_shape=(32, 32, 3), image_branch="vgg16",
                               text_branch=None, image_weights=str(path), pooling="avg")
    branch = loaded.get_layer("image_vgg16")
    np.testing.assert_array_equal(
        branch.get_layer("block3_conv2").get_weights()[0],
        base.get_layer("block3_conv2").get_weights()[0],
    )
    assert not branch.get_layer("block1_conv1").trainable  # pretrained: frozen
    assert branch.output.shape == (None, 512)


def test_compile_options_override_the_heads_defaults():
    model = mmzoo.build_model(
        "classification", image_branch="cnn", text_branch=None, image_shape=(8, 8, 1),
        num_classes=3, optimizer="sgd", learning_rate=0.5,
        loss="categorical_crossentropy", metrics=["categorical_accuracy"],
    )
    assert model.loss == "categorical_crossentropy"
    assert type(model.optimizer).__name__ == "SGD"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.5)
    assert not mmzoo.build_model("classification", image_branch="cnn", text_branch=None,
                                 image_shape=(8, 8, 1), num_classes=3, compile=False).compiled


def test_training_learns_a_task_that_needs_both_modalities():
    """Label = (image bright?) XOR (text token is 2): neither modality alone is enough."""
    rng = np.random.default_rng(0)
    n = 512
    bright = rng.integers(0, 2, n)
    word = rng.integers(0, 2, n)
    images = (bright[:, None, None, None] * 200 + rng.integers(0, 40, (n, 8, 8, 1))).astype("float32")
    tokens = np.stack([word + 1, np.ones(n, int)], axis=1).astype("int32")
    labels = (bright ^ word).astype("float32")
    model = mmzoo.build_model(
        "binary", image_branch="cnn", text_branch="embedding", image_shape=(8, 8, 1),
        image_filters=4, vocab_size=4, sequence_length=2, embedding_dim=4,
        hidden_units=16, learning_rate=0.01,
    )
    x = {"image": images, "text": tokens}
    before = model.evaluate(x, labels, verbose=0, return_dict=True)
    model.fit(x, labels, epochs=30, batch_size=64, verbose=0)
    after = model.evaluate(x, labels, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] / 2
    assert after["accuracy"] > 0.95


def test_convnet_branch_blocks_and_refusal():
    model = mmzoo.build_model("classification", image_branch="convnet", text_branch=None,
                              image_shape=(32, 32, 3), image_filters=8, image_blocks=3,
                              num_classes=4)
    branch = model.get_layer("image_convnet")
    assert [branch.get_layer(f"image_convnet_block{i}_conv").filters for i in (1, 2, 3)] == [8, 16, 32]
    assert branch.output.shape == (None, 4 * 4 * 32)
    with pytest.raises(ValueError, match=r"at least 16 pixels.*Received: image_shape=\(8, 8, 3\)"):
        mmzoo.build_model("classification", image_branch="convnet", text_branch=None,
                          image_shape=(8, 8, 3), image_blocks=4, num_classes=4)


def test_a_single_modality_model_takes_the_full_data_dict():
    # One data dict for every model of a comparison: the text-only baseline uses
    # "text" and ignores "image" (Keras alone would feed the image to "text").
    model = mmzoo.build_model("classification", image_branch=None, text_branch="lstm",
                              vocab_size=30, sequence_length=6, num_classes=3)
    rng = np.random.default_rng(0)
    text = rng.integers(1, 30, (4, 6)).astype("int32")
    full = {"image": rng.normal(size=(4, 32, 32, 3)).astype("float32"), "text": text}
    expected = model.predict({"text": text}, verbose=0)["probabilities"]
    np.testing.assert_allclose(model.predict(full, verbose=0)["probabilities"], expected,
                               rtol=1e-6)
    model.fit(full, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    with pytest.raises((KeyError, ValueError)):
        model.predict({"image": full["image"]}, verbose=0)  # a missing input still fails
