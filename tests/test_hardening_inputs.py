"""Issue 14, items 3, 4, 5 and 8: public arguments, token ids, mask values, messages.

Every bad argument or array is refused where it enters mmzoo, with a Keras-style
message (what is wrong, what is allowed, `Received: ...`), never a TensorFlow
stack trace, an `UnboundLocalError` or a silent change of meaning.
"""

import io
import json
import shutil
import zipfile

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import zoo
from mmzoo.cli import main as cli_main
from mmzoo.data import Preprocessor
from mmzoo.data.tokenizer import Tokenizer
from mmzoo.zoo.entry import EntryVerificationError

WORDS = ["what", "colour", "is", "the", "circle", "red", "blue", "a"]
ANSWERS = ("red", "blue", "green")
SMALL = dict(image_branch="cnn", text_branch="lstm", image_shape=(16, 16, 3), image_filters=2,
             pooling="avg", sequence_length=6, vocab_size=len(WORDS) + 4, embedding_dim=4,
             text_units=4, num_classes=3)
IMAGE = np.zeros((16, 16, 3), np.uint8)


@pytest.fixture(scope="module")
def entry_path(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = mmzoo.build_model("classification", **SMALL)
    pre = Preprocessor("classification", Tokenizer(WORDS, sequence_length=6),
                       image_size=(16, 16, 3), label_names=ANSWERS)
    return zoo.save_entry(tmp_path_factory.mktemp("zoo") / "tiny_vqa", model, pre,
                          metadata={"description": "tiny"})


@pytest.fixture(scope="module")
def entry(entry_path):
    return zoo.load(str(entry_path))


def _model(**options):
    return mmzoo.build_model("classification", **{**SMALL, **options})


def _x(n=2, **extra):
    return {"image": np.zeros((n, 16, 16, 3), np.float32),
            "text": np.ones((n, 6), np.int32), **extra}


# -- 3. public arguments ----------------------------------------------------------


@pytest.mark.parametrize("batch_size", [-1, 0, 1.5, "8", None, True])
def test_predict_batch_size_is_checked(entry, batch_size):
    with pytest.raises(ValueError, match=rf"`batch_size` must be a positive integer\. "
                                         rf"Received: batch_size={batch_size!r}"):
        entry.predict(IMAGE, "what colour", batch_size=batch_size)


@pytest.mark.parametrize("batch_size", [-1, 0, 2.5, "4", False])
def test_evaluate_and_model_predict_batch_size_are_checked(entry, batch_size):
    with pytest.raises(ValueError, match=r"Received: batch_size="):
        entry.evaluate(num_examples=4, batch_size=batch_size)
    with pytest.raises(ValueError, match=r"Received: batch_size="):
        entry.model.predict(_x(), batch_size=batch_size, verbose=0)
    with pytest.raises(ValueError, match=r"Received: num_examples=0"):
        entry.evaluate(num_examples=0)


def test_empty_batches_are_clear_errors(entry):
    with pytest.raises(ValueError, match=r"`texts` is empty.*Received: texts=\[\]"):
        entry.predict(IMAGE, [])
    with pytest.raises(ValueError, match=r"`images` holds no image.*\(0, 16, 16, 3\)"):
        entry.predict(np.zeros((0, 16, 16, 3)), "what")
    with pytest.raises(ValueError, match=r"`images` is an empty list"):
        entry.predict([], "what")
    with pytest.raises(ValueError, match=r"no examples.*Received: x\['image'\] with shape "
                                         r"\(0, 16, 16, 3\)"):
        entry.model.predict(_x(0), verbose=0)


def test_top_k_and_generation_settings_are_checked(entry):
    with pytest.raises(ValueError, match=r"Received: top_k=0"):
        entry.predict(IMAGE, "what", top_k=0)
    with pytest.raises(TypeError, match=r"captioning entries only.*Received: beam_width"):
        entry.predict(IMAGE, "what", beam_width=3)


def test_unknown_loss_and_metric_names_fail_at_build_not_fit():
    with pytest.raises(ValueError, match=r"`loss` must be .*Received: loss='categorial_xent'"):
        _model(loss="categorial_xent")
    with pytest.raises(ValueError, match=r"Received: metrics\[1\]='acuracy'"):
        _model(metrics=["accuracy", "acuracy"])
    with pytest.raises(ValueError, match=r"Received: metrics\[0\]=3"):
        _model(metrics=[3])
    # Names Keras's compile() resolves itself still pass.
    _model(metrics=["acc", "sparse_categorical_accuracy"], loss="sparse_categorical_crossentropy")


def test_learning_rate_with_an_optimizer_object_is_refused():
    with pytest.raises(ValueError, match=r"`learning_rate` has no effect when `optimizer` is an "
                                         r"optimizer object.*Received: optimizer=Adam\(\.\.\.\), "
                                         r"learning_rate=0\.01"):
        _model(optimizer=keras.optimizers.Adam(), learning_rate=0.01)
    model = _model(optimizer=keras.optimizers.Adam(learning_rate=0.02))
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)


def test_softmax_over_one_class_is_refused():
    with pytest.raises(ValueError, match=r"task='binary'.*Received: num_classes=1"):
        _model(num_classes=1)
    assert mmzoo.build_model("multilabel", **{**SMALL, "num_classes": 1}).output[
        "probabilities"].shape[-1] == 1


def test_options_a_one_modality_model_drops_are_not_silent():
    with pytest.warns(UserWarning, match=r"fusion='film', modality_mask=True.*no effect.*"
                                         r"one modality: they are ignored"):
        model = _model(text_branch=None, fusion="film", modality_mask=True)
    assert list(model.input) == ["image"]
    with pytest.warns(UserWarning, match=r"vocab_size=12 has no effect"):
        mmzoo.build_model("classification", image_branch="cnn", text_branch=None,
                          image_shape=(16, 16, 3), image_filters=2, pooling="avg",
                          num_classes=3, vocab_size=12)


def test_huge_sizes_name_the_options():
    with pytest.raises(ValueError, match=r"too large for this machine: vocab_size \* embedding_dim "
                                         r"float32 weights alone would need .* GB.*Received: "
                                         r"vocab_size=10000000000000, embedding_dim=1000000"):
        _model(text_branch="gru", vocab_size=10**13, embedding_dim=10**6)
    with pytest.raises(ValueError, match=r"too large.*Lower `hidden_units`. "
                                         r"Received: hidden_units=\(1000000000000,\)"):
        _model(hidden_units=(10**12,))
    with pytest.raises(ValueError, match=r"one input image alone.*Received: "
                                         r"image_shape=\(100000, 100000, 3\)"):
        _model(image_shape=(10**5, 10**5, 3))


def test_out_of_memory_while_building_names_the_options(monkeypatch):
    """Sizes the estimate lets through still end in a clear error."""
    import tensorflow as tf

    from mmzoo.registry import TASKS
    from mmzoo.tasks import build

    def oom(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(
            None, None, "{{function_node x}} OOM when allocating tensor with shape[6,9] and "
                        "type float [Op:StatelessRandomUniformV2]")

    # The task says which model class build_model instantiates.
    monkeypatch.setattr(TASKS.get("classification"), "model_class", lambda: oom)
    with pytest.raises(ValueError, match=r"too large to build in memory.*Received: "
                                         r"image_shape=\(16, 16, 3\).*\(OOM when allocating "
                                         r"tensor with shape\[6,9\] and type float\)"):
        build.build_model("classification", **SMALL)


def test_loader_options_are_checked(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("image,text,label\n")
    with pytest.raises(ValueError, match=r"Received: batch_size=0"):
        mmzoo.data.image_folder_dataset(csv, batch_size=0)
    with pytest.raises(ValueError, match=r"Received: shuffle='yes'"):
        mmzoo.data.image_folder_dataset(csv, shuffle="yes")
    with pytest.raises(ValueError, match=r"Received: image_size=\(True, 4\)"):
        mmzoo.data.image_folder_dataset(csv, image_size=(True, 4))
    with pytest.raises(TypeError, match=r"Received: csv_path=3"):
        mmzoo.data.image_folder_dataset(3)
    with pytest.raises(ValueError, match=r"Received: sequence_length=-2"):
        mmzoo.data.coco_captions_dataset(tmp_path / "a.json", tmp_path, sequence_length=-2)
    with pytest.raises(TypeError, match=r"Received: image_dir=None"):
        mmzoo.data.flickr8k_dataset(tmp_path / "t.txt", None)


def test_caption_generation_arguments_are_checked():
    model = mmzoo.build_model("captioning", image_branch="cnn", image_shape=(16, 16, 3),
                              image_filters=2, pooling="max", vocab_size=12,
                              sequence_length=4, embedding_dim=4, text_units=4)
    images = np.zeros((2, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match=r"Received: batch_size=True"):
        mmzoo.captioning.generate(model, images, batch_size=True)
    with pytest.raises(ValueError, match=r"Received: length_penalty=inf"):
        mmzoo.captioning.generate(model, images, method="beam", length_penalty=float("inf"))


# -- 4. token ids and dtypes ------------------------------------------------------


@pytest.mark.parametrize("ids, words", [
    (12, r"the id 12"),             # == vocab_size
    (10**6, r"the id 1000000"),
    (-1, r"the id -1"),            # would be read as the last row
    (np.nan, r"NaN"),
    (4.7, r"the value 4\.7"),      # would be truncated to 4
])
def test_bad_token_ids_are_refused_where_arrays_enter(ids, words):
    model = _model()
    text = np.full((2, 6), ids, np.float64 if isinstance(ids, float) else np.int64)
    x = _x(text=text)
    pattern = rf"Token ids must be integers in \[0, 12\).*Received: x\['text'\] with {words}"
    with pytest.raises(ValueError, match=pattern):
        model.predict(x, verbose=0)
    with pytest.raises(ValueError, match=pattern):
        model.evaluate(x, np.zeros(2), verbose=0)
    with pytest.raises(ValueError, match=pattern):
        model.fit(x, np.zeros(2), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=pattern):
        model.train_on_batch(x, np.zeros(2))


def test_good_ids_of_any_integer_dtype_or_whole_floats_are_accepted():
    model = _model()
    expected = model.predict(_x(), verbose=0)["probabilities"]
    for text in (np.ones((2, 6), np.int64), np.ones((2, 6), np.uint8), np.ones((2, 6), float)):
        got = model.predict(_x(text=text), verbose=0)["probabilities"]
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    with pytest.raises(TypeError, match=r"Received: x\['text'\] with dtype <U1"):
        model.predict(_x(text=np.full((2, 6), "a")), verbose=0)


def test_captioning_ids_are_checked_against_its_vocabulary():
    model = mmzoo.build_model("captioning", image_branch="cnn", image_shape=(16, 16, 3),
                              image_filters=2, pooling="max", vocab_size=12,
                              sequence_length=4, embedding_dim=4, text_units=4)
    x = {"image": np.zeros((2, 16, 16, 3), np.float32), "text": np.full((2, 4), 12)}
    with pytest.raises(ValueError, match=r"\[0, 12\).*the id 12"):
        model.predict(x, verbose=0)


# -- 5. modality-mask values ------------------------------------------------------

FUSIONS_WITH_MASKS = ["concat", "sum", "product", "weighted", "attention", "gated", "bilinear",
                      "layer", "late", "hybrid", "film", "relation"]


def _masked(fusion):
    return _model(fusion=fusion, modality_mask=True)


@pytest.mark.parametrize("fusion", FUSIONS_WITH_MASKS)
def test_every_fusion_reads_mask_values_by_one_rule(fusion):
    """Inside the graph a mask value > 0 means present, anything else missing."""
    model = _masked(fusion)
    rng = np.random.default_rng(0)
    x = {"image": rng.uniform(0, 255, (4, 16, 16, 3)).astype("float32"),
         "text": rng.integers(1, 12, (4, 6)).astype("int32")}
    ones = np.ones((4, 2), "float32")
    binary = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], "float32")
    odd = np.array([[0.5, 7.0], [2.0, -1.0], [-3.0, 0.25], [np.nan, 0.0]], "float32")
    # The graph itself (a tf.data pipeline or an export bypasses predict's checks).
    a = model({**x, "modality_mask": binary}, training=False)["probabilities"].numpy()
    b = model({**x, "modality_mask": odd}, training=False)["probabilities"].numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    c = model({**x, "modality_mask": ones * 3}, training=False)["probabilities"].numpy()
    d = model({**x, "modality_mask": ones}, training=False)["probabilities"].numpy()
    np.testing.assert_allclose(c, d, rtol=1e-5, atol=1e-6)


def test_mask_values_other_than_0_and_1_are_refused_where_arrays_enter():
    model = _masked("film")
    with pytest.raises(ValueError, match=r"values must be 1 \(present\) or 0 \(missing\)\. "
                                         r"Received: x\['modality_mask'\] with the value 0\.5"):
        model.predict(_x(modality_mask=np.full((2, 2), 0.5)), verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\).*shape \(2, 3\)"):
        model.predict(_x(modality_mask=np.ones((2, 3))), verbose=0)
    model.predict(_x(modality_mask=np.array([[1, 0], [True, False]])), verbose=0)


def test_a_mask_given_to_a_model_without_masking_is_an_error():
    model = _model()
    with pytest.raises(ValueError, match=r"built without modality_mask=True.*Received: x with "
                                         r"keys \['image', 'modality_mask', 'text'\]"):
        model.predict(_x(modality_mask=np.ones((2, 2))), verbose=0)
    with pytest.raises(ValueError, match=r"built without modality_mask=True"):
        model(_x(modality_mask=np.ones((2, 2))))


def test_modality_dropout_reads_masks_by_the_same_rule():
    from mmzoo.fusion.masking import ModalityDropout

    layer = ModalityDropout(0.0)
    out = layer([np.zeros((2, 3)), np.zeros((2, 3))],
                modality_mask=np.array([[0.5, -2.0], [np.nan, 9.0]], "float32"))
    np.testing.assert_array_equal(np.asarray(out), [[1, 0], [0, 1]])


# -- 8. messages that name the right thing ----------------------------------------


def test_an_unreadable_image_is_named_by_its_path(entry, tmp_path):
    bad = tmp_path / "scene.png"
    bad.write_bytes(b"not an image at all")
    for images in (str(bad), [str(bad)], bad):
        with pytest.raises(ValueError) as error:
            entry.predict(images, "what")
        message = str(error.value)
        assert str(bad) in message and "BytesIO" not in message
        assert message.startswith(f"Could not decode the image file '{bad}'")
    with pytest.raises(FileNotFoundError, match=r"No such image file: 'nope\.png'"):
        entry.predict("nope.png", "what")
    with pytest.raises(ValueError, match=r"No such image file"):  # also a ValueError
        entry.predict("nope.png", "what")
    with pytest.raises(ValueError, match=r"images\[1\]"):
        entry.predict([IMAGE, b"\x89PNG broken"], "what")


def test_texts_must_be_utf8(entry):
    with pytest.raises(ValueError, match=r"valid UTF-8.*Received: texts with an invalid "
                                         r"sequence at position 3"):
        entry.predict(IMAGE, b"caf\xe9 red")
    with pytest.raises(ValueError, match=r"Received: texts\[1\] with an invalid sequence"):
        entry.predict(IMAGE, ["red", "caf\udce9"])  # a lone surrogate (argv's escape)
    assert entry.predict(IMAGE, ["caf\u00e9", "caf\u00e9".encode()])


def test_convnet_blocks_error_names_image_blocks():
    with pytest.raises(ValueError, match=r"Lower `image_blocks` \(at most 3 for this "
                                         r"image_shape\).*Received: image_shape=\(8, 8, 3\), "
                                         r"image_blocks=5"):
        mmzoo.build_model("classification", image_branch="convnet", text_branch=None,
                          image_shape=(8, 8, 3), image_blocks=5, num_classes=2)


def _mmzoo(*argv, capsys):
    code = cli_main(list(argv))
    return code, capsys.readouterr().err


def test_cli_errors_use_the_flags(entry_path, tmp_path, capsys):
    code, err = _mmzoo("predict", str(entry_path), "--image", str(tmp_path / "x.png"),
                       capsys=capsys)
    assert code == 1 and "(--image #1)" in err and "images" not in err
    assert f"Received: --image='{tmp_path / 'x.png'}'" in err
    image = tmp_path / "a.png"
    keras.utils.save_img(image, np.zeros((8, 8, 3), np.uint8))
    code, err = _mmzoo("predict", str(entry_path), "--image", str(image), capsys=capsys)
    assert code == 1 and "Received: no --text" in err and "texts=None" not in err
    code, err = _mmzoo("evaluate", str(entry_path), "--batch-size", "0", capsys=capsys)
    assert code == 1 and "Received: --batch-size=0" in err
    target = tmp_path / "zoo"
    target.mkdir()
    shutil.copytree(entry_path, target / entry_path.name)
    code, err = _mmzoo("publish", str(entry_path), "--to", str(target), capsys=capsys)
    assert code == 1 and "--overwrite" in err and "overwrite=" not in err


def _tamper(path, edit):
    """Rewrites model.keras's config.json with `edit` and re-hashes the metadata
    (a tamperer can do both)."""
    model_file = path / "model.keras"
    with zipfile.ZipFile(model_file) as z:
        files = {n: z.read(n) for n in z.namelist()}
    config = json.loads(files["config.json"])
    edit(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(model_file, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    meta = json.loads((path / "metadata.json").read_text())
    meta["files"]["model.keras"] = {"size": model_file.stat().st_size,
                                    "sha256": zoo.sha256_file(model_file)}
    (path / "metadata.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("edit, words", [
    (lambda c: c.update(module="os", class_name="system", registered_name=None),
     "the object 'system' from module 'os'"),
    (lambda c: c.update(registered_name="mmzoo>Evil"), "does not register, 'mmzoo>Evil'"),
    (lambda c: c["config"].update(image_weights="/etc/passwd"), "image_weights='/etc/passwd'"),
    (lambda c: c["config"].update(sequence_length=7), "do not fit together"),
    (lambda c: c["config"].update(num_classes="x"), "does not load as a safe Keras model"),
])
def test_load_verifies_the_model_up_front(entry_path, tmp_path, edit, words):
    path = shutil.copytree(entry_path, tmp_path / "tiny_vqa")
    _tamper(path, edit)
    with pytest.raises(EntryVerificationError) as error:
        mmzoo.load(str(path))
    assert words in str(error.value) and "Refusing to load it" in str(error.value)
    assert error.value.file == "model.keras"


def test_load_refuses_a_lambda_in_mmzoo_words(entry_path, tmp_path):
    path = shutil.copytree(entry_path, tmp_path / "tiny_vqa")

    def add_lambda(config):
        config["config"]["layers"] = [{"module": "keras.layers", "class_name": "Lambda",
                                       "config": {"function": {"class_name": "__lambda__",
                                                               "config": {"code": "x"}}}}]

    _tamper(path, add_lambda)
    with pytest.raises(EntryVerificationError, match=r"holds a 'Lambda' object at "
                                                     r"config\.config\.layers\[0\]"):
        mmzoo.load(str(path))


def test_a_bad_preprocessor_is_refused_at_load(entry_path, tmp_path):
    path = shutil.copytree(entry_path, tmp_path / "tiny_vqa")
    pre = json.loads((path / "preprocessor.json").read_text())
    pre["task"] = "regression"
    (path / "preprocessor.json").write_text(json.dumps(pre))
    meta = json.loads((path / "metadata.json").read_text())
    meta["files"]["preprocessor.json"] = {
        "size": (path / "preprocessor.json").stat().st_size,
        "sha256": zoo.sha256_file(path / "preprocessor.json")}
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(EntryVerificationError, match="Refusing to load it"):
        mmzoo.load(str(path))


def test_bytesio_is_not_an_image_path(entry):
    with pytest.raises(TypeError, match=r"Received: images of type BytesIO"):
        entry.predict(io.BytesIO(b"x"), "what")
