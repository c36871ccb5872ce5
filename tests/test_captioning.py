"""Captioning: the model, masking, generation equivalences, metrics, save/load."""

import itertools
import math
import random

import numpy as np
import pytest
import tensorflow as tf

import keras
import mmzoo
from mmzoo.captioning import (
    CaptionGenerator,
    CaptioningModel,
    beam_search,
    caption_metrics,
    cider_d,
    corpus_bleu,
    generate,
    naive_greedy,
)
from mmzoo.data.tokenizer import END, START

ARCHITECTURES = ("merge", "inject")
VOCAB = ["<pad>", "<oov>", "<start>", "<end>"] + [f"w{i}" for i in range(4, 12)]
SMALL = dict(image_branch="cnn", image_shape=(32, 32, 3), image_filters=4, pooling="max",
             vocab_size=len(VOCAB), sequence_length=6, embedding_dim=8, text_units=12)


def _model(architecture, **options):
    return mmzoo.build_model("captioning", **{**SMALL, "architecture": architecture, **options})


def _images(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3)).astype("float32")


def _prefixes():
    # [start, w1..wn, 0...]: lengths 4, 1 (start only), 6 (full)
    return np.array([[START, 5, 6, 7, 0, 0], [START, 0, 0, 0, 0, 0],
                     [START, 4, 4, 9, 10, 11]], "int32")


def _labels(prefixes):
    labels = np.zeros_like(prefixes)
    for i, row in enumerate(prefixes):
        n = np.count_nonzero(row)
        labels[i, :n - 1] = row[1:n]
        if n < len(row):
            labels[i, n - 1] = END
        else:
            labels[i, -1] = 8  # truncated caption: the next word, no end
    return labels


# ----------------------------------------------------------------- the model


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_build_captioning_model(architecture):
    model = _model(architecture)
    assert isinstance(model, CaptioningModel) and model.task == "captioning"
    assert list(model.input) == ["image", "text"]
    assert model.input["text"].dtype == "int32" and model.input["text"].shape == (None, 6)
    assert list(model.output) == ["logits"]
    assert model.output["logits"].shape == (None, 6, len(VOCAB))
    names = {layer.name for layer in model.layers}
    assert {"image_cnn", "decoder_embedding", "decoder_lstm", "decoder_logits"} <= names
    if architecture == "merge":  # the seed's layout: text LSTM + image, concatenated
        assert {"text_lstm", "fusion_concat", "decoder_image_repeat"} <= names
    else:  # Show and Tell: the image sets the decoder's initial state
        assert {"decoder_init_h", "decoder_init_c"} <= names and "text_lstm" not in names
    assert model.build_options["decoder"] == "lstm"
    assert model.loss.get_config()["ignore_class"] == 0


def test_seed_caption_model_defaults_to_vgg16_merge():
    """Seed 004: VGG16 image encoder, LSTM text encoder, Concatenate, LSTM decoder."""
    model = mmzoo.build_model("captioning", image_shape=(32, 32, 3), vocab_size=20,
                              sequence_length=5, compile=False)
    assert model.build_options["image_branch"] == "vgg16"
    assert model.architecture == "merge"
    assert model.get_layer("text_lstm").units == model.get_layer("decoder_lstm").units == 256
    assert isinstance(model.get_layer("fusion_concat"), keras.layers.Concatenate)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_loss_and_accuracy_ignore_padding(architecture):
    model = _model(architecture)
    x = {"image": _images(3), "text": _prefixes()}
    y = _labels(x["text"])
    logits = model.predict(x, verbose=0)["logits"]
    logp = tf.nn.log_softmax(logits).numpy()
    real = y != 0
    expected = -np.mean([logp[b, t, y[b, t]] for b, t in zip(*np.nonzero(real))])
    result = model.evaluate(x, y, return_dict=True, verbose=0)
    np.testing.assert_allclose(result["loss"], expected, rtol=1e-5)
    predicted = logits.argmax(-1)
    accuracy = model.evaluate(x, y, return_dict=True, verbose=0)["accuracy"]
    assert accuracy == pytest.approx(np.mean(predicted[real] == y[real]))


def test_masked_accuracy_skips_padding():
    from mmzoo.captioning.model import MaskedAccuracy

    labels = np.array([[5, 6, 3, 0, 0]])
    logits = np.eye(8)[[[5, 7, 3, 0, 0]]] * 5.0  # right, wrong, right, "right" padding
    metric = MaskedAccuracy()
    metric.update_state(labels, logits)
    assert float(metric.result()) == pytest.approx(2 / 3)
    assert float(keras.metrics.SparseCategoricalAccuracy()(labels, logits)) == pytest.approx(0.8)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_teacher_forcing_is_causal(architecture):
    """Logits at position t depend on the prefix up to t only."""
    model = _model(architecture)
    images = _images(1)
    text = np.array([[START, 5, 6, 7, 8, 9]], "int32")
    changed = text.copy()
    changed[0, 3:] = [10, 11, 4]
    a = model.predict({"image": images, "text": text}, verbose=0)["logits"]
    b = model.predict({"image": images, "text": changed}, verbose=0)["logits"]
    np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-6)
    assert not np.allclose(a[0, 3:], b[0, 3:], atol=1e-4)
    # ... and the image matters.
    other = model.predict({"image": _images(1, seed=1), "text": text}, verbose=0)["logits"]
    assert not np.allclose(a, other, atol=1e-4)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_decode_step_equals_teacher_forced_logits(architecture):
    model = _model(architecture)
    x = {"image": _images(3), "text": _prefixes()}
    full = model.predict(x, verbose=0)["logits"]
    states, context = model.encode(x["image"])
    for t in range(x["text"].shape[1]):
        logits, states = model.decode_step(tf.constant(x["text"][:, t]), states, context)
        for b in range(3):
            if x["text"][b, t]:
                np.testing.assert_allclose(logits.numpy()[b], full[b, t], atol=1e-5)


def test_training_learns_image_dependent_captions():
    """A few epochs on a toy set: the caption names the image's colour."""
    model = _model("inject", pooling="avg", learning_rate=1e-2)
    x, y, colours = _toy_data(60)
    model.fit(x, y, epochs=25, batch_size=20, verbose=0)
    captions = CaptionGenerator(model, vocabulary=VOCAB)(x["image"][:12])
    expected = [f"w{4 + c} w8" for c in colours[:12]]
    assert captions.texts == expected


def _toy_data(n, seed=0):
    """Red, green or blue images captioned `w4|w5|w6 w8 <end>`."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 3, n)
    images = rng.integers(0, 40, (n, 32, 32, 3)).astype("float32")
    images[np.arange(n), :, :, colours] += 200
    text = np.zeros((n, 6), "int32")
    text[:, 0], text[:, 1], text[:, 2] = START, 4 + colours, 8
    labels = np.zeros((n, 6), "int32")
    labels[:, 0], labels[:, 1], labels[:, 2] = 4 + colours, 8, END
    return {"image": images, "text": text}, labels, colours


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("option,value,words", [
    ("decoder", "gru", "one of 'lstm'"),
    ("architecture", "par-inject", "one of 'merge', 'inject'"),
    ("image_branch", None, "an image branch name"),
    ("pooling", None, "'flatten', 'avg', 'max' for captioning"),
    ("text_branch", "lstm", "the caption decoder reads the text"),
    ("num_classes", 3, "has no effect on this model (task='captioning'"),
    ("fusion", "sum", "has no effect on this model"),
    ("vocab_size", 1, "integer >= 2"),
])
def test_bad_captioning_options_are_clear(option, value, words):
    with pytest.raises(ValueError) as error:
        mmzoo.build_model("captioning", **{**SMALL, option: value})
    message = str(error.value)
    assert words in message
    assert f"Received: {option}={value!r}" in message


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match=r"unexpected option\(s\) 'decoder_units'"):
        _model("merge", decoder_units=8)


def test_captioning_options_refused_by_other_tasks():
    with pytest.raises(ValueError, match=r"`architecture` has no effect.*task='captioning'"):
        mmzoo.build_model("classification", image_branch="cnn", text_branch=None,
                          image_shape=(16, 16, 3), num_classes=2, architecture="inject")


# --------------------------------------------------------------- generation


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_compiled_greedy_equals_naive_loop(architecture):
    model = _model(architecture)
    images = _images(7)
    compiled = CaptionGenerator(model, vocabulary=VOCAB)(images, batch_size=4)
    tokens, lengths, scores = naive_greedy(model, images)
    np.testing.assert_array_equal(compiled.tokens, tokens)
    np.testing.assert_array_equal(compiled.lengths, lengths)
    np.testing.assert_allclose(compiled.scores, scores, rtol=1e-5)
    assert compiled.texts[0] == " ".join(VOCAB[i] for i in tokens[0][: lengths[0]])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_beam_width_one_equals_greedy(architecture):
    model = _model(architecture)
    images = _images(6)
    generator = CaptionGenerator(model, vocabulary=VOCAB)
    greedy = generator(images)
    for penalty in (0.0, 0.7):
        beam = generator(images, method="beam", beam_width=1, length_penalty=penalty)
        np.testing.assert_array_equal(beam.tokens, greedy.tokens)
        np.testing.assert_allclose(beam.scores, greedy.scores, rtol=1e-5)
        assert beam.texts == greedy.texts


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_wide_beam_search_finds_the_best_caption_exhaustively(penalty):
    """With a beam wide enough to keep every hypothesis, beam search is exhaustive."""
    model = _model("merge", vocab_size=6, sequence_length=3)
    image = _images(1)[0]
    bias = np.zeros(6, "float32")
    bias[[0, START]] = -1e9  # pad and start are never generated
    allowed = [1, 4, 5, END]
    captions = [seq for length in (1, 2, 3) for seq in itertools.product(allowed, repeat=length)
                if END not in seq[:-1] and (length == 3 or seq[-1] == END)]
    # Every caption scored by the teacher-forced model, in one batch.
    text = np.zeros((len(captions), 3), "int32")
    text[:, 0] = START
    for i, seq in enumerate(captions):
        text[i, 1:len(seq)] = seq[:-1]
    logits = model({"image": np.repeat(image[None], len(captions), 0), "text": text})["logits"]
    logp = tf.nn.log_softmax(logits + bias).numpy()
    scores = [sum(logp[i, t, tok] for t, tok in enumerate(seq)) / len(seq) ** penalty
              for i, seq in enumerate(captions)]
    best_score = max(scores)
    best = [w for w in captions[int(np.argmax(scores))] if w != END]
    tokens, lengths, _ = beam_search(model, tf.constant(image[None]), max_length=3,
                                     beam_width=64, length_penalty=penalty)
    assert tokens.numpy()[0, :lengths.numpy()[0]].tolist() == best
    # Narrower beams: the reported log-probability is that of the caption
    # returned (the bookkeeping follows the right parents), never above the best.
    generator = CaptionGenerator(model, vocabulary=VOCAB[:6])
    for width in (2, 3):
        got = generator(image[None], method="beam", beam_width=width, length_penalty=penalty)
        words = got.tokens[0, :got.lengths[0]].tolist()
        seq = tuple(words) + ((END,) if len(words) < 3 else ())
        i = captions.index(seq)
        assert got.scores[0] == pytest.approx(scores[i] * len(seq) ** penalty, abs=1e-4)
        assert scores[i] <= best_score


def test_beam_search_is_xla_compiled_and_batches_are_padded():
    model = _model("inject")
    generator = CaptionGenerator(model, vocabulary=VOCAB)
    fn = generator.function("beam", beam_width=3)
    hlo = fn.experimental_get_compiler_ir(tf.constant(_images(2)))(stage="hlo")
    assert "while" in hlo  # one XLA while loop, not a Python loop
    together = generator(_images(5), method="beam", beam_width=3, batch_size=2)
    alone = [generator(_images(5)[i:i + 1], method="beam", beam_width=3) for i in range(5)]
    np.testing.assert_array_equal(together.tokens, np.concatenate([a.tokens for a in alone]))


def test_generate_with_tokenizer_and_bad_arguments():
    from mmzoo.data import Tokenizer

    tokenizer = Tokenizer(VOCAB[4:], sequence_length=6)
    model = _model("inject")
    captions = generate(model, _images(2), tokenizer, method="beam", beam_width=2)
    assert len(captions) == 2 and captions.texts == tokenizer.decode(captions.tokens)
    with pytest.raises(ValueError, match=r"Received: method='sample'"):
        generate(model, _images(2), method="sample")
    with pytest.raises(ValueError, match=r"Received: max_length=7"):
        generate(model, _images(2), max_length=7)
    with pytest.raises(ValueError, match=r"Received: beam_width=0"):
        generate(model, _images(2), method="beam", beam_width=0)
    with pytest.raises(ValueError, match=r"Received: images with shape \(2, 16, 16, 3\)"):
        generate(model, np.zeros((2, 16, 16, 3)))
    with pytest.raises(ValueError, match="vocab_size is 12"):
        CaptionGenerator(model, vocabulary=VOCAB[:5])


# ------------------------------------------------------------------ metrics


@pytest.mark.filterwarnings("ignore:\\s*The hypothesis contains 0 counts")
def test_bleu_equals_nltk_corpus_bleu():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    rng = random.Random(0)
    words = "a red blue circle square left of two".split()
    for _ in range(100):
        n = rng.randint(1, 6)
        # Hypotheses of >= 4 words (see the metrics module doc); references
        # longer and shorter, so the brevity penalty is exercised.
        hyps = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 9))) for _ in range(n)]
        refs = [[" ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
                 for _ in range(rng.randint(1, 5))] for _ in range(n)]
        ours = corpus_bleu(hyps, refs)
        for order in range(1, 5):
            theirs = nltk_bleu.corpus_bleu([[r.split() for r in group] for group in refs],
                                           [h.split() for h in hyps],
                                           weights=(1 / order,) * order)
            assert ours[f"bleu_{order}"] == pytest.approx(theirs, abs=1e-12)


def test_bleu_edge_cases():
    refs = [["a red circle on the left", "one red circle"]]
    assert corpus_bleu(["a red circle on the left"], refs)["bleu_4"] == pytest.approx(1.0)
    assert corpus_bleu(["blue square"], refs)["bleu_1"] == 0.0
    # Brevity penalty: 3 words against the closest reference (3 words) is 1.
    assert corpus_bleu(["one red circle"], refs)["bleu_3"] == pytest.approx(1.0)
    short = corpus_bleu(["red circle"], [["a red circle on the left"]])
    assert short["bleu_1"] == pytest.approx(math.exp(1 - 6 / 2))
    with pytest.raises(ValueError, match="2 hypotheses and 1 reference lists"):
        corpus_bleu(["a", "b"], [["a"]])


def test_cider_d_matches_hand_computed_values():
    # Two images, one reference each; idf of an n-gram seen in one of two
    # reference sets is log(2) - log(1) = log 2, and log 2 - 0 if never seen.
    # Image 1: identical to its reference -> cosine 1 for n = 1, 2 (no 3-,
    # 4-grams) -> 10 * (1 + 1 + 0 + 0) / 4 = 5.
    # Image 2: "c e" vs "c d": unigrams share c, weights all log 2 ->
    # cos = 1 / 2; bigrams differ -> 10 * 0.5 / 4 = 1.25.
    result = cider_d(["a b", "c e"], [["a b"], ["c d"]])
    assert result["per_image"] == pytest.approx([5.0, 1.25])
    assert result["cider_d"] == pytest.approx(3.125)
    # "a b b" vs "a b": unigram tf (1, 2) vs (1, 1), clipped dot 2, norms
    # sqrt 5 and sqrt 2 -> 2 / sqrt 10; bigrams {ab, bb} vs {ab} -> 1 / sqrt 2;
    # its trigram is absent from the reference; length penalty for one more
    # bigram: exp(-1 / (2 * 6^2)).
    result = cider_d(["a b b", "c d"], [["a b"], ["c d"]])
    expected = 10 * (2 / math.sqrt(10) + 1 / math.sqrt(2)) / 4 * math.exp(-1 / 72)
    assert result["per_image"][0] == pytest.approx(expected)
    # Several references are averaged; a caption matching one of two scores half.
    two = cider_d(["a b", "c d"], [["a b", "x y"], ["c d"]])
    assert two["per_image"][0] == pytest.approx(2.5)


def test_caption_metrics_dict():
    scores = caption_metrics(["a red circle"], [["a red circle", "one red circle"]])
    assert set(scores) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider_d"}


# ---------------------------------------------------------------- save/load


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_round_trip_with_safe_mode(architecture, tmp_path):
    model = _model(architecture)
    x = {"image": _images(3), "text": _prefixes()}
    model.fit(x, _labels(x["text"]), epochs=1, verbose=0)
    path = tmp_path / "captioner.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, CaptioningModel)
    assert loaded.build_options == model.build_options
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["logits"],
                               model.predict(x, verbose=0)["logits"], atol=1e-6)
    a = CaptionGenerator(model, vocabulary=VOCAB)(x["image"], method="beam", beam_width=2)
    b = CaptionGenerator(loaded, vocabulary=VOCAB)(x["image"], method="beam", beam_width=2)
    assert a.texts == b.texts
    rebuilt = mmzoo.build_model(**model.build_options)
    assert rebuilt.count_params() == model.count_params()
