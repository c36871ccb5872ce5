"""Modalities are declared once (`mmzoo.modalities`), and build_model reads any declared set.

A toy third modality, "tabular" (float32 feature vectors, one registered
branch: a Dense layer), is declared inside the tests and removed after each,
so other tests see the built-in modalities only (image, text, audio).
"""

import warnings

import numpy as np
import pytest

import keras
import mmzoo
from mmzoo.data import Preprocessor, Tokenizer
from mmzoo.modalities import AUDIO, IMAGE, TEXT, Modality
from mmzoo.registry import IMAGE_BRANCHES, MODALITIES, TEXT_BRANCHES, Registry
from mmzoo.tasks.options import MODEL_DEFAULTS, known_options
from mmzoo.validators import positive_int

SMALL = dict(image_branch="cnn", text_branch="lstm", image_shape=(16, 16, 3), image_filters=4,
             vocab_size=20, embedding_dim=4, text_units=4, sequence_length=5, num_classes=3)
ROWS = 4  # tabular_size in these tests
BUILTIN = ["image", "text", "audio"]  # the declared modalities, in model order


def _tabular_modality(registry, **changes):
    fields = dict(name="tabular", dtype="float32", branches=registry, shape_option="tabular_size",
                  shape_default=8, shape_validator=positive_int, argument="rows",
                  preprocess=lambda preprocessor, rows: np.atleast_2d(np.asarray(rows, np.float32)))
    return Modality(**{**fields, **changes})


@pytest.fixture
def tabular():
    """Declares the "tabular" modality with one branch, "dense"; removes both afterwards."""
    branches = Registry("tabular branch", "tabular_branch")

    @branches.register("dense", validators={"tabular_units": positive_int})
    def tabular_dense(tabular_size, *, tabular_units=6, name="tabular_dense"):
        inputs = keras.Input((tabular_size,), dtype="float32", name="tabular")
        x = keras.layers.Dense(tabular_units, activation="relu", name=f"{name}_dense")(inputs)
        return keras.Model(inputs, x, name=name)

    modality = MODALITIES.register(_tabular_modality(branches))
    try:
        yield modality
    finally:
        MODALITIES.unregister("tabular")
        branches.unregister("dense")
    assert MODALITIES.names() == BUILTIN
    assert "tabular_branch" not in known_options() and "tabular_size" not in known_options()


def _arrays(n, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.uniform(0, 255, (n, 16, 16, 3)).astype(np.float32),
            "text": rng.integers(1, 20, (n, 5)).astype(np.int32),
            "tabular": rng.normal(size=(n, ROWS)).astype(np.float32)}


def test_image_text_and_audio_are_declared_in_model_order():
    assert MODALITIES.names() == BUILTIN
    assert MODALITIES.all() == [IMAGE, TEXT, AUDIO] and mmzoo.MODALITIES is MODALITIES
    assert (IMAGE.branches, IMAGE.branch_option, IMAGE.shape_option) == (
        IMAGE_BRANCHES, "image_branch", "image_shape")
    assert (TEXT.branches, TEXT.branch_option, TEXT.shape_option) == (
        TEXT_BRANCHES, "text_branch", "sequence_length")
    assert (IMAGE.dtype, TEXT.dtype, IMAGE.argument, TEXT.argument) == (
        "float32", "int32", "images", "texts")
    assert (AUDIO.dtype, AUDIO.argument, AUDIO.shape_option, AUDIO.default_branch) == (
        "float32", "audio", "audio_samples", None)
    # The option defaults are the declared ones, unchanged.
    assert dict(MODEL_DEFAULTS) == {
        "image_branch": "vgg16", "text_branch": "lstm", "audio_branch": None, "fusion": None,
        "image_shape": (224, 224, 3), "sequence_length": 100, "audio_samples": 48000,
        "hidden_units": (),
        "dropout": 0.0, "name": None, "modality_mask": False, "modality_dropout": 0.0}
    images = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    removed = IMAGE.remove(images)  # mean colour per image
    np.testing.assert_allclose(removed[0, 1, 1], images[0].mean(axis=(0, 1)))
    assert not TEXT.remove(np.ones((2, 5), np.int32)).any()


@pytest.mark.parametrize("fusion", ["concat", "sum", "late"])
def test_a_three_modality_model_fits_predicts_saves_and_masks(tabular, fusion, tmp_path):
    model = mmzoo.build_model("classification", **SMALL, fusion=fusion, tabular_branch="dense",
                              tabular_size=ROWS, modality_mask=True)
    assert list(model.input) == ["image", "text", "tabular", "modality_mask"]
    assert model.input["tabular"].shape[1:] == (ROWS,)
    assert model.input["modality_mask"].shape[1:] == (3,)
    assert model.build_options["tabular_branch"] == "dense"
    assert model.build_options["tabular_size"] == ROWS
    assert model.build_options["tabular_units"] == 6
    assert model.get_layer("tabular_dense") is not None

    x = {**_arrays(8), "modality_mask": np.ones((8, 3), np.float32)}
    model.fit(x, np.arange(8) % 3, batch_size=8, epochs=1, verbose=0)
    before = model.predict(x, verbose=0)["probabilities"]
    assert before.shape == (8, 3) and np.all(np.isfinite(before))

    # The third mask column is the tabular one: marked missing, its values do not count.
    missing = {**x, "modality_mask": np.tile(np.float32([[1, 1, 0]]), (8, 1))}
    a = model.predict(missing, verbose=0)["probabilities"]
    b = model.predict({**missing, "tabular": x["tabular"] * 100 + 7}, verbose=0)["probabilities"]
    np.testing.assert_allclose(a, b, atol=1e-6)
    c = model.predict({**x, "tabular": x["tabular"] * 100 + 7}, verbose=0)["probabilities"]
    assert not np.allclose(before, c, atol=1e-6)

    path = tmp_path / "three.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, mmzoo.MultimodalModel)
    assert loaded.build_options == model.build_options
    np.testing.assert_array_equal(loaded.predict(x, verbose=0)["probabilities"], before)
    np.testing.assert_array_equal(loaded.predict(missing, verbose=0)["probabilities"], a)


def test_modality_dropout_and_a_single_new_modality(tabular):
    model = mmzoo.build_model("classification", **SMALL, tabular_branch="dense",
                              tabular_size=ROWS, fusion="sum", modality_dropout=0.3)
    x = _arrays(4)
    model.fit(x, np.arange(4) % 3, batch_size=4, epochs=1, verbose=0)
    assert model.get_layer("modality_dropout").rate == 0.3

    alone = mmzoo.build_model("regression", image_branch=None, text_branch=None,
                              tabular_branch="dense", tabular_size=ROWS)
    assert list(alone.input) == ["tabular"]
    assert alone.build_options["image_branch"] is None
    assert alone.predict({"tabular": x["tabular"]}, verbose=0)["value"].shape == (4, 1)


def test_models_without_the_new_modality_keep_their_config(tabular):
    with_tabular = mmzoo.build_model("classification", **SMALL).get_config()
    assert "tabular_branch" not in with_tabular and "tabular_size" not in with_tabular
    # Its options alone (without its branch) are ignored, with a warning, like text options
    # on an image-only model.
    with pytest.warns(UserWarning, match=r"tabular_size=4 has no effect on this model \(task="
                                         r"'classification', image_branch='cnn', text_branch="
                                         r"'lstm', fusion='concat'\), which reads image and "
                                         r"text only: it is ignored"):
        mmzoo.build_model("classification", **SMALL, tabular_size=4)
    MODALITIES.unregister("tabular")
    try:
        assert mmzoo.build_model("classification", **SMALL).get_config() == with_tabular
    finally:
        MODALITIES.register(tabular)


def test_the_modality_options_are_validated(tabular):
    cases = [
        ({"tabular_branch": "dens"}, "tabular_branch", "Did you mean 'dense'?"),
        ({"tabular_branch": 3}, "tabular_branch", "must be one of 'dense'"),
        ({"tabular_branch": "dense", "tabular_size": 0}, "tabular_size", "positive integer"),
        ({"tabular_branch": "dense", "tabular_units": -1}, "tabular_units", "positive integer"),
    ]
    for options, option, words in cases:
        with pytest.raises(ValueError) as error:
            mmzoo.build_model("classification", **SMALL, **options)
        message = str(error.value)
        assert f"Received: {option}={options[option]!r}" in message and words in message
    with pytest.raises(ValueError, match=r"`image_branch`, `text_branch`, `audio_branch` and "
                                         r"`tabular_branch` cannot all be None\. Received: "
                                         r"image_branch=None, text_branch=None, "
                                         r"audio_branch=None, tabular_branch=None"):
        mmzoo.build_model("classification", image_branch=None, text_branch=None, num_classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mmzoo.build_model("classification", **SMALL, tabular_branch=None)


def test_a_declaration_is_checked_when_registered(tabular):
    branches = Registry("tabular branch", "tabular_branch")
    bad = [
        (dict(name="Tabular"), "Received: name='Tabular'"),
        (dict(name="modality_mask"), "Received: name='modality_mask'"),
        (dict(name="image"), "Received: name='image'"),
        (dict(name="tabular"), "already registered. Received: name='tabular'"),
        (dict(name="sensor", branches=Registry("sensor branch", "sensor_branches")),
         "Received: branches=Registry('sensor branch', names=[]) with option='sensor_branches'"),
        (dict(name="sensor", branches=Registry("sensor branch", "sensor_branch"),
              shape_option="image_shape"), "Received: shape_option='image_shape'"),
        (dict(name="sensor", branches=Registry("sensor branch", "sensor_branch"),
              shape_option="dropout"), "Received: shape_option='dropout'"),
        (dict(name="sensor", branches=Registry("sensor branch", "sensor_branch"),
              shape_option="fusion_dim"), "Received: shape_option='fusion_dim'"),
        (dict(name="sensor", branches=Registry("sensor branch", "sensor_branch"),
              shape_option="Sensor size"), "Received: shape_option='Sensor size'"),
        (dict(name="sensor", branches=Registry("sensor branch", "sensor_branch"),
              shape_option="sensor_size", argument="texts"), "Received: argument='texts'"),
        (dict(name="sensor", branches=Registry("sensor branch", "sensor_branch"),
              shape_option="sensor_size", argument=None, shape_default=0),
         "Received: sensor_size=0"),
    ]
    for changes, words in bad:
        with pytest.raises(ValueError) as error:
            MODALITIES.register(_tabular_modality(branches, **changes))
        assert words in str(error.value), str(error.value)
    with pytest.raises(ValueError, match=r"Received: dtype='float'"):
        _tabular_modality(branches, dtype="float")
    with pytest.raises(ValueError, match=r"Received: preprocess='rows'"):
        _tabular_modality(branches, preprocess="rows")
    with pytest.raises(ValueError, match=r"Unknown modality: .*Did you mean 'text'\? "
                                         r"Received: 'txt'"):
        MODALITIES.get("txt")
    assert MODALITIES.names() == BUILTIN + ["tabular"]
    assert "sensor_branch" not in known_options() and "sensor_size" not in known_options()


def test_the_preprocessor_takes_every_declared_modality(tabular):
    tokenizer = Tokenizer.from_texts(["a red circle", "a blue square"], sequence_length=5)
    pre = Preprocessor("classification", tokenizer, image_size=(16, 16, 3),
                       label_names=("a", "b", "c"))
    images = np.zeros((3, 16, 16, 3), np.uint8)
    inputs = pre(images=images, texts="a red circle", rows=np.ones(ROWS))
    assert list(inputs) == ["image", "text", "tabular"]
    assert inputs["tabular"].shape == (3, ROWS) and inputs["tabular"].dtype == np.float32
    assert inputs["text"].shape == (3, 5) and inputs["text"].dtype == np.int32
    assert list(pre(rows=np.ones((2, ROWS)))) == ["tabular"]
    with pytest.raises(ValueError, match=r"`images`, `texts` and `rows` must have the same "
                                         r"number of items \(or some of them a single item\)\. "
                                         r"Received: 3 images, 1 texts and 2 rows"):
        pre(images=images, texts="a red circle", rows=np.ones((2, ROWS)))
    with pytest.raises(ValueError, match=r"Pass `images`, `texts`, `rows` or several\. "
                                         r"Received: images=None, texts=None, rows=None"):
        pre()
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) 'row'.*Received: row=\.\.\."):
        pre(row=np.ones(ROWS))


def test_the_new_modality_reaches_a_model_through_the_preprocessor(tabular):
    model = mmzoo.build_model("classification", **SMALL, tabular_branch="dense",
                              tabular_size=ROWS, modality_mask=True, compile=False)
    tokenizer = Tokenizer.from_texts(["a red circle", "a blue square"], sequence_length=5)
    pre = Preprocessor("classification", tokenizer, image_size=(16, 16, 3),
                       label_names=("a", "b", "c"))
    inputs = pre(images=np.zeros((2, 16, 16, 3)), texts=["a red circle", "a blue square"],
                 rows=np.ones((2, ROWS)))
    inputs["modality_mask"] = np.ones((2, 3), np.float32)
    assert model.predict(inputs, verbose=0)["probabilities"].shape == (2, 3)
