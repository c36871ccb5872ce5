"""Fusions whose modality weights depend on the example: attention and gates."""

import keras
from keras import ops

from mmzoo.fusion.base import EPSILON, FusionLayer, binary_mask, mask_columns, zero_missing
from mmzoo.registry import FUSIONS
from mmzoo.validators import positive_int


@keras.saving.register_keras_serializable(package="mmzoo")
class AttentionFusion(FusionLayer):
    """Softmax attention over the projected modalities, per example.

    `z_i = W_i x_i + b_i`, score `s_i = v . tanh(A z_i + c)` (A, c, v shared by
    all modalities), weights `a = softmax(s)` over modalities, `F = sum a_i z_i`.
    A missing modality gets weight exactly 0 and the others are renormalised;
    with every modality missing all weights (and the output) are 0.

    Args:
        fusion_dim: size of the common embedding space (and of the scorer).
        modalities: names of the inputs, in order.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: list of `(batch, size_i)` tensors.
        modality_mask: optional `(batch, len(inputs))` mask, 1.0 = present.
        return_weights: also return the `(batch, len(inputs))` weights.

    Example:
    >>> layer = AttentionFusion(32)
    >>> fused, weights = layer([img, txt], return_weights=True)
    """

    def __init__(self, fusion_dim=64, modalities=None, **kwargs):
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)

    def build(self, inputs_shape, modality_mask_shape=None):
        super().build(inputs_shape, modality_mask_shape)
        shape = (None, self.fusion_dim)
        self.score_hidden = keras.layers.Dense(
            self.fusion_dim, activation="tanh", name="score_hidden", dtype=self.dtype_policy
        )
        self.score_hidden.build(shape)
        self.score = keras.layers.Dense(1, use_bias=False, name="score", dtype=self.dtype_policy)
        self.score.build(shape)

    def call(self, inputs, modality_mask=None, return_weights=False):
        z = self.project(inputs)
        if modality_mask is not None:
            cols = mask_columns(modality_mask, len(z), z[0].dtype)
            z = [zero_missing(zi, m) for zi, m in zip(z, cols)]
        stacked = ops.stack(z, axis=1)  # (batch, n, d)
        scores = ops.squeeze(self.score(self.score_hidden(stacked)), axis=-1)  # (batch, n)
        if modality_mask is None:
            weights = ops.softmax(scores, axis=-1)
        else:
            mask = binary_mask(modality_mask, scores.dtype)
            # A large negative logit, not -inf: an all-missing row stays finite.
            scores = ops.where(mask > 0, scores, ops.full_like(scores, -1e9))
            weights = ops.softmax(scores, axis=-1) * mask
            weights = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), EPSILON)
        fused = ops.sum(stacked * weights[..., None], axis=1)
        if return_weights:
            return fused, weights
        return fused


@keras.saving.register_keras_serializable(package="mmzoo")
class GatedFusion(FusionLayer):
    """Learned gates per modality (a gated multimodal unit, GMU-style).

    `h_i = tanh(z_i)`, gate `g_i = sigmoid(G_i [z_1, ..., z_n] + b_i)` (one gate
    vector per modality, computed from all modalities), `F = sum g_i * h_i`.
    A missing modality's projection is zeroed before the gates see it, and its
    gate is 0, so it adds nothing.

    Args:
        fusion_dim: size of the common embedding space (and of each gate).
        modalities: names of the inputs, in order.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: list of `(batch, size_i)` tensors.
        modality_mask: optional `(batch, len(inputs))` mask, 1.0 = present.
        return_weights: also return the gates, `(batch, len(inputs), fusion_dim)`.
    """

    def __init__(self, fusion_dim=64, modalities=None, **kwargs):
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)

    def build(self, inputs_shape, modality_mask_shape=None):
        super().build(inputs_shape, modality_mask_shape)
        count = len(self.projections)
        self.gates = []
        for i in range(count):
            gate = keras.layers.Dense(
                self.fusion_dim,
                activation="sigmoid",
                name=f"gate_{self.modality_name(i)}",
                dtype=self.dtype_policy,
            )
            gate.build((None, self.fusion_dim * count))
            self.gates.append(gate)

    def call(self, inputs, modality_mask=None, return_weights=False):
        z = self.project(inputs)
        cols = None
        if modality_mask is not None:
            cols = mask_columns(modality_mask, len(z), z[0].dtype)
            z = [zero_missing(zi, m) for zi, m in zip(z, cols)]
        joint = ops.concatenate(z, axis=-1)
        gates = [gate(joint) for gate in self.gates]
        if cols is not None:
            gates = [g * m for g, m in zip(gates, cols)]
        fused = sum(g * ops.tanh(zi) for g, zi in zip(gates, z))
        if return_weights:
            return fused, ops.stack(gates, axis=1)
        return fused


@FUSIONS.register("attention", validators={"fusion_dim": positive_int})
def attention_fusion(features, modality_mask=None, *, fusion_dim=64, name="fusion_attention"):
    """Softmax attention over the modality embeddings, weights per example.

    Inspect the weights with `mmzoo.fusion.modality_weights(model, inputs)`.

    Args:
        features: `{modality: (batch, size) tensor}`.
        modality_mask: optional mask; a missing modality gets weight 0.
        fusion_dim: size of the common embedding space.
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)`.
    """
    layer = AttentionFusion(fusion_dim, modalities=tuple(features), name=name)
    return layer(list(features.values()), modality_mask=modality_mask)


@FUSIONS.register("gated", validators={"fusion_dim": positive_int})
def gated_fusion(features, modality_mask=None, *, fusion_dim=64, name="fusion_gated"):
    """Learned sigmoid gates per modality over tanh of the projections.

    Args:
        features: `{modality: (batch, size) tensor}`.
        modality_mask: optional mask; a missing modality's gate is 0.
        fusion_dim: size of the common embedding space.
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)`.
    """
    layer = GatedFusion(fusion_dim, modalities=tuple(features), name=name)
    return layer(list(features.values()), modality_mask=modality_mask)
