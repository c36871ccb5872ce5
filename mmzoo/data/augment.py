"""Word dropout: a training-time augmentation of token ids.

Each word of a batch of token ids is replaced, with probability `rate`, by
the out-of-vocabulary id, so a model cannot lean on one word when the
sentence says the same thing twice. In mmzoo-shapes every shape question ends
in "object" ("what shape is the red object?") and no colour question does;
`shapes_vqa`'s GRU, trained without word dropout, reads the question type from
that last word alone and answers "what shape is the red thing?" at chance
(0.037). The same recipe at `word_dropout = 0.15` answers it at 0.998, as
well as the question asked with "object". Each dropped word can make a
training question unanswerable, so long questions pay most: that run lost 12
points on the relational questions.

Replacing by the unknown word (rather than deleting the word) keeps every
other word in its place, as in Kiperwasser & Goldberg (2016, "Simple and
accurate dependency parsing using bidirectional LSTM feature
representations"); Iyyer et al. (2015, "Deep unordered composition rivals
syntactic methods for text classification") drop words from an average;
Bowman et al. (2016, "Generating sentences from a continuous space") from a
decoder's input.

Example:

```python
import tensorflow as tf
from mmzoo.data.augment import word_dropout

ids = tf.constant([[4, 9, 12, 3, 0, 0]])               # words, then <end> and padding
word_dropout(ids, 0.5, seed=tf.constant([0, 7]))       # e.g. [[4, 1, 12, 3, 0, 0]]
```
"""

from mmzoo.data.tokenizer import END, OOV


def word_dropout(ids, rate, seed):
    """Replaces each word id by the out-of-vocabulary id with probability `rate`.

    Padding, `<start>`, `<end>` and unknown words are kept. The draw is
    stateless: the same `seed` gives the same words dropped, so a resumed
    training run replays its batches exactly.

    Args:
        ids: integer tensor of token ids from `mmzoo.data.Tokenizer`, any
            shape (usually `(batch, sequence_length)`).
        rate: probability in `[0, 1)` of dropping each word.
        seed: shape `(2,)` integer tensor, the stateless random seed
            (`tf.random.stateless_uniform`).

    Returns:
        A tensor of `ids`'s shape and dtype.

    Raises:
        ValueError: `rate` is not in `[0, 1)`.
    """
    import tensorflow as tf

    if not 0 <= rate < 1:
        raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate!r}")
    if rate == 0:
        return ids
    ids = tf.convert_to_tensor(ids)
    dropped = tf.random.stateless_uniform(tf.shape(ids), seed=seed) < rate
    return tf.where(dropped & (ids > END), tf.constant(OOV, ids.dtype), ids)
