"""Caption generation: greedy and beam search as compiled TensorFlow loops.

The image half of a `CaptioningModel` runs once per image (`model.encode`);
then one decoder step (`model.decode_step`) per token inside a `tf.while_loop`,
the whole thing one `tf.function` compiled with XLA. Shapes stay fixed (the
token buffer is `(batch, max_length)` from the start), so the loop compiles
once per batch size; it stops early when every caption has ended.

Beam search keeps `beam_width` hypotheses per image. A hypothesis that emits
the end token is finished: it stays in the beam with a frozen score and can
only be extended by padding, so finished and unfinished hypotheses compete
for the beam slots on their length-normalised scores,
`sum(log p) / length ** length_penalty` (`length_penalty=0`: raw sum,
`1`: mean log-probability per token; the end token counts). With
`beam_width=1` this is exactly greedy search.

Padding (id 0) and the start token are never generated.

Example:

```python
generator = CaptionGenerator(model, tokenizer)
captions = generator(images, method="beam", beam_width=3)
captions.texts[0], captions.tokens[0]
```
"""

import dataclasses
import weakref

import numpy as np
import tensorflow as tf

from mmzoo.checks import check_batch_size
from mmzoo.data.tokenizer import END, PAD, START

METHODS = ("greedy", "beam")
_NEG = -1e9  # a finite "impossible" score: never NaN in arithmetic, unlike -inf


@dataclasses.dataclass
class Captions:
    """Generated captions for a batch of images.

    Attributes:
        tokens: `(batch, max_length)` int32 word ids, 0 after the caption (the
            end token is not included).
        lengths: `(batch,)` number of words of each caption.
        scores: `(batch,)` log-probability of each caption under the model,
            end token included.
        texts: the captions as strings, when a tokenizer or vocabulary was
            given; else `None`.
    """

    tokens: np.ndarray
    lengths: np.ndarray
    scores: np.ndarray
    texts: list = None

    def __len__(self):
        return len(self.tokens)


def _banned_bias(vocab_size, start_id):
    """Added to the logits: pad and start can never be generated."""
    bias = np.zeros(vocab_size, np.float32)
    bias[PAD] = _NEG
    bias[start_id] = _NEG
    return tf.constant(bias)


def _finish(ids, scores, end_id):
    """Drops the end token; returns (tokens, lengths, scores)."""
    words = tf.where(ids == end_id, tf.zeros_like(ids), ids)
    lengths = tf.math.count_nonzero(words, axis=-1, dtype=tf.int32)
    return words, lengths, scores


def greedy_search(model, images, max_length, start_id=START, end_id=END):
    """Greedy decoding: the most likely next token at every step.

    Traceable TensorFlow (wrap it in a `tf.function`, XLA-compilable).

    Args:
        model: a `CaptioningModel`.
        images: `(batch, height, width, channels)` raw pixels, float32.
        max_length: most tokens to generate (the end token included).
        start_id, end_id: the tokenizer's start and end ids.

    Returns:
        `(tokens, lengths, scores)` tensors, as in `Captions`.
    """
    states, context = model.encode(images)
    batch = tf.shape(images)[0]
    bias = _banned_bias(model.vocab_size, start_id)
    positions = tf.range(max_length)

    def body(t, tokens, states, ids, scores, done):
        logits, states = model.decode_step(tokens, states, context)
        logp = tf.nn.log_softmax(tf.cast(logits, tf.float32) + bias)
        token = tf.argmax(logp, axis=-1, output_type=tf.int32)
        token_logp = tf.gather(logp, token, batch_dims=1)
        token = tf.where(done, tf.zeros_like(token), token)
        scores += tf.where(done, tf.zeros_like(token_logp), token_logp)
        ids = tf.where(positions[None, :] == t, token[:, None], ids)
        done = done | (token == end_id)
        return t + 1, token, states, ids, scores, done

    def cond(t, tokens, states, ids, scores, done):
        return tf.logical_not(tf.reduce_all(done))

    loop_vars = (tf.constant(0), tf.fill([batch], tf.constant(start_id, tf.int32)),
                 states, tf.zeros([batch, max_length], tf.int32),
                 tf.zeros([batch], tf.float32), tf.zeros([batch], tf.bool))
    _, _, _, ids, scores, _ = tf.while_loop(cond, body, loop_vars,
                                            maximum_iterations=max_length)
    return _finish(ids, scores, end_id)


def beam_search(model, images, max_length, beam_width=3, length_penalty=0.0,
                start_id=START, end_id=END):
    """Beam search with length normalisation (see the module doc).

    Traceable TensorFlow (wrap it in a `tf.function`, XLA-compilable).

    Args:
        model: a `CaptioningModel`.
        images: `(batch, height, width, channels)` raw pixels, float32.
        max_length: most tokens to generate (the end token included).
        beam_width: hypotheses kept per image. Slots that the first steps
            cannot fill (fewer distinct captions than slots) hold hypotheses
            scored about -1e9, which never win.
        length_penalty: exponent `alpha` of the length normalisation.
        start_id, end_id: the tokenizer's start and end ids.

    Returns:
        `(tokens, lengths, scores)` tensors of the best hypothesis per image,
        as in `Captions` (`scores` is the raw log-probability).
    """
    k, vocab_size = beam_width, model.vocab_size
    states, context = model.encode(images)
    batch = tf.shape(images)[0]
    # Row b * k + j of the decoder batch is hypothesis j of image b.
    states = [tf.repeat(s, k, axis=0) for s in states]
    context = [tf.repeat(c, k, axis=0) for c in context]
    bias = _banned_bias(vocab_size, start_id)
    positions = tf.range(max_length)
    vocab = tf.range(vocab_size)
    offsets = tf.range(batch)[:, None] * k

    def normalise(sums, lengths):
        lengths = tf.cast(tf.maximum(lengths, 1), tf.float32)
        return sums / tf.pow(lengths, length_penalty)

    def body(t, tokens, states, seqs, sums, lengths, done):
        logits, new_states = model.decode_step(tokens, states, context)
        logp = tf.nn.log_softmax(tf.cast(logits, tf.float32) + bias)
        logp = tf.reshape(logp, [batch, k, vocab_size])
        # A finished hypothesis has one continuation: padding, at no cost.
        finished = tf.where(vocab[None, None, :] == PAD, sums[:, :, None], _NEG)
        cand_sums = tf.where(done[:, :, None], finished, sums[:, :, None] + logp)
        cand_lengths = tf.where(done, lengths, t + 1)
        cand_scores = normalise(cand_sums, cand_lengths[:, :, None])
        _, flat = tf.math.top_k(tf.reshape(cand_scores, [batch, k * vocab_size]), k=k)
        parent, token = flat // vocab_size, flat % vocab_size
        sums = tf.gather(tf.reshape(cand_sums, [batch, k * vocab_size]), flat, batch_dims=1)
        lengths = tf.gather(cand_lengths, parent, batch_dims=1)
        done = tf.gather(done, parent, batch_dims=1) | (token == end_id)
        seqs = tf.gather(seqs, parent, batch_dims=1)
        seqs = tf.where(positions[None, None, :] == t, token[:, :, None], seqs)
        rows = tf.reshape(parent + offsets, [-1])
        states = [tf.gather(s, rows) for s in new_states]
        return t + 1, tf.reshape(token, [-1]), states, seqs, sums, lengths, done

    def cond(t, tokens, states, seqs, sums, lengths, done):
        return tf.logical_not(tf.reduce_all(done))

    # Only hypothesis 0 is live at first, so the k first expansions differ.
    sums = tf.concat([tf.zeros([batch, 1]), tf.fill([batch, k - 1], _NEG)], axis=1)
    loop_vars = (tf.constant(0), tf.fill([batch * k], tf.constant(start_id, tf.int32)),
                 states, tf.zeros([batch, k, max_length], tf.int32), sums,
                 tf.zeros([batch, k], tf.int32), tf.zeros([batch, k], tf.bool))
    _, _, _, seqs, sums, lengths, _ = tf.while_loop(cond, body, loop_vars,
                                                    maximum_iterations=max_length)
    best = tf.argmax(normalise(sums, lengths), axis=-1, output_type=tf.int32)
    ids = tf.gather(seqs, best, batch_dims=1)
    return _finish(ids, tf.gather(sums, best, batch_dims=1), end_id)


def naive_greedy(model, images, max_length=None, start_id=START, end_id=END):
    """Greedy decoding the slow way: the full model once per token, from Python.

    The reference for `greedy_search` (same captions) and the baseline of
    `bench/generation.py`. Each step runs the teacher-forced model on the
    padded prefix and reads the logits at the current position.

    Returns:
        `(tokens, lengths, scores)` NumPy arrays, as in `Captions`.
    """
    images = np.asarray(images, np.float32)
    max_length = _check_max_length(model, max_length)
    n, length = len(images), model.sequence_length
    prefix = np.zeros((n, length), np.int32)
    prefix[:, 0] = start_id
    bias = _banned_bias(model.vocab_size, start_id).numpy()
    ids = np.zeros((n, max_length), np.int32)
    scores = np.zeros(n, np.float32)
    done = np.zeros(n, bool)
    for t in range(max_length):
        logits = model({"image": images, "text": prefix}, training=False)["logits"]
        logp = tf.nn.log_softmax(tf.cast(logits[:, t], tf.float32) + bias).numpy()
        token = np.where(done, 0, logp.argmax(-1)).astype(np.int32)
        scores += np.where(done, 0.0, logp[np.arange(n), token])
        ids[:, t] = token
        done |= token == end_id
        if done.all():
            break
        if t + 1 < length:
            prefix[:, t + 1] = token
    words = np.where(ids == end_id, 0, ids)
    return words, np.count_nonzero(words, axis=-1).astype(np.int32), scores


def _check_max_length(model, max_length):
    if max_length is None:
        return model.sequence_length
    if not (isinstance(max_length, (int, np.integer)) and not isinstance(max_length, bool)
            and 1 <= max_length <= model.sequence_length):
        raise ValueError(
            f"`max_length` must be an integer in [1, {model.sequence_length}] (the model's "
            f"sequence_length). Received: max_length={max_length!r}")
    return int(max_length)


class CaptionGenerator:
    """Generates captions with a `CaptioningModel`, compiling each search once.

    Args:
        model: a `CaptioningModel` (from `mmzoo.build_model("captioning", ...)`).
        tokenizer: an `mmzoo.data.Tokenizer` (for the strings), or `None`.
        vocabulary: the tokens by id, instead of a tokenizer; or `None`.
        start_id, end_id: the start and end token ids (the mmzoo tokenizer's
            by default).
        jit_compile: compile the loops with XLA.

    Example:

    ```python
    generator = CaptionGenerator(model, tokenizer)
    captions = generator(images)                      # greedy
    captions = generator(images, method="beam", beam_width=3, length_penalty=0.7)
    print(captions.texts[0])
    ```
    """

    def __init__(self, model, tokenizer=None, *, vocabulary=None, start_id=START,
                 end_id=END, jit_compile=True):
        if not (hasattr(model, "encode") and hasattr(model, "decode_step")):
            raise ValueError(
                "`model` must be a captioning model (from build_model('captioning', "
                f"...)). Received: model of type {type(model).__name__}")
        if tokenizer is not None and vocabulary is not None:
            raise ValueError("Pass `tokenizer` or `vocabulary`, not both. Received: both")
        if tokenizer is not None:
            vocabulary = tokenizer.vocabulary
        if vocabulary is not None and len(vocabulary) != model.vocab_size:
            raise ValueError(
                f"The vocabulary has {len(vocabulary)} tokens but the model's vocab_size "
                f"is {model.vocab_size}. Received: a vocabulary of {len(vocabulary)} tokens")
        for name, value in (("start_id", start_id), ("end_id", end_id)):
            if not (isinstance(value, (int, np.integer)) and 0 < value < model.vocab_size):
                raise ValueError(f"`{name}` must be a token id in [1, {model.vocab_size}). "
                                 f"Received: {name}={value!r}")
        self.model = model
        self.vocabulary = None if vocabulary is None else list(vocabulary)
        self.start_id, self.end_id = int(start_id), int(end_id)
        self.jit_compile = jit_compile
        self._functions = {}

    def function(self, method="greedy", beam_width=3, max_length=None, length_penalty=0.0):
        """The compiled search: a `tf.function` from images to `(tokens, lengths, scores)`."""
        method, beam_width, max_length, length_penalty = self._check(
            method, beam_width, max_length, length_penalty)
        key = (method, beam_width, max_length, length_penalty)
        if key not in self._functions:
            model, start_id, end_id = self.model, self.start_id, self.end_id
            if method == "greedy":
                def search(images):
                    return greedy_search(model, images, max_length, start_id, end_id)
            else:
                def search(images):
                    return beam_search(model, images, max_length, beam_width,
                                       length_penalty, start_id, end_id)
            self._functions[key] = tf.function(search, jit_compile=self.jit_compile,
                                               reduce_retracing=True)
        return self._functions[key]

    def __call__(self, images, method="greedy", beam_width=3, max_length=None,
                 length_penalty=0.0, batch_size=64):
        """Captions for `images`.

        Args:
            images: `(n, height, width, channels)` raw pixels 0..255.
            method: `"greedy"` or `"beam"`.
            beam_width: hypotheses per image for beam search.
            max_length: most tokens per caption (end token included); the
                model's `sequence_length` by default.
            length_penalty: length normalisation exponent for beam search.
            batch_size: images per compiled call; the last batch is padded to
                it, so the loop compiles once.

        Returns:
            A `Captions`.
        """
        fn = self.function(method, beam_width, max_length, length_penalty)
        images = np.asarray(images, np.float32)
        expected = tuple(self.model.input["image"].shape[1:])
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"`images` must have shape (n, {', '.join(map(str, expected))}). "
                             f"Received: images with shape {images.shape}")
        batch_size = check_batch_size(batch_size)
        parts = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            real = len(chunk)
            if real < batch_size and len(images) > batch_size:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - real, 0)])
            parts.append([np.asarray(x)[:real] for x in fn(tf.constant(chunk))])
        if parts:
            tokens, lengths, scores = (np.concatenate(p) for p in zip(*parts))
        else:
            tokens = np.zeros((0, self._check(method, beam_width, max_length,
                                              length_penalty)[2]), np.int32)
            lengths, scores = np.zeros(0, np.int32), np.zeros(0, np.float32)
        return Captions(tokens, lengths, scores, self.texts(tokens))

    def texts(self, tokens):
        """The strings of token ids (words joined by spaces), or `None` without a vocabulary."""
        if self.vocabulary is None:
            return None
        return [" ".join(self.vocabulary[i] for i in row if i != PAD)
                for row in np.asarray(tokens).tolist()]

    def _check(self, method, beam_width, max_length, length_penalty):
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {', '.join(map(repr, METHODS))}. "
                             f"Received: method={method!r}")
        max_length = _check_max_length(self.model, max_length)
        if method == "greedy":
            return method, 1, max_length, 0.0
        if not (isinstance(beam_width, (int, np.integer)) and not isinstance(beam_width, bool)
                and beam_width >= 1):
            raise ValueError(f"`beam_width` must be a positive integer. "
                             f"Received: beam_width={beam_width!r}")
        if not (isinstance(length_penalty, (int, float, np.floating, np.integer))
                and not isinstance(length_penalty, bool) and np.isfinite(length_penalty)
                and length_penalty >= 0):
            raise ValueError(f"`length_penalty` must be a finite number >= 0. "
                             f"Received: length_penalty={length_penalty!r}")
        return method, int(beam_width), max_length, float(length_penalty)


_GENERATORS = weakref.WeakKeyDictionary()


def generate(model, images, tokenizer=None, **kwargs):
    """Captions for `images`; the compiled searches are cached per model.

    Args:
        model: a `CaptioningModel`.
        images: `(n, height, width, channels)` raw pixels 0..255.
        tokenizer: an `mmzoo.data.Tokenizer` for the strings, or `None`.
        **kwargs: `method`, `beam_width`, `max_length`, `length_penalty`,
            `batch_size` (see `CaptionGenerator.__call__`).

    Returns:
        A `Captions`.
    """
    generator = _GENERATORS.get(model)
    vocabulary = None if tokenizer is None else tokenizer.vocabulary
    if generator is None or generator.vocabulary != vocabulary:
        generator = _GENERATORS[model] = CaptionGenerator(model, tokenizer)
    return generator(images, **kwargs)
