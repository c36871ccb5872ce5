"""Captioner export: the SavedModel endpoint and the TFLite models caption like Keras."""

import types

import numpy as np
import pytest
import tensorflow as tf

import keras
import mmzoo
from mmzoo.captioning import CaptionGenerator
from mmzoo.export.captioning import TFLiteCaptioner, export_saved_model, export_tflite
from test_captioning import SMALL, VOCAB, _toy_data


@pytest.fixture(scope="module", params=["merge", "inject"])
def trained(request):
    """A small captioner trained briefly, so its captions differ by image."""
    keras.utils.set_random_seed(7)
    model = mmzoo.build_model("captioning", **{**SMALL, "architecture": request.param,
                                               "pooling": "avg", "learning_rate": 1e-2})
    x, y, _ = _toy_data(60)
    model.fit(x, y, epochs=15, batch_size=20, verbose=0)
    images = np.concatenate([x["image"][:6], np.random.default_rng(3).integers(
        0, 256, (3, 32, 32, 3)).astype("float32")])  # and 3 noise images
    return model, images


def test_saved_model_endpoint_captions_images(trained, tmp_path):
    model, images = trained
    keras_captions = CaptionGenerator(model, vocabulary=VOCAB)(images, method="beam",
                                                                beam_width=2)
    path = export_saved_model(model, tmp_path / "captioner", vocabulary=VOCAB, method="beam",
                              beam_width=2)
    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["serving_default"](image=tf.constant(images))
    assert [c.decode() for c in out["captions"].numpy()] == keras_captions.texts
    np.testing.assert_array_equal(out["tokens"].numpy(), keras_captions.tokens)
    np.testing.assert_allclose(out["scores"].numpy(), keras_captions.scores, rtol=1e-5)
    assert len(set(keras_captions.texts)) > 1  # not one caption for everything
    with pytest.raises(FileExistsError):
        export_saved_model(model, path, vocabulary=VOCAB)


def test_tflite_encoder_and_step_decoder_caption_like_keras(trained, tmp_path):
    model, images = trained
    keras_captions = CaptionGenerator(model, vocabulary=VOCAB)(images)
    paths = export_tflite(model, tmp_path / "phone", vocabulary=VOCAB, batch_size=4)
    for name in ("encoder", "decoder_step", "greedy"):
        ops = paths["ops"][name]
        assert ops and not any(op.startswith("Flex") or op == "CUSTOM" for op in ops)
        assert "WHILE" not in ops  # unrolled: no loop in any graph
    assert "FULLY_CONNECTED" in paths["ops"]["decoder_step"]
    captioner = TFLiteCaptioner(tmp_path / "phone")
    looped = captioner(images)  # 9 images: batches of 4, the last one padded
    assert looped.texts == keras_captions.texts
    np.testing.assert_array_equal(looped.tokens, keras_captions.tokens)
    np.testing.assert_allclose(looped.scores, keras_captions.scores, atol=1e-4)
    unrolled = captioner(images, unrolled=True)
    assert unrolled.texts == keras_captions.texts


def test_export_needs_the_vocabulary(trained, tmp_path):
    model, _ = trained
    with pytest.raises(ValueError, match="needs the words"):
        export_saved_model(model, tmp_path / "x")
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        export_tflite(model, tmp_path / "y", vocabulary=VOCAB, batch_size=0)


def test_mmzoo_export_forwards_a_captioner(trained, tmp_path):
    model, images = trained
    words = types.SimpleNamespace(vocabulary=VOCAB)  # what a tokenizer offers export
    keras_captions = CaptionGenerator(model, vocabulary=VOCAB)(images)
    report = mmzoo.export(model, tmp_path / "serving", tokenizer=words, verbose=False)
    assert report.format == "saved_model" and "saved_model.pb" in report.files
    assert report.size_bytes > 0
    out = tf.saved_model.load(report.path).signatures["serving_default"](image=tf.constant(images))
    assert [c.decode() for c in out["captions"].numpy()] == keras_captions.texts
    with pytest.raises(ValueError, match="float32 only"):
        mmzoo.export(model, tmp_path / "q", format="tflite", quantization="int8", tokenizer=words)
    with pytest.raises(ValueError, match="must be a folder"):
        mmzoo.export(model, tmp_path / "c.tflite", format="tflite", tokenizer=words)
    if model.architecture != "merge":
        return  # the TFLite files are checked for both architectures above
    report = mmzoo.export(model, tmp_path / "phone", format="tflite", tokenizer=words,
                          verbose=False)
    assert {"encoder.tflite", "decoder_step.tflite", "greedy.tflite",
            "captioner.json", "vocabulary.txt"} <= set(report.files)
    assert "FULLY_CONNECTED" in report.ops and report.batch_size == 1
    assert TFLiteCaptioner(report.path)(images).texts == keras_captions.texts
