"""Feature-level ("early") fusion: concatenate the modality features."""

import keras

from mmzoo.registry import FUSIONS


@FUSIONS.register("concat")
def concat_fusion(features, *, name="fusion_concat"):
    """Concatenates the modality features along the last axis.

    Args:
        features: `{modality: tensor}`, in modality order (image, text, audio).
        name: the fusion layer's name.

    Returns:
        The fused tensor, `(batch, sum of feature sizes)`.
    """
    return keras.layers.Concatenate(name=name)(list(features.values()))
