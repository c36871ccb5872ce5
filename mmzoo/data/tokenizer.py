"""A word-level tokenizer whose Python and TensorFlow paths agree exactly.

Normalisation, identical in both paths:

1. bytes are decoded as UTF-8; each invalid sequence becomes U+FFFD;
2. letters are lower-cased (one code point to one code point, from Python's
   Unicode tables; the dotted capital I becomes "i");
3. every separator becomes a space: all ASCII characters except letters and
   digits, C1 controls, Latin-1 punctuation and symbols, Unicode whitespace,
   general and CJK punctuation, fullwidth ASCII punctuation, surrogates and
   U+FFFD. Other characters (accented letters, CJK, emoji) stay inside words;
4. words are split on spaces.

Both paths apply the same code point table (a dict in Python, a
`tf.lookup.StaticHashTable` in TensorFlow), so they cannot drift apart. The TF
path uses only `tf.strings` and `tf.lookup` ops: it runs in `Dataset.map`, in a
`tf.function` and in a SavedModel, never under XLA or in TFLite builtins.

Ids: 0 = padding, 1 = out of vocabulary, 2 = start, 3 = end, then the words.

Example:

```python
tok = Tokenizer.from_texts(["A red circle.", "Two blue squares!"], sequence_length=6)
tok.encode("a red square")             # [4, 6, 1, 0, 0, 0]  (square is OOV)
tok.tf_encode(tf.constant(["a red square"]))  # the same ids, as a tf.Tensor
tok.decode([2, 4, 6, 3, 0])            # "a red"
tok.save("my_tokenizer/")  ;  Tokenizer.load("my_tokenizer/")
```
"""

import collections
import functools
import json
import os

import numpy as np

PAD, OOV, START, END = 0, 1, 2, 3
RESERVED_TOKENS = ("<pad>", "<oov>", "<start>", "<end>")
FILE_NAME = "tokenizer.json"
_FORMAT = "mmzoo-tokenizer"
_FORMAT_VERSION = 1

# Inclusive code point ranges that separate words.
SEPARATOR_RANGES = (
    (0x00, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0xA9), (0xAB, 0xB1),
    (0xB4, 0xB4), (0xB6, 0xB8), (0xBB, 0xBF), (0xD7, 0xD7), (0xF7, 0xF7),
    (0x1680, 0x1680), (0x180E, 0x180E),
    (0x2000, 0x206F),  # spaces, zero-width characters, general punctuation
    (0x2E00, 0x2E7F),  # supplemental punctuation
    (0x3000, 0x303F),  # ideographic space, CJK punctuation
    (0xD800, 0xDFFF),  # surrogates (only reachable from a Python str)
    (0xFE10, 0xFE1F), (0xFE30, 0xFE6F), (0xFEFF, 0xFEFF),
    (0xFF01, 0xFF0F), (0xFF1A, 0xFF20), (0xFF3B, 0xFF40), (0xFF5B, 0xFF65),
    (0xFFFD, 0xFFFD),
)


@functools.lru_cache(maxsize=1)
def code_point_table():
    """The normalisation as `{code point: code point}`: lower-casing, and 32
    (a space) for separators. Code points not in it are kept."""
    table = {}
    # Beyond U+1FFFF no character has a lower-case form.
    for cp in range(0x20000):
        lower = chr(cp).lower()
        if lower != chr(cp):
            table[cp] = ord(lower[0])
    for lo, hi in SEPARATOR_RANGES:
        for cp in range(lo, hi + 1):
            table[cp] = 0x20
    return table


def normalize(text):
    """Normalises one string (`str` or UTF-8 `bytes`); see the module doc."""
    if isinstance(text, (bytes, bytearray, np.bytes_)):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        raise TypeError(f"Expected a string (str or bytes). Received: text={text!r} "
                        f"of type {type(text).__name__}")
    return text.translate(code_point_table())


def split_words(text):
    """The words of one string after normalisation."""
    return [w for w in normalize(text).split(" ") if w]


def _as_list(texts):
    """`(list of texts, was_single)` for a string or a sequence of strings."""
    if isinstance(texts, (str, bytes, bytearray, np.str_, np.bytes_)):
        return [texts], True
    if isinstance(texts, np.ndarray):
        if texts.ndim == 0:
            return [texts.item()], True
        texts = texts.reshape(-1).tolist()
    try:
        return list(texts), False
    except TypeError:
        raise TypeError("Expected a string or a sequence of strings. Received: "
                        f"texts={texts!r} of type {type(texts).__name__}") from None


class Tokenizer:
    """Word-level tokenizer with a fixed output length.

    Args:
        vocabulary: the words, most useful first; ids 0-3 are reserved
            (padding, out of vocabulary, start, end) and the words get ids
            4, 5, ... Words must already be normalised (as `split_words`
            returns them) and unique.
        sequence_length: length of every encoded sequence (padding with 0 at
            the end, truncation keeps the first words).

    Example:

    ```python
    tok = Tokenizer(["a", "red", "circle"], sequence_length=5)
    tok.encode(["A red circle!", "a blue circle"])
    # array([[4, 5, 6, 0, 0], [4, 1, 6, 0, 0]], dtype=int32)
    ```
    """

    def __init__(self, vocabulary, sequence_length=16):
        vocabulary = list(vocabulary)
        if vocabulary[: len(RESERVED_TOKENS)] == list(RESERVED_TOKENS):
            vocabulary = vocabulary[len(RESERVED_TOKENS):]
        seen = set()
        for i, word in enumerate(vocabulary):
            if not isinstance(word, str) or not word or split_words(word) != [word]:
                raise ValueError(
                    "Every vocabulary entry must be one normalised word (lower-case, "
                    "no spaces or punctuation). Received: "
                    f"vocabulary[{i}]={word!r}")
            if word in seen:
                raise ValueError(f"The vocabulary must not repeat a word. Received: "
                                 f"vocabulary[{i}]={word!r} twice")
            seen.add(word)
        _check_length(sequence_length)
        self.sequence_length = int(sequence_length)
        self._words = vocabulary
        self._ids = {w: i + len(RESERVED_TOKENS) for i, w in enumerate(vocabulary)}
        self._tf_tables = None

    # -- construction ---------------------------------------------------------

    @classmethod
    def from_texts(cls, texts, max_tokens=None, min_count=1, sequence_length=16):
        """Builds the vocabulary from a corpus.

        Args:
            texts: strings (or UTF-8 bytes).
            max_tokens: largest vocabulary size, the 4 reserved ids included;
                the most frequent words are kept (ties: alphabetical).
            min_count: drop words seen fewer times.
            sequence_length: see `Tokenizer`.

        Returns:
            A `Tokenizer`.
        """
        if max_tokens is not None and (not isinstance(max_tokens, int)
                                       or max_tokens < len(RESERVED_TOKENS)):
            raise ValueError(f"`max_tokens` must be None or an integer >= "
                             f"{len(RESERVED_TOKENS)} (the reserved ids count). "
                             f"Received: max_tokens={max_tokens!r}")
        counts = collections.Counter()
        for text in _as_list(texts)[0]:
            counts.update(split_words(text))
        words = sorted((w for w, c in counts.items() if c >= min_count),
                       key=lambda w: (-counts[w], w))
        if max_tokens is not None:
            words = words[: max_tokens - len(RESERVED_TOKENS)]
        return cls(words, sequence_length=sequence_length)

    @property
    def vocabulary(self):
        """All tokens by id, the reserved ones first."""
        return list(RESERVED_TOKENS) + self._words

    @property
    def vocab_size(self):
        """Number of ids (the `vocab_size` of an embedding layer)."""
        return len(RESERVED_TOKENS) + len(self._words)

    def __len__(self):
        return self.vocab_size

    def __repr__(self):
        return (f"Tokenizer(vocab_size={self.vocab_size}, "
                f"sequence_length={self.sequence_length})")

    def __eq__(self, other):
        return (isinstance(other, Tokenizer) and self._words == other._words
                and self.sequence_length == other.sequence_length)

    # -- Python path ------------------------------------------------------------

    def encode(self, texts, sequence_length=None, add_start=False, add_end=False):
        """Token ids of one string or of a sequence of strings.

        Args:
            texts: a string (`str` or UTF-8 `bytes`) or a sequence of them.
            sequence_length: overrides `self.sequence_length`.
            add_start, add_end: put the start / end token around the words;
                words are truncated first so the end token always fits.

        Returns:
            int32 array, `(sequence_length,)` for one string, else
            `(len(texts), sequence_length)`.
        """
        length = self._length(sequence_length, add_start, add_end)
        items, single = _as_list(texts)
        out = np.zeros((len(items), length), np.int32)
        room = length - int(add_start) - int(add_end)
        for row, text in enumerate(items):
            ids = [self._ids.get(w, OOV) for w in split_words(text)[:room]]
            if add_start:
                ids.insert(0, START)
            if add_end:
                ids.append(END)
            out[row, : len(ids)] = ids
        return out[0] if single else out

    __call__ = encode

    def decode(self, ids, skip_special=True):
        """Words of token ids: a string for one sequence, else a list.

        Padding is dropped and decoding stops at the end token; with
        `skip_special=False` every id is written out, reserved ones as
        `<pad>`, `<oov>`, `<start>`, `<end>`.
        """
        arr = np.asarray(ids)
        if arr.ndim == 0 or arr.ndim > 2:
            raise ValueError(f"`ids` must be one sequence (1D) or a batch (2D). "
                             f"Received: ids with shape {arr.shape}")
        if arr.ndim == 2:
            return [self.decode(row, skip_special) for row in arr]
        vocab = self.vocabulary
        words = []
        for i in arr.tolist():
            if not 0 <= i < len(vocab):
                raise ValueError(f"Token ids must be in [0, {len(vocab)}). "
                                 f"Received: id={i}")
            if skip_special:
                if i == END:
                    break
                if i in (PAD, START):
                    continue
            words.append(vocab[i])
        return " ".join(words)

    # -- TensorFlow path ------------------------------------------------------

    def _tables(self):
        import tensorflow as tf

        if self._tf_tables is None:
            # init_scope: the tables are created eagerly even when the first call
            # is traced by Dataset.map or tf.function, so later calls reuse them.
            with tf.init_scope():
                cp = code_point_table()
                keys = np.fromiter(cp.keys(), np.int64, len(cp))
                values = np.fromiter(cp.values(), np.int64, len(cp))
                chars = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)
                words = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(
                        tf.constant(self._words or [""], tf.string),
                        tf.constant(list(self._ids.values()) or [OOV], tf.int64)),
                    default_value=OOV)
                self._tf_tables = (chars, words)
        return self._tf_tables

    @property
    def tf_resources(self):
        """The lookup tables the TF path uses, for `ExportArchive.track`."""
        return list(self._tables())

    def tf_normalize(self, strings):
        """`normalize` in TensorFlow: a tf.string tensor of any shape."""
        import tensorflow as tf

        strings = tf.convert_to_tensor(strings, tf.string)
        shape = tf.shape(strings)
        flat = tf.reshape(strings, [-1])
        cps = tf.strings.unicode_decode(flat, "UTF-8", errors="replace",
                                        replacement_char=0xFFFD)
        values = tf.cast(cps.flat_values, tf.int64)
        mapped = self._tables()[0].lookup(values)
        values = tf.cast(tf.where(mapped >= 0, mapped, values), tf.int32)
        out = tf.strings.unicode_encode(cps.with_flat_values(values), "UTF-8")
        return tf.reshape(out, shape)

    def tf_encode(self, strings, sequence_length=None, add_start=False, add_end=False):
        """`encode` in TensorFlow, for `Dataset.map` and SavedModel endpoints.

        Args:
            strings: tf.string tensor of any shape `S` (UTF-8 bytes).
            sequence_length, add_start, add_end: as in `encode`.

        Returns:
            int32 tensor of shape `S + (sequence_length,)`.
        """
        import tensorflow as tf

        length = self._length(sequence_length, add_start, add_end)
        strings = tf.convert_to_tensor(strings, tf.string)
        shape = tf.shape(strings)
        normal = self.tf_normalize(tf.reshape(strings, [-1]))
        # After normalisation the only whitespace left is the ASCII space.
        words = tf.strings.split(normal)
        room = length - int(add_start) - int(add_end)
        ids = self._tables()[1].lookup(words[:, :room])
        batch = tf.shape(normal)[0]
        if add_start:
            ids = tf.concat([tf.fill([batch, 1], tf.constant(START, tf.int64)), ids], axis=1)
        if add_end:
            ids = tf.concat([ids, tf.fill([batch, 1], tf.constant(END, tf.int64))], axis=1)
        dense = tf.cast(ids.to_tensor(default_value=PAD, shape=[None, length]), tf.int32)
        out = tf.reshape(dense, tf.concat([shape, [length]], axis=0))
        out.set_shape(strings.shape.concatenate([length]))  # static, for batching
        return out

    # -- saving -----------------------------------------------------------------

    def get_config(self):
        return {"vocabulary": list(self._words), "sequence_length": self.sequence_length}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def save(self, path):
        """Writes `tokenizer.json` into folder `path` (or to `path` if it ends
        in `.json`); returns the file's path."""
        path = os.fspath(path)
        if not path.endswith(".json"):
            os.makedirs(path, exist_ok=True)
            path = os.path.join(path, FILE_NAME)
        data = {"format": _FORMAT, "version": _FORMAT_VERSION,
                "sequence_length": self.sequence_length, "vocabulary": self.vocabulary}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=0)
            f.write("\n")
        return path

    @classmethod
    def load(cls, path):
        """Reads a tokenizer written by `save` (a folder or a `.json` file)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, FILE_NAME)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"No tokenizer file at {path!r}.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path!r} is not a tokenizer file: {e}") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{path!r} is not a tokenizer file (no "
                             f"\"format\": \"{_FORMAT}\").")
        if data.get("version") != _FORMAT_VERSION:
            raise ValueError(f"{path!r} has tokenizer format version "
                             f"{data.get('version')!r}; this mmzoo reads version "
                             f"{_FORMAT_VERSION}.")
        vocab = data["vocabulary"]
        if vocab[: len(RESERVED_TOKENS)] != list(RESERVED_TOKENS):
            raise ValueError(f"{path!r}: the vocabulary must start with "
                             f"{list(RESERVED_TOKENS)}.")
        return cls(vocab, sequence_length=data["sequence_length"])

    def _length(self, sequence_length, add_start, add_end):
        length = self.sequence_length if sequence_length is None else sequence_length
        _check_length(length)
        if length < int(add_start) + int(add_end):
            raise ValueError(f"`sequence_length` must leave room for the start/end "
                             f"tokens. Received: sequence_length={length}")
        return int(length)


def _check_length(length):
    if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 1:
        raise ValueError(f"`sequence_length` must be a positive integer. Received: "
                         f"sequence_length={length!r}")
