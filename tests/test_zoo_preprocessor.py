"""`mmzoo.data.Preprocessor`: any raw image or string in, readable results out."""

import io
import json
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mmzoo.data import ANSWERS, ATTRIBUTES, Preprocessor, shapes_tokenizer
from mmzoo.export.preprocessing import decode_images


@pytest.fixture(scope="module")
def pre():
    return Preprocessor("classification", shapes_tokenizer(8), image_size=(16, 16, 3),
                        label_names=ANSWERS, text_field="question")


def test_images_of_any_kind_become_model_pixels(pre, tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    png = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(png)
    rgba = np.concatenate([rgb, np.full((16, 16, 1), 7, np.uint8)], axis=-1)
    grey = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    out = pre.preprocess_images([
        rgb, str(png), png, png.read_bytes(), Image.fromarray(rgb), rgba,
        Image.fromarray(rgba), grey, Image.fromarray(grey), rgb.astype(np.float32),
        rgb.astype(np.uint16) * 257, rgb.astype(np.int64)])
    assert out.shape == (12, 16, 16, 3) and out.dtype == np.float32
    for i in range(7):  # same size: bit-exact, alpha dropped
        np.testing.assert_array_equal(out[i], rgb.astype(np.float32), err_msg=str(i))
    for i in (7, 8):  # grey: three equal channels
        np.testing.assert_array_equal(out[i], np.repeat(grey[..., None], 3, -1))
    for i in (9, 10, 11):
        np.testing.assert_allclose(out[i], rgb, atol=1e-4)
    batch = pre.preprocess_images(np.stack([rgb, rgb]))  # an (N, H, W, C) batch
    assert batch.shape == (2, 16, 16, 3)


def test_tiny_and_huge_images_are_resized_like_the_serving_endpoint(pre, tmp_path):
    one = pre.preprocess_images(np.array([[[10, 20, 30]]], np.uint8))
    np.testing.assert_allclose(one[0], np.broadcast_to([10, 20, 30], (16, 16, 3)), atol=1e-4)
    huge = np.zeros((2000, 2000, 3), np.uint8)
    huge[:1000] = 255  # top half white
    out = pre.preprocess_images(huge)[0]
    assert out.shape == (16, 16, 3) and out[:7].min() > 254 and out[9:].max() < 1
    # A file resized here equals the SavedModel raw endpoint's decode + resize.
    rng = np.random.default_rng(1)
    png = tmp_path / "odd.png"
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(png)
    served = decode_images(tf.constant([png.read_bytes()]), 16, 16, 3).numpy()
    np.testing.assert_allclose(pre.preprocess_images(str(png)), served, atol=1e-3)


def test_grayscale_models_get_one_channel():
    pre = Preprocessor("regression", image_size=(8, 8, 1))
    out = pre.preprocess_images([np.full((8, 8, 3), [255, 0, 0], np.uint8),
                                 np.full((4, 4, 4), 9, np.uint8)])
    assert out.shape == (2, 8, 8, 1)
    assert out[0, 0, 0, 0] == pytest.approx(0.2989 * 255, abs=0.01)
    assert out[1].min() == out[1].max() == pytest.approx(9, abs=1e-3)


def test_bad_images_are_clear_errors(pre, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No such image file: '.*nope.png' \(images\)"):
        pre.preprocess_images(str(tmp_path / "nope.png"))
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"Could not decode the image file '.*notes.png' \(images\[1\]\) as an image"):
        pre.preprocess_images([np.zeros((4, 4, 3)), str(tmp_path / "notes.png")])
    with pytest.raises(ValueError, match=r"C in 1..4.*shape \(4, 4, 5\)"):
        pre.preprocess_images(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="at least one pixel"):
        pre.preprocess_images(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="looks normalised"):
        pre.preprocess_images(np.full((4, 4, 3), -1.0, np.float32))
    with pytest.raises(ValueError, match="finite"):
        pre.preprocess_images(np.full((4, 4, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"\[0, 255\].*\[0, 300\]"):
        pre.preprocess_images(np.array([[0, 300]], np.int32))
    with pytest.raises(TypeError, match="dtype complex"):
        pre.preprocess_images(np.zeros((4, 4, 3), np.complex64))
    with pytest.raises(TypeError, match=r"Received: images\[0\] of type dict"):
        pre.preprocess_images([{"pixels": 1}])
    with pytest.raises(TypeError, match="Received: images of type int"):
        pre.preprocess_images(3)
    with pytest.warns(UserWarning, match=r"\[0, 1\] image"):
        pre.preprocess_images(np.linspace(0, 1, 48, dtype=np.float32).reshape(4, 4, 3))


def test_texts(pre):
    ids = pre.preprocess_texts(["What colour is the circle?", "", b"is there a red square"])
    assert ids.shape == (3, 8) and ids.dtype == np.int32
    assert not ids[1].any()  # empty text: all padding
    assert pre.tokenizer.decode(ids[0]) == "what colour is the circle"
    assert pre.preprocess_texts("a").shape == (1, 8)
    with pytest.raises(TypeError, match=r"Received: texts\[1\]=7 of type int"):
        pre.preprocess_texts(["a", 7])
    with pytest.raises(TypeError, match="Received: texts=None"):
        pre.preprocess_texts(None)


def test_call_pairs_and_repeats(pre):
    x = pre(images=[np.zeros((5, 5, 3), np.uint8)] * 3, texts="is it red?")
    assert x["image"].shape == (3, 16, 16, 3) and x["text"].shape == (3, 8)
    assert (x["text"] == x["text"][0]).all()
    with pytest.raises(ValueError, match="2 images and 3 texts"):
        pre(images=[np.zeros((5, 5))] * 2, texts=["a", "b", "c"])
    with pytest.raises(ValueError, match="Pass `images`, `texts` or both"):
        pre()
    text_only = Preprocessor("binary", shapes_tokenizer(8))
    with pytest.raises(ValueError, match="no image input"):
        text_only(images=np.zeros((4, 4)))


def test_decode_each_task():
    tok = shapes_tokenizer(8)
    cls = Preprocessor("classification", tok, label_names=("a", "b", "c"))
    assert cls.decode({"probabilities": [[0.2, 0.7, 0.1]]}, top_k=2) == [[("b", 0.7), ("a", 0.2)]]
    assert cls.decode(np.array([[0.2, 0.7, 0.1]]), top_k=10)[0][-1] == ("c", 0.1)
    binary = Preprocessor("binary", tok, label_names=("false", "true"))
    assert binary.decode({"probability": [[0.8], [0.1]]}) == [(pytest.approx(0.8), True),
                                                              (pytest.approx(0.1), False)]
    multi = Preprocessor("multilabel", tok, label_names=ATTRIBUTES)
    scores = np.zeros((1, len(ATTRIBUTES)))
    scores[0, ATTRIBUTES.index("red")] = 0.9
    scores[0, ATTRIBUTES.index("circle")] = 0.6
    assert multi.decode(scores) == [[("red", 0.9), ("circle", 0.6)]]
    assert Preprocessor("regression", tok).decode({"value": [[2.5]]}) == [2.5]
    captions = Preprocessor("captioning", tok)
    ids = tok.encode(["a red circle", "two squares"])
    assert captions.decode(ids) == ["a red circle", "two squares"]
    with pytest.raises(ValueError, match="top_k"):
        cls.decode([[1, 0, 0]], top_k=0)
    with pytest.raises(ValueError, match="3 label names"):
        cls.decode([[1, 0]])


def test_save_load_is_json_only(pre, tmp_path):
    paths = pre.save(tmp_path)
    assert sorted(p.rsplit("/", 1)[-1] for p in paths) == ["preprocessor.json", "tokenizer.json"]
    data = json.loads((tmp_path / "preprocessor.json").read_text())
    assert data["task"] == "classification" and data["image_size"] == [16, 16, 3]
    assert data["label_names"] == list(ANSWERS) and data["tokenizer_file"] == "tokenizer.json"
    again = Preprocessor.load(tmp_path)
    assert again == pre and again.tokenizer == pre.tokenizer
    (tmp_path / "preprocessor.json").write_text('{"format": "mmzoo-preprocessor", "version": 9}')
    with pytest.raises(ValueError, match="format version 9"):
        Preprocessor.load(tmp_path)


def test_constructor_checks():
    with pytest.raises(ValueError, match="Received: task='clasification'"):
        Preprocessor("clasification", shapes_tokenizer())
    with pytest.raises(ValueError, match="needs `label_names`"):
        Preprocessor("classification", shapes_tokenizer())
    with pytest.raises(ValueError, match="image_size"):
        Preprocessor("regression", image_size=(8, 8, 2))
    assert Preprocessor("regression", image_size=32).image_size == (32, 32, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        buf = io.BytesIO()
        Image.new("RGB", (3, 3), (1, 2, 3)).save(buf, format="BMP")
        out = Preprocessor("regression", image_size=(3, 3, 3)).preprocess_images(buf.getvalue())
        np.testing.assert_array_equal(out[0, 0, 0], [1, 2, 3])
