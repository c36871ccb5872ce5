"""Missing modalities: zeroing absent features and modality dropout.

A model built with `modality_mask=True` takes an extra input, `"modality_mask"`:
a float `(batch, num_modalities)` tensor, one column per modality in model
order (image, text), 1.0 where the modality is present and 0.0 where it is
missing (every fusion reads a value > 0 as present, see
`mmzoo.fusion.base.binary_mask`). What a missing modality does is documented by each fusion; the
features of a missing modality never reach the output, whatever they contain
(zeros, a blank image, padding).
"""

import keras
from keras import ops

from mmzoo.fusion.base import binary_mask, mask_columns, zero_missing


@keras.saving.register_keras_serializable(package="mmzoo")
class MaskModalities(keras.layers.Layer):
    """Replaces the features of a missing modality with zeros.

    Args:
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a list of tensors, one per modality (any rank, batch first).
        modality_mask: `(batch, len(inputs))`, 1.0 present / 0.0 missing, or
            `None` (the inputs pass unchanged).

    Returns:
        The list of tensors, each multiplied by its mask column.

    Example:
    >>> x = MaskModalities()([image_feats, text_feats], modality_mask=mask)
    """

    def call(self, inputs, modality_mask=None):
        inputs = list(inputs)
        if modality_mask is None:
            return inputs
        cols = mask_columns(modality_mask, len(inputs), inputs[0].dtype)
        out = []
        for x, m in zip(inputs, cols):
            m = ops.reshape(m, (-1,) + (1,) * (len(x.shape) - 1))
            out.append(zero_missing(x, m))
        return out


@keras.saving.register_keras_serializable(package="mmzoo")
class ModalityDropout(keras.layers.Layer):
    """Drops whole modalities at random during training (returns the new mask).

    In training, each present modality of each example is marked missing with
    probability `rate`; when that would leave an example with no modality at
    all, its mask is left as it was. At inference the mask passes unchanged
    (all ones when no mask is given), so a model trained with modality dropout
    predicts exactly like one without it.

    Args:
        rate: probability of dropping a modality, in [0, 1).
        seed: optional seed for the random draws.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: the list of modality features (only their count and batch
            size are used).
        modality_mask: `(batch, len(inputs))` or `None` (all present).
        training: whether the model is training.

    Returns:
        The float mask `(batch, len(inputs))` the fusion should use.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not (0 <= rate < 1):
            raise ValueError(
                f"`modality_dropout` must be a number in [0, 1). Received: modality_dropout={rate!r}"
            )
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, modality_mask=None, training=None):
        inputs = list(inputs)
        if modality_mask is None:
            batch = ops.shape(inputs[0])[0]
            mask = ops.ones((batch, len(inputs)), dtype=self.compute_dtype)
        else:
            mask = binary_mask(modality_mask, self.compute_dtype)
        if not training or self.rate == 0:
            return mask
        keep = ops.cast(
            keras.random.uniform(ops.shape(mask), seed=self.seed_generator) >= self.rate,
            self.compute_dtype,
        )
        dropped = mask * keep
        empty = ops.sum(dropped, axis=-1, keepdims=True) <= 0
        return ops.where(empty, mask, dropped)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
