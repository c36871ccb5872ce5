"""Word dropout and frequent-word subsampling: training-time augmentations of token ids.

Each word of a batch of token ids is replaced, with probability `rate`, by
the out-of-vocabulary id, so a model cannot lean on one word when the
sentence says the same thing twice. In mmzoo-shapes every shape question ends
in "object" ("what shape is the red object?") and no colour question does;
`shapes_vqa`'s GRU, trained without word dropout, read the question type from
that last word alone and answered "what shape is the red thing?" at chance
(0.037). The same recipe at `word_dropout = 0.15` answered it at 0.998, as
well as the question asked with "object". Each dropped word can make a
training question unanswerable, so long questions pay most: that run lost 12
points on the relational questions. The shipped recipe drops 5% of the words
and subsamples the frequent ones from epoch 16 (`word_dropout_from_epoch`),
after 15 epochs of whole questions have taught it the relations: 1.000 with
"thing", relational 0.984.

Replacing by the unknown word (rather than deleting the word) keeps every
other word in its place, as in Kiperwasser & Goldberg (2016, "Simple and
accurate dependency parsing using bidirectional LSTM feature
representations"); Iyyer et al. (2015, "Deep unordered composition rivals
syntactic methods for text classification") drop words from an average;
Bowman et al. (2016, "Generating sentences from a continuous space") from a
decoder's input.

Subsampling of frequent words (Mikolov et al. 2013, "Distributed
representations of words and phrases and their compositionality", section
2.3) drops each occurrence of word `w` with probability
`1 - sqrt(t / f(w))`, where `f(w)` is the word's share of the training
text's words and `t` a threshold: words more frequent than `t` are dropped
the more often the more frequent they are, the others never. `word2vec`
uses it so frequent words stop dominating; here it is a per-word dropout
rate (`subsampling_rates`) that falls on "the", "is" and "what" and spares
the rarer words that name things, so a model cannot answer from the
question's frame alone.

Example:

```python
import tensorflow as tf
from mmzoo.data.augment import subsampling_rates, word_dropout

ids = tf.constant([[4, 9, 12, 3, 0, 0]])               # words, then <end> and padding
word_dropout(ids, 0.5, seed=tf.constant([0, 7]))       # e.g. [[4, 1, 12, 3, 0, 0]]
rates = subsampling_rates(ids, threshold=0.3, vocab_size=16)  # one rate per id
word_dropout(ids, rates, seed=tf.constant([0, 7]))
```
"""

import numpy as np

from mmzoo.data.tokenizer import END, OOV


def word_dropout(ids, rate, seed):
    """Replaces each word id by the out-of-vocabulary id with probability `rate`.

    Padding, `<start>`, `<end>` and unknown words are kept. The draw is
    stateless: the same `seed` gives the same words dropped, so a resumed
    training run replays its batches exactly.

    Args:
        ids: integer tensor of token ids from `mmzoo.data.Tokenizer`, any
            shape (usually `(batch, sequence_length)`).
        rate: probability in `[0, 1)` of dropping each word, or one such
            probability per id: a 1-D array of shape `(vocab_size,)`
            (e.g. `dropout_rates(...)`); every id must index it.
        seed: shape `(2,)` integer tensor, the stateless random seed
            (`tf.random.stateless_uniform`).

    Returns:
        A tensor of `ids`'s shape and dtype.

    Raises:
        ValueError: a rate is not in `[0, 1)`, or `rate` is neither a number
            nor 1-D.
    """
    import tensorflow as tf

    rates = np.asarray(rate, dtype=np.float64)
    if rates.ndim > 1 or not ((rates >= 0) & (rates < 1)).all():
        shown = repr(rate) if rates.ndim == 0 else f"an array of shape {rates.shape}"
        raise ValueError("`rate` must be in [0, 1), a number or one per id (1-D). "
                         f"Received: rate={shown}")
    if not rates.any():
        return ids
    ids = tf.convert_to_tensor(ids)
    if rates.ndim == 1:
        rate = tf.gather(tf.constant(rates, tf.float32), tf.cast(ids, tf.int32))
    dropped = tf.random.stateless_uniform(tf.shape(ids), seed=seed) < rate
    return tf.where(dropped & (ids > END), tf.constant(OOV, ids.dtype), ids)


def subsampling_rates(ids, threshold, vocab_size):
    """Per-id drop probabilities of frequent-word subsampling (Mikolov et al. 2013).

    Word `w`, a share `f(w)` of the words in `ids`, is dropped with
    probability `max(0, 1 - sqrt(threshold / f(w)))`. Special ids (padding,
    `<oov>`, `<start>`, `<end>`) and words absent from `ids` get 0.

    Args:
        ids: integer array of token ids, any shape: a sample of the
            training text, from which the frequencies are counted.
        threshold: `t` in `(0, 1)`: words with a share above it are
            dropped (a share of `4 t` is dropped half the time).
        vocab_size: the tokenizer's size; every id must be below it.

    Returns:
        A float64 array of shape `(vocab_size,)`, each in `[0, 1)`.

    Raises:
        ValueError: `threshold` not in `(0, 1)`, an id outside
            `[0, vocab_size)`, or no word in `ids`.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"`threshold` must be in (0, 1). Received: threshold={threshold!r}")
    ids = np.asarray(ids).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"Every id must be in [0, vocab_size={vocab_size}). Received: ids in "
                         f"[{ids.min()}, {ids.max()}]")
    counts = np.bincount(ids[ids > END], minlength=vocab_size).astype(np.float64)
    if not counts.sum():
        raise ValueError("`ids` holds no word to count (only padding and special ids).")
    share = counts / counts.sum()
    with np.errstate(divide="ignore"):
        return np.where(share > threshold, 1 - np.sqrt(threshold / share), 0.0)


def dropout_rates(rate=0.0, subsampling=0.0, ids=None, vocab_size=None):
    """The per-id drop probability of word dropout and subsampling together.

    A word survives both: `1 - (1 - rate) * (1 - subsampling_rates(...))`.

    Args:
        rate: word dropout's probability, the same for every word.
        subsampling: the subsampling threshold `t`; 0 turns it off.
        ids, vocab_size: the training-text sample and the tokenizer's size
            (`subsampling_rates`); needed when `subsampling` is set.

    Returns:
        `rate` itself (a float) when `subsampling` is 0, else a float64
        array of shape `(vocab_size,)`.
    """
    if not subsampling:
        return float(rate)
    return 1 - (1 - rate) * (1 - subsampling_rates(ids, subsampling, vocab_size))
