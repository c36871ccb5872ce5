"""Feature-level ("early") fusion: concatenate the modality features."""

import keras

from mmzoo.fusion.masking import MaskModalities
from mmzoo.registry import FUSIONS


@FUSIONS.register("concat")
def concat_fusion(features, modality_mask=None, *, name="fusion_concat"):
    """Concatenates the modality features along the last axis (the seeds' early fusion).

    No projection: the sizes may differ. A missing modality's features are
    replaced by zeros (a `MaskModalities` layer named `<name>_mask` runs
    first when a mask is given).

    Args:
        features: `{modality: tensor}`, in modality order (image, text, audio).
        modality_mask: optional `(batch, num_modalities)` mask, 1.0 = present.
        name: the fusion layer's name.

    Returns:
        The fused tensor, `(batch, sum of feature sizes)`.

    Example:
    >>> fused = concat_fusion({"image": image_feats, "text": text_feats})
    """
    for modality, tensor in features.items():
        if len(tensor.shape) != 2:
            raise ValueError(
                f"fusion='concat' joins feature vectors, but the {modality} features have "
                f"shape {tuple(tensor.shape)}: use pooling='flatten', 'avg' or 'max' "
                "(pooling=None keeps the feature map, for fusion='film'). "
                f"Received: {modality} features of rank {len(tensor.shape)}"
            )
    x = list(features.values())
    if modality_mask is not None:
        x = MaskModalities(name=f"{name}_mask")(x, modality_mask=modality_mask)
    return keras.layers.Concatenate(name=name)(x)
