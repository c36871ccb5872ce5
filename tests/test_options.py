"""Every build_model option is validated up front, with Keras-style messages."""

import re

import numpy as np
import pytest

import keras
import mmzoo
from mmzoo.registry import IMAGE_BRANCHES, option_validator
from mmzoo.tasks.options import known_options
from mmzoo.validators import anything

SMALL = dict(image_branch="cnn", text_branch="lstm", image_shape=(16, 16, 3),
             vocab_size=20, sequence_length=5, num_classes=3)

# (option, bad value, words the message must contain)
BAD_VALUES = [
    ("image_branch", "vgg61", "Did you mean 'vgg16'"),
    ("image_branch", 16, "one of"),
    ("text_branch", "grue", "Did you mean 'gru'?"),
    ("fusion", "concatt", "Did you mean 'concat'"),
    ("num_classes", 0, "positive integer"),
    ("num_classes", 2.5, "positive integer"),
    ("num_classes", True, "positive integer"),
    ("image_shape", (16, 16), "three positive integers"),
    ("image_shape", (16, -1, 3), "three positive integers"),
    ("image_shape", "16x16", "three positive integers"),
    ("vocab_size", 1, "integer >= 2"),
    ("vocab_size", "10000", "integer >= 2"),
    ("sequence_length", 0, "positive integer"),
    ("embedding_dim", -3, "positive integer"),
    ("text_units", 12.0, "positive integer"),
    ("image_filters", 0, "positive integer"),
    ("image_blocks", 0, "positive integer"),
    ("pooling", "mean", "'flatten', 'avg', 'max', None"),
    ("hidden_units", (8, 0), "tuple of positive integers"),
    ("dropout", 1.0, "[0, 1)"),
    ("dropout", "0.5", "[0, 1)"),
    ("name", "", "non-empty string"),
    ("compile", "yes", "True or False"),
    ("optimizer", "adamm", "optimizer name"),
    ("optimizer", 3, "optimizer name"),
    ("learning_rate", 0, "positive number"),
    ("learning_rate", -1e-3, "positive number"),
    ("loss", 5, "loss name or a callable"),
    ("metrics", "accuracy", "list of metrics"),
    ("jit_compile", "yes", "'auto', True or False"),
    ("fusion_dim", 0, "positive integer"),
    ("fusion_weights", (1, -1), "non-negative numbers"),
    ("decision_rule", "max", "one of 'mean', 'product'"),
    ("fusion_depth", -1, "integer >= 0"),
    ("fusion_layers", 0, "positive integer"),
    ("bilinear_factors", 0, "positive integer"),
    ("film_blocks", 0, "positive integer"),
    ("film_output_dim", -4, "None or a positive integer"),
    ("relation_layers", 0, "positive integer"),
    ("attention_layers", 0, "positive integer"),
    ("attention_heads", 2.0, "positive integer"),
    ("film_readout", "rn", "one of 'pool', 'relation', 'spatial_softmax'"),
    ("text_layers", 0, "positive integer"),
    ("text_kernel_size", 0, "positive integer"),
    ("text_projection", "relu", "'tanh'"),
    ("projection_dim", 0, "positive integer"),
    ("initial_temperature", 0.0, "positive number"),
    ("coord_channels", 1, "True or False"),
    ("modality_mask", "yes", "True or False"),
    ("modality_dropout", 1.0, "[0, 1)"),
    ("decoder", "gru", "'lstm'"),
    ("architecture", "mix", "'merge', 'inject'"),
    ("image_handle", "/no/such/module", "TF-Hub handle"),
    ("image_endpoint", "", "non-empty string"),
    ("image_output_key", 3, "non-empty string"),
    ("image_pixel_range", (0, 2), "one of (0, 1), (0, 255), (-1, 1)"),
    ("audio_branch", "gr", "Did you mean 'gru'?"),
    ("audio_samples", 0, "positive integer"),
    ("audio_sample_rate", 4000, "integer >= 8000"),
    ("audio_mel_bins", 0, "positive integer"),
    ("audio_normalization", "batch", "one of 'utterance', None"),
    ("audio_filters", 0, "positive integer"),
    ("audio_blocks", 0, "positive integer"),
    ("audio_pooling", "mean", "one of 'avg', 'max', 'flatten'"),
    ("audio_units", 2.5, "positive integer"),
    ("audio_time_pool", 0, "positive integer"),
]

VGG_BAD_VALUES = [
    ("image_weights", "imagenett", "'imagenet' or the path"),
    ("image_weights", "/no/such/file.h5", "'imagenet' or the path"),
    ("image_trainable", "no", "None, True or False"),
    ("image_shape", (16, 16, 3), "at least 32x32"),
    ("image_shape", (64, 64, 1), "(height, width, 3)"),
]


def _assert_clear(error, option, value, words):
    message = str(error.value)
    assert type(error.value) is ValueError
    assert f"`{option}`" in message or option in message
    assert f"Received: {option}={value!r}" in message or f"Received: {option}=" in message
    assert words in message
    assert "tensorflow" not in message.lower()
    # Raised by mmzoo's own checks, not from inside Keras or TensorFlow.
    frames = [f.path for f in error.traceback]
    assert not any(re.search(r"site-packages[/\\](keras|tensorflow)", str(p)) for p in frames)


@pytest.mark.parametrize("option,value,words", BAD_VALUES)
def test_bad_values_are_clear_value_errors(option, value, words):
    with pytest.raises(ValueError) as error:
        mmzoo.build_model("classification", **{**SMALL, option: value})
    _assert_clear(error, option, value, words)


@pytest.mark.parametrize("option,value,words", VGG_BAD_VALUES)
def test_bad_vgg16_values_are_clear_value_errors(option, value, words):
    options = {**SMALL, "image_branch": "vgg16", "image_shape": (32, 32, 3), option: value}
    with pytest.raises(ValueError) as error:
        mmzoo.build_model("classification", **options)
    _assert_clear(error, option, value, words)


def test_every_builtin_option_has_a_validator_and_a_bad_value_test():
    tested = {o for o, _, _ in BAD_VALUES + VGG_BAD_VALUES}
    # Validators live beside their components (tests/test_option_validators.py).
    assert not [o for o in known_options() if option_validator(o) is anything]
    assert known_options() <= tested | {"num_outputs"}


def test_unknown_option_is_a_type_error_listing_the_allowed_ones():
    with pytest.raises(TypeError, match=r"unexpected option\(s\) 'num_class'.*Allowed options:.*num_classes"):
        mmzoo.build_model("classification", num_class=3)


def test_unknown_task():
    with pytest.raises(ValueError, match=r"`task` must be one of .*'classification'.*Received: task='clasification'"):
        mmzoo.build_model("clasification", **SMALL)


def test_missing_required_option():
    options = {k: v for k, v in SMALL.items() if k != "num_classes"}
    with pytest.raises(ValueError, match=r"`num_classes` is required for task='classification'"):
        mmzoo.build_model("classification", **options)


def test_option_of_another_branch_is_refused():
    with pytest.raises(ValueError, match=r"`image_weights` has no effect .*image_branch='vgg16'"):
        mmzoo.build_model("classification", **SMALL, image_weights="imagenet")
    with pytest.raises(ValueError, match=r"`num_classes` has no effect on this model \(task='binary'"):
        mmzoo.build_model("binary", **SMALL)


def test_compile_settings_without_compile_are_refused():
    with pytest.raises(ValueError, match=r"`learning_rate` has no effect with compile=False"):
        mmzoo.build_model("classification", **SMALL, compile=False, learning_rate=0.1)


def test_no_modality_at_all():
    with pytest.raises(ValueError, match="at least one modality"):
        mmzoo.build_model("classification", num_classes=2, image_branch=None, text_branch=None)


def test_baseline_from_the_fused_models_options():
    """Options of an absent modality are ignored: baselines reuse the same options."""
    image_only = mmzoo.build_model("classification", **{**SMALL, "fusion": "concat", "text_branch": None})
    assert list(image_only.input) == ["image"]
    assert "vocab_size" not in image_only.build_options


def test_adding_a_branch_is_one_registration(monkeypatch):
    monkeypatch.setattr(IMAGE_BRANCHES, "_components", dict(IMAGE_BRANCHES._components))

    @IMAGE_BRANCHES.register("tiny")
    def tiny_branch(input_shape, *, image_filters=4, name="image_tiny"):
        inputs = keras.Input(input_shape, name="image")
        x = keras.layers.Conv2D(image_filters, 3, name="image_tiny_conv")(inputs)
        x = keras.layers.GlobalAveragePooling2D(name="image_tiny_pool")(x)
        return keras.Model(inputs, x, name=name)

    model = mmzoo.build_model("classification", **{**SMALL, "image_branch": "tiny"})
    assert model.get_layer("image_tiny").output.shape == (None, 4)
    assert "tiny" in str(pytest.raises(ValueError, mmzoo.build_model, "classification",
                                       **{**SMALL, "image_branch": "tinyy"}).value)
    with pytest.raises(ValueError, match="already registered"):
        IMAGE_BRANCHES.register("tiny")(tiny_branch)


def test_build_options_rebuild_the_same_architecture():
    model = mmzoo.build_model("classification", **SMALL, hidden_units=(8,), dropout=0.1)
    again = mmzoo.build_model(**model.build_options)
    assert again.build_options == model.build_options
    assert [w.shape for w in again.weights] == [w.shape for w in model.weights]
    x = {"image": np.zeros((1, 16, 16, 3), "float32"), "text": np.ones((1, 5), "int32")}
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again.predict(x, verbose=0)["probabilities"],
                               model.predict(x, verbose=0)["probabilities"], atol=1e-6)
