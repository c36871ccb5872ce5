"""Reading a fusion's modality weights out of a built model."""

import keras
import numpy as np

from mmzoo.fusion.arithmetic import WeightedFusion
from mmzoo.fusion.attention import AttentionFusion, GatedFusion


def _fusion_layer(model):
    for layer in model.layers:
        if isinstance(layer, (AttentionFusion, GatedFusion, WeightedFusion)):
            return layer
    raise ValueError(
        "`modality_weights` needs a model whose fusion weighs modalities: "
        "fusion='attention', 'gated', 'weighted', 'late' or 'hybrid'. "
        f"Received: a model with layers {[layer.name for layer in model.layers]}"
    )


def _mask_tensor(model):
    names = {layer.name for layer in model.layers}
    if "modality_dropout" in names:
        return model.get_layer("modality_dropout").output
    if "modality_mask" in names:
        return model.get_layer("modality_mask").output
    return None


def modality_weights(model, inputs=None):
    """Returns how much each modality counts in a model's fusion.

    Args:
        model: a model built with `fusion="attention"`, `"gated"`,
            `"weighted"`, `"late"` or `"hybrid"`.
        inputs: the model's input dict; needed for `"attention"` and
            `"gated"`, whose weights depend on the example.

    Returns:
        `{modality: weights}`: for attention, a `(batch,)` array of softmax
        weights (they sum to 1 over modalities); for gated, the `(batch,)`
        mean gate value; for weighted / late / hybrid, the float weight
        (normalised; hybrid's fused head is the key `"fused"`).

    Example:
    >>> model = mmzoo.build_model("classification", fusion="attention", ...)
    >>> w = mmzoo.fusion.modality_weights(model, {"image": x, "text": t})
    >>> w["image"][:3]  # per example
    """
    layer = _fusion_layer(model)
    names = layer.modalities or tuple(f"input_{i}" for i in range(len(layer.projections)))
    if isinstance(layer, WeightedFusion):
        weights = keras.ops.convert_to_numpy(layer.normalized_weights())
        return {name: float(w) for name, w in zip(names, weights)}
    if inputs is None:
        raise ValueError(
            f"{type(layer).__name__} weighs modalities per example: pass `inputs`. "
            "Received: inputs=None"
        )
    features = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    mask = _mask_tensor(model)
    outputs = list(features) + ([mask] if mask is not None else [])
    probe = keras.Model(model.inputs, outputs)
    values = probe.predict(inputs, verbose=0)
    feats = values[: len(features)]
    mask_value = values[len(features)] if mask is not None else None
    _, weights = layer(feats, modality_mask=mask_value, return_weights=True)
    weights = keras.ops.convert_to_numpy(weights)
    if weights.ndim == 3:  # gates: (batch, n, fusion_dim)
        weights = weights.mean(axis=-1)
    return {name: np.asarray(weights[:, i]) for i, name in enumerate(names)}
