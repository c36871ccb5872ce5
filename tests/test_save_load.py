"""Every model kind round-trips through the .keras format with safe_mode=True."""

import numpy as np
import pytest

import keras
import mmzoo

KINDS = [
    ("classification", dict(image_branch="cnn", text_branch="lstm", num_classes=4)),
    ("classification", dict(image_branch="vgg16", text_branch="lstm", num_classes=3,
                            image_shape=(32, 32, 3), pooling="avg")),
    ("binary", dict(image_branch="cnn", text_branch="embedding")),
    ("binary", dict(image_branch="cnn", text_branch="dense", sequence_length=10)),
    ("multilabel", dict(image_branch="cnn", text_branch="lstm", num_classes=5,
                        hidden_units=(8,), dropout=0.3)),
    ("regression", dict(image_branch="cnn", text_branch=None, pooling="max")),
    ("regression", dict(image_branch=None, text_branch="lstm", num_outputs=2)),
]


def _inputs(model, n=3):
    rng = np.random.default_rng(0)
    x = {}
    for name, tensor in model.input.items():
        shape = (n, *tensor.shape[1:])
        if tensor.dtype == "int32":
            x[name] = rng.integers(0, 20, shape).astype("int32")
        elif name == "image":
            x[name] = rng.integers(0, 256, shape).astype("float32")
        else:
            x[name] = rng.random(shape).astype("float32")
    return x


@pytest.mark.parametrize("task,options", KINDS, ids=lambda v: v if isinstance(v, str) else
                         f"{v.get('image_branch')}-{v.get('text_branch')}")
def test_round_trip_with_safe_mode(task, options, tmp_path):
    options = {"image_shape": (16, 16, 3), "vocab_size": 20, "sequence_length": 6, **options}
    if options["text_branch"] == "dense":  # a float vector: no vocabulary
        del options["vocab_size"]
    model = mmzoo.build_model(task, **options)
    x = _inputs(model)
    y = model.predict(x, verbose=0)
    labels = {"classification": np.zeros(3), "binary": np.ones(3), "regression": np.ones((3, 1)),
              "multilabel": np.ones((3, 5))}[task]
    if task == "regression" and options.get("num_outputs") == 2:
        labels = np.ones((3, 2))
    model.fit(x, labels, epochs=1, verbose=0)  # the optimizer state is saved too
    y = model.predict(x, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)

    loaded = keras.saving.load_model(path, safe_mode=True)  # no custom_objects
    assert type(loaded) is mmzoo.MultimodalModel
    assert loaded.build_options == model.build_options
    for key in y:
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[key], y[key], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        loaded.evaluate(x, labels, verbose=0), model.evaluate(x, labels, verbose=0), rtol=1e-5
    )
    loaded.fit(x, labels, epochs=1, verbose=0)  # compiled state came back


def test_no_lambda_layers_anywhere():
    model = mmzoo.build_model("classification", image_branch="vgg16", image_shape=(32, 32, 3),
                              num_classes=2, vocab_size=20, sequence_length=4)
    seen = []

    def walk(layer):
        seen.append(type(layer).__name__)
        for sub in getattr(layer, "layers", []):
            walk(sub)

    walk(model)
    assert "Lambda" not in seen and "VGGPreprocessing" in seen
