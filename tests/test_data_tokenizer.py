"""Tokenizer: Python and TensorFlow paths agree id for id; edge cases; saving."""

import json
import random

import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data.tokenizer import END, OOV, PAD, START, Tokenizer, normalize, split_words

TRICKY = [
    "Hello, World!", "", " ", "\t\n\r\x0b\x0c", "a", "A.B,C;D:E", "don't stop-me now...",
    "ÀÉÎÕÜ straße STRASSE ẞ", "İstanbul ıi IJ ǅ", "ΟΔΟΣ Σίσυφος", "naïve café—résumé",
    "日本語のテキスト。中文，标点！", "emoji 😀👍🏽 👨‍👩‍👧 ok", "nbsp\u00a0thin\u2009ideo\u3000end",
    "zero\u200bwidth\u200djoin\ufeffbom", "a\x00b\x1fc\x7fd\x85e", "ＡＢＣ ｆｕｌｌ！ｗｉｄｔｈ",
    "µm ²³ ½ ªº x×y÷z", "tab\tsep\nnew line", "combining e\u0301 vs é", "Ⱟ Ꟁ 𐕰 𐐀 Ꭰ",
    "UPPER lower MiXeD", "numbers 123 4.5 6,7", "«quoted» “curly” ‘single’", "a" * 300,
    "word " * 200, "ǈ ǋ ǲ titlecase", "ﬁ ligature", "Ⅷ roman", "math 𝐀𝐁 bold",
]


def _random_texts(n, seed=0):
    rng = random.Random(seed)
    # Bytes, some valid UTF-8 pieces and many invalid sequences.
    pieces = [b"a", b"B", b" ", b".", b"\xc3\xa9", b"\xc3\x89", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80",
              b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80",
              b"\x80", b"\t", b"\xce\xa3", b"\xe2\x80\x83"]
    texts = [b"".join(rng.choice(pieces) for _ in range(rng.randrange(25))) for _ in range(n)]
    texts += [bytes(rng.randrange(256) for _ in range(rng.randrange(30))) for _ in range(n)]
    # Random code points from blocks with case, punctuation and separators.
    blocks = [(0x20, 0x7F), (0xA0, 0x24F), (0x370, 0x4FF), (0x1E00, 0x1FFF), (0x2000, 0x2BFF),
              (0x3000, 0x30FF), (0xFF00, 0xFFEF), (0x10400, 0x1044F), (0x1F300, 0x1F6FF)]
    for _ in range(n):
        chars = []
        for _ in range(rng.randrange(20)):
            lo, hi = rng.choice(blocks)
            chars.append(chr(rng.randrange(lo, hi)))
        texts.append("".join(chars).encode("utf-8"))
    return texts


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_texts(TRICKY + [t.decode("utf-8", "replace") for t in
                                          _random_texts(300, seed=1)], sequence_length=12)


def test_python_and_tf_give_identical_ids(tok):
    texts = [t.encode("utf-8") for t in TRICKY] + _random_texts(1500)
    py = tok.encode(texts)
    tf_ids = tok.tf_encode(tf.constant(texts)).numpy()
    assert py.dtype == np.int32 and tf_ids.dtype == np.int32
    assert py.shape == tf_ids.shape == (len(texts), 12)
    mismatch = [texts[i] for i in np.flatnonzero((py != tf_ids).any(1))]
    assert not mismatch, mismatch[:3]
    # Not vacuous: the inputs produced known words, OOV and padding.
    assert (py > END).mean() > 0.1 and (py == OOV).any() and (py == PAD).any()
    for flags in ((True, False), (False, True), (True, True)):
        np.testing.assert_array_equal(tok.encode(texts, 7, *flags),
                                      tok.tf_encode(tf.constant(texts), 7, *flags).numpy())


def test_python_and_tf_normalise_identically(tok):
    texts = [t.encode("utf-8") for t in TRICKY] + _random_texts(500, seed=2)
    tf_norm = tok.tf_normalize(tf.constant(texts)).numpy()
    for text, theirs in zip(texts, tf_norm):
        assert normalize(text).encode("utf-8") == theirs, text


def test_normalisation_rules():
    assert split_words("Hello, World!") == ["hello", "world"]
    assert split_words("ÀÉÎ straße ΟΔΟΣ") == ["àéî", "straße", "οδοσ"]
    assert split_words("İstanbul") == ["istanbul"]
    assert split_words("日本語のテキスト。中文，标点！") == ["日本語のテキスト", "中文", "标点"]
    assert split_words("don't\u00a0stop\u3000now") == ["don", "t", "stop", "now"]
    assert split_words(b"caf\xc3\xa9 \xff bad") == ["café", "bad"]  # invalid byte splits
    assert split_words("") == [] and split_words(" \t\n") == []
    with pytest.raises(TypeError, match="Received: text=3"):
        normalize(3)


def test_tf_path_in_dataset_map_and_tf_function(tok):
    texts = ["A red circle", "", "ΟΔΟΣ 😀"]
    ds = tf.data.Dataset.from_tensor_slices(texts).map(
        lambda s: tok.tf_encode(s, add_start=True, add_end=True))
    assert ds.element_spec.shape == (12,)  # static, so batching keeps it
    got = np.stack(list(ds.as_numpy_iterator()))
    np.testing.assert_array_equal(got, tok.encode(texts, add_start=True, add_end=True))
    fn = tf.function(lambda s: tok.tf_encode(s), input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_array_equal(fn(tf.constant(texts)).numpy(), tok.encode(texts))
    assert tok.tf_encode(tf.constant([["a b", "c"]])).shape == (1, 2, 12)


def test_tf_path_survives_a_saved_model(tok, tmp_path):
    module = tf.Module()
    module.tables = tok.tf_resources
    module.encode = tf.function(lambda s: tok.tf_encode(s),
                                input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    texts = [t.encode("utf-8") for t in TRICKY]
    np.testing.assert_array_equal(loaded.encode(tf.constant(texts)).numpy(), tok.encode(texts))


def test_padding_truncation_start_end_and_oov():
    tok = Tokenizer(["a", "red", "circle"], sequence_length=5)
    np.testing.assert_array_equal(tok.encode("A red square"), [4, 5, OOV, 0, 0])
    np.testing.assert_array_equal(tok.encode("a red circle a red circle"), [4, 5, 6, 4, 5])
    # The end token always fits: words are truncated first.
    np.testing.assert_array_equal(tok.encode("a red circle a red", add_start=True, add_end=True),
                                  [START, 4, 5, 6, END])
    np.testing.assert_array_equal(tok.encode("", add_start=True, add_end=True),
                                  [START, END, 0, 0, 0])
    assert tok.encode(["a", "red"]).shape == (2, 5) and tok.encode([]).shape == (0, 5)
    with pytest.raises(ValueError, match="Received: sequence_length=1"):
        tok.encode("a", sequence_length=1, add_start=True, add_end=True)


def test_decode_round_trip():
    texts = ["two red circles and a blue square", "a large green cross at the top left"]
    tok = Tokenizer.from_texts(texts, sequence_length=12)
    for text in texts:
        assert tok.decode(tok.encode(text)) == text
        assert tok.decode(tok.encode(text, add_start=True, add_end=True)) == text
    ids = tok.encode(["Two RED circles!", "a purple square"])
    assert tok.decode(ids) == ["two red circles", "a <oov> square"]
    assert tok.decode([START, 4, END, 5]) == tok.vocabulary[4]  # stops at the end token
    assert tok.decode([START, 4, END], skip_special=False) == f"<start> {tok.vocabulary[4]} <end>"
    with pytest.raises(ValueError, match="Received: id=99"):
        tok.decode([99])


def test_long_empty_and_undecodable_inputs(tok):
    long_text = "word " * 200_000 + "\xff"
    ids = tok.encode(long_text)
    assert ids.shape == (12,)
    np.testing.assert_array_equal(tok.tf_encode(tf.constant([long_text]))[0].numpy(), ids)
    assert (tok.encode([b"", b"\xff\xfe", b"\x00"]) == PAD).all()


def test_vocabulary_from_texts():
    tok = Tokenizer.from_texts(["b a c", "a b", "a", "d"], max_tokens=7, sequence_length=3)
    assert tok.vocabulary == ["<pad>", "<oov>", "<start>", "<end>", "a", "b", "c"]
    assert tok.vocab_size == len(tok) == 7
    assert Tokenizer.from_texts(["b a", "a"], min_count=2).vocabulary[4:] == ["a"]
    with pytest.raises(ValueError, match="Received: max_tokens=2"):
        Tokenizer.from_texts(["a"], max_tokens=2)
    with pytest.raises(ValueError, match=r"vocabulary\[1\]='Red'"):
        Tokenizer(["a", "Red"])
    with pytest.raises(ValueError, match=r"vocabulary\[2\]='a' twice"):
        Tokenizer(["a", "b", "a"])
    with pytest.raises(ValueError, match="Received: sequence_length=0"):
        Tokenizer(["a"], sequence_length=0)


def test_save_and_load(tmp_path):
    tok = Tokenizer.from_texts(["café au lait", "日本 語"], sequence_length=9)
    path = tok.save(tmp_path / "tok")
    assert path.endswith("tokenizer.json")
    again = Tokenizer.load(tmp_path / "tok")
    assert again == tok and again.sequence_length == 9
    np.testing.assert_array_equal(again.encode("Café 語"), tok.encode("Café 語"))
    assert Tokenizer.load(tok.save(tmp_path / "t.json")) == tok
    assert Tokenizer.from_config(tok.get_config()) == tok
    data = json.loads((tmp_path / "tok" / "tokenizer.json").read_text(encoding="utf-8"))
    assert data["vocabulary"][:4] == ["<pad>", "<oov>", "<start>", "<end>"]
    with pytest.raises(FileNotFoundError, match="No tokenizer file"):
        Tokenizer.load(tmp_path / "missing")
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="is not a tokenizer file"):
        Tokenizer.load(tmp_path / "bad.json")
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a tokenizer file"):
        Tokenizer.load(tmp_path / "garbage.json")
