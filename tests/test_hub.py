"""The "tfhub" image branch: TF-Hub style SavedModels wrapped with keras.layers.TFSMLayer."""

import numpy as np
import pytest
import tensorflow as tf

import keras
import mmzoo
from mmzoo import zoo
from mmzoo.branches.hub import HubModule, tfhub_branch
from mmzoo.data import Preprocessor, shapes_tokenizer


class _Module(tf.Module):
    """A TF-Hub style image module: `__call__` (positional) and a dict signature."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable([1.0, 1.0], name="scale")

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def __call__(self, images):
        # Feature vector: the largest and smallest pixel value, times a variable.
        stats = tf.stack([tf.reduce_max(images, [1, 2, 3]), tf.reduce_min(images, [1, 2, 3])], 1)
        return stats * self.scale

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def both(self, images):
        return {"feature_vector": self(images), "feature_map": images}


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    module = _Module()
    tf.saved_model.save(module, str(root / "module"), signatures={
        "serving_default": module.both.get_concrete_function()})
    encoder = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                                keras.layers.GlobalAveragePooling2D()])
    encoder.export(str(root / "keras_module"), verbose=False)  # endpoint "serve"
    return root


WHITE_AND_BLACK = np.stack([np.full((8, 8, 3), 255.0), np.zeros((8, 8, 3))]).astype(np.float32)


@pytest.mark.parametrize("pixel_range,features", [
    ((0, 1), [[1, 1], [0, 0]]), ((0, 255), [[255, 255], [0, 0]]), ((-1, 1), [[1, 1], [-1, -1]])])
def test_module_gets_the_pixel_range_it_wants(hub_dir, pixel_range, features):
    branch = tfhub_branch((8, 8, 3), image_handle=str(hub_dir / "module"),
                          image_pixel_range=pixel_range)
    assert branch.get_layer("image_tfhub_module").endpoint == "__call__"  # the TF-Hub API
    np.testing.assert_allclose(branch.predict(WHITE_AND_BLACK, verbose=0), features, atol=1e-6)


def test_signature_with_dict_output_needs_the_key(hub_dir):
    handle = str(hub_dir / "module")
    branch = tfhub_branch((8, 8, 3), image_handle=handle, image_endpoint="serving_default",
                          image_output_key="feature_vector")
    np.testing.assert_allclose(branch.predict(WHITE_AND_BLACK, verbose=0), [[1, 1], [0, 0]])
    with pytest.raises(ValueError, match=r"'feature_map', 'feature_vector'.*"
                                         r"Received: image_output_key=None"):
        tfhub_branch((8, 8, 3), image_handle=handle, image_endpoint="serving_default")
    with pytest.raises(ValueError, match="feature vector"):
        tfhub_branch((8, 8, 3), image_handle=handle, image_endpoint="serving_default",
                     image_output_key="feature_map")
    with pytest.raises(ValueError, match=r"one of '__call__', 'both', 'serving_default'.*"
                                         r"Received: image_endpoint='serve'"):
        tfhub_branch((8, 8, 3), image_handle=handle, image_endpoint="serve")


def _model(handle, **options):
    return mmzoo.build_model("classification", image_branch="tfhub", image_handle=handle,
                             image_shape=(8, 8, 3), text_branch="embedding", vocab_size=20,
                             sequence_length=4, embedding_dim=4, num_classes=3, **options)


def _data(n=8):
    rng = np.random.default_rng(0)
    x = {"image": rng.uniform(0, 255, (n, 8, 8, 3)).astype(np.float32),
         "text": rng.integers(1, 20, (n, 4)).astype(np.int32)}
    return x, rng.integers(0, 3, n)


def test_keras_export_module_trains_frozen_or_not(hub_dir):
    x, y = _data()
    handle = str(hub_dir / "keras_module")
    frozen = _model(handle)
    module = frozen.get_layer("image_tfhub").get_layer("image_tfhub_module")
    assert isinstance(module, keras.layers.TFSMLayer) and module.endpoint == "serve"
    before = [w.numpy().copy() for w in module.weights]
    frozen.fit(x, y, epochs=2, verbose=0)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, module.weights))
    tuned = _model(handle, image_trainable=True)
    module = tuned.get_layer("image_tfhub").get_layer("image_tfhub_module")
    before = [w.numpy().copy() for w in module.weights]
    tuned.fit(x, y, epochs=2, verbose=0)
    assert not all(np.array_equal(a, w.numpy()) for a, w in zip(before, module.weights))


def test_saves_but_loads_only_outside_safe_mode(hub_dir, tmp_path):
    x, y = _data()
    model = _model(str(hub_dir / "module"), image_trainable=True)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "hub.keras")
    with pytest.raises(ValueError, match="safe_mode=True"):
        keras.saving.load_model(tmp_path / "hub.keras")  # safe_mode is the default
    reloaded = keras.saving.load_model(tmp_path / "hub.keras", safe_mode=False)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0)["probabilities"],
                               model.predict(x, verbose=0)["probabilities"], atol=1e-6)
    # The module's trained variables came back from the .keras file.
    scale = reloaded.get_layer("image_tfhub").get_layer("image_tfhub_module").weights[0]
    np.testing.assert_allclose(scale.numpy(), model.get_layer("image_tfhub").get_layer(
        "image_tfhub_module").weights[0].numpy())
    # Nor does the plain layer deserialize in safe mode.
    config = keras.saving.serialize_keras_object(HubModule(str(hub_dir / "module"),
                                                           endpoint="__call__"))
    from keras.src.saving import serialization_lib

    with pytest.raises(ValueError), serialization_lib.SafeModeScope(True):
        keras.saving.deserialize_keras_object(config)


def test_zoo_refuses_a_hub_model(hub_dir, tmp_path):
    model = _model(str(hub_dir / "module"))
    pre = Preprocessor("classification", shapes_tokenizer(4), image_size=(8, 8, 3),
                       label_names=("a", "b", "c"))
    with pytest.raises(ValueError, match="TF-Hub / SavedModel layer.*safe_mode=True"):
        zoo.save_entry(tmp_path / "hub_entry", model, pre, metadata={})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option,value,words", [
    ("image_handle", "/no/such/module", "a TF-Hub handle (a URL) or the folder of a SavedModel"),
    ("image_handle", "", "a TF-Hub handle"),
    ("image_endpoint", "", "None or a non-empty string"),
    ("image_output_key", 3, "None or a non-empty string"),
    ("image_pixel_range", (0, 2), "one of (0, 1), (0, 255), (-1, 1)"),
])
def test_bad_options_are_clear(hub_dir, option, value, words):
    handle = value if option == "image_handle" else str(hub_dir / "module")
    extra = {} if option == "image_handle" else {option: value}
    with pytest.raises(ValueError) as error:
        _model(handle, **extra)
    assert words in str(error.value) and f"Received: {option}=" in str(error.value)


def test_handle_is_required():
    with pytest.raises(ValueError, match="`image_handle` is required for image_branch='tfhub'"):
        mmzoo.build_model("classification", image_branch="tfhub", image_shape=(8, 8, 3),
                          text_branch=None, num_classes=2)
