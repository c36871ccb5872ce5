"""Cross-attention between image cells and text tokens (co-attention)."""

import keras
from keras import ops

from mmzoo.coordconv import coordinate_grid
from mmzoo.fusion.base import FusionLayer, _shape_list, map_first, mask_columns, zero_missing
from mmzoo.registry import FUSIONS
from mmzoo.validators import positive_int

# The filler of a masked token before the max over tokens: far below any feature.
_MASKED = -1e9


@keras.saving.register_keras_serializable(package="mmzoo")
class CrossAttentionFusion(FusionLayer):
    """Co-attention: image cells and text tokens attend to each other.

    The first input is an image feature map `(batch, h, w, c)`, whose `n = h
    * w` cells are tagged with their coordinates (row, column in [-1, 1]).
    The others are token features `(batch, t_i, u_i)`, one vector per step
    (a text branch's per-token states), or vectors `(batch, u_i)`, each then
    one token: they are concatenated into `t` tokens. Cells and tokens are
    projected to `fusion_dim`. Each of the `attention_layers` layers is a
    co-attention block (ViLBERT, Lu et al. 2019; LXMERT, Tan & Bansal 2019),
    pre-norm (Xiong et al. 2020):

        tokens += SelfAttn(tokens);  tokens += CrossAttn(tokens -> cells)
        cells  += SelfAttn(cells);   cells  += CrossAttn(cells -> tokens)
        tokens += FFN(tokens);       cells  += FFN(cells)

    with `attention_heads` heads of `fusion_dim / attention_heads` and an FFN
    of `2 * fusion_dim` ReLU units. The cross attentions of a layer read the
    other modality as it entered the layer. The output is
    `relu(W [max_tokens(LN tokens), max_cells(LN cells)] + b)`: the maximum
    over tokens lets one token that finds no match in the image decide, an
    "AND over phrases" that a single sentence vector (FiLM's condition)
    blurs; the maximum over cells does the same for an object the text
    leaves out.

    Padding tokens are left out of every attention and of the maximum when
    the token features carry a Keras mask (the `gru`/`lstm` branches' does);
    the `cnn` branch has none, so all its steps take part.

    A missing modality (`modality_mask` column 0) is zeroed before the
    projections: the cells then differ only by their coordinates, and a
    missing text's tokens are all alike.

    Cost per example and layer: about `2 (n + t)^2 * fusion_dim` for the
    attentions plus `12 (n + t) * fusion_dim^2` for the projections and
    FFNs: keep maps small (8x8 cells).

    Args:
        fusion_dim: width of every projection, attention and FFN output;
            divisible by `attention_heads`.
        attention_layers: co-attention blocks, >= 1.
        attention_heads: heads of every attention.
        modalities: names of the inputs, in order (the map first).
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[image_map (batch, h, w, c), tokens (batch, t_1, u_1) or
            (batch, u_1), ...]`.
        modality_mask: optional `(batch, len(inputs))` mask, 1.0 = present.
        mask: set by Keras from the token features' padding masks.
        return_map: also return the cells after the last block, as a map
            `(batch, h, w, fusion_dim)` (for Grad-CAM, `mmzoo.explain`).

    Output: `(batch, fusion_dim)`.

    Raises:
        ValueError: `fusion_dim` not divisible by `attention_heads`; an input
            of another rank; a map without a static height and width.

    Example:
    >>> fused = CrossAttentionFusion(64)([image_map, token_features])  # (batch, 64)
    """

    input_ranks = (4, 2)  # per input in `check_shapes`: 2 or 3 after the map

    def __init__(self, fusion_dim=64, attention_layers=2, attention_heads=4, modalities=None,
                 **kwargs):
        if fusion_dim is None:
            raise ValueError("CrossAttentionFusion needs `fusion_dim`: the width of its "
                             "attentions. Received: fusion_dim=None")
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)
        for key, value in (("attention_layers", attention_layers),
                           ("attention_heads", attention_heads)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"`{key}` must be a positive integer. Received: {key}={value!r}")
        if fusion_dim % attention_heads:
            raise ValueError(
                "`fusion_dim` must be divisible by `attention_heads` (each head has "
                f"fusion_dim / attention_heads units). Received: fusion_dim={fusion_dim}, "
                f"attention_heads={attention_heads}")
        self.attention_layers = attention_layers
        self.attention_heads = attention_heads
        self.supports_masking = True

    def _sub(self, layer, *shapes):
        layer.build(*shapes)
        return layer

    def check_shapes(self, inputs_shape, modality_mask_shape=None):
        shapes = _shape_list(inputs_shape)
        # Token features (rank 3) or a vector (rank 2, one token) after the map.
        self.input_ranks = (4, *(3 if len(shape) == 3 else 2 for shape in shapes[1:]))
        return super().check_shapes(inputs_shape, modality_mask_shape)

    def build(self, inputs_shape, modality_mask_shape=None):
        shapes = self.check_shapes(inputs_shape, modality_mask_shape)
        _, height, width, channels = shapes[0]
        if height is None or width is None:
            raise ValueError("CrossAttentionFusion needs a feature map with a static height "
                             f"and width. Received: {self.modality_name(0)} shape={shapes[0]}")
        d, policy = self.fusion_dim, self.dtype_policy
        seq = (None, None, d)

        def dense(units, name, size, activation=None):
            return self._sub(keras.layers.Dense(units, activation=activation, name=name,
                                                dtype=policy), (None, size))

        def attention(name):
            layer = keras.layers.MultiHeadAttention(
                self.attention_heads, d // self.attention_heads, name=name, dtype=policy)
            return self._sub(layer, seq, seq)

        def norm(name):
            return self._sub(keras.layers.LayerNormalization(name=name, dtype=policy), seq)

        self.project_cells = dense(d, "project_cells", channels + 2)
        self.project_tokens = [dense(d, f"project_{self.modality_name(i)}", shape[-1])
                               for i, shape in enumerate(shapes[1:], start=1)]
        self.blocks = []
        for i in range(1, self.attention_layers + 1):
            block = {}
            for side in ("tokens", "cells"):
                for part in ("self", "cross", "ffn"):
                    block[f"{side}_{part}_norm"] = norm(f"{side}_{part}_norm_{i}")
                block[f"{side}_self"] = attention(f"{side}_self_attention_{i}")
                block[f"{side}_cross"] = attention(f"{side}_cross_attention_{i}")
                block[f"{side}_ffn_1"] = dense(2 * d, f"{side}_ffn_{i}a", d, "relu")
                block[f"{side}_ffn_2"] = dense(d, f"{side}_ffn_{i}b", 2 * d)
            self.blocks.append(block)
        self.final_tokens_norm = norm("tokens_final_norm")
        self.final_cells_norm = norm("cells_final_norm")
        self.readout = dense(d, "readout", 2 * d, "relu")

    def call(self, inputs, modality_mask=None, mask=None, return_map=False):
        inputs = [ops.cast(x, self.compute_dtype) for x in inputs]
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(inputs)
        if modality_mask is not None:
            cols = mask_columns(modality_mask, len(inputs), self.compute_dtype)
            inputs = [zero_missing(x, ops.reshape(m, (-1,) + (1,) * (len(x.shape) - 1)))
                      for x, m in zip(inputs, cols)]
        fmap = inputs[0]
        _, height, width, channels = fmap.shape
        grid = coordinate_grid(height, width, self.compute_dtype)
        grid = ops.broadcast_to(grid[None], (ops.shape(fmap)[0], height, width, 2))
        cells = self.project_cells(ops.reshape(ops.concatenate([fmap, grid], axis=-1),
                                               (-1, height * width, channels + 2)))
        tokens, token_masks = [], []
        for x, m, project in zip(inputs[1:], masks[1:], self.project_tokens):
            x = project(x if len(x.shape) == 3 else x[:, None, :])
            tokens.append(x)
            token_masks.append(ops.ones(ops.shape(x)[:2], "bool") if m is None
                               else ops.cast(m, "bool"))
        tokens = tokens[0] if len(tokens) == 1 else ops.concatenate(tokens, axis=1)
        token_mask = (token_masks[0] if len(token_masks) == 1
                      else ops.concatenate(token_masks, axis=1))
        to_tokens = token_mask[:, None, :]  # (batch, 1, t): broadcast over the queries
        n = height * width
        to_tokens_from_cells = ops.broadcast_to(to_tokens, (ops.shape(tokens)[0], n,
                                                            ops.shape(tokens)[1]))
        to_tokens_from_tokens = ops.logical_and(to_tokens, token_mask[:, :, None])
        for block in self.blocks:
            t_in, c_in = tokens, cells
            x = block["tokens_self_norm"](tokens)
            tokens = tokens + block["tokens_self"](x, x, attention_mask=to_tokens_from_tokens)
            x = block["cells_self_norm"](cells)
            cells = cells + block["cells_self"](x, x)
            t_ctx, c_ctx = block["tokens_cross_norm"](t_in), block["cells_cross_norm"](c_in)
            tokens = tokens + block["tokens_cross"](block["tokens_cross_norm"](tokens), c_ctx)
            cells = cells + block["cells_cross"](block["cells_cross_norm"](cells), t_ctx,
                                                 attention_mask=to_tokens_from_cells)
            tokens = tokens + block["tokens_ffn_2"](
                block["tokens_ffn_1"](block["tokens_ffn_norm"](tokens)))
            cells = cells + block["cells_ffn_2"](
                block["cells_ffn_1"](block["cells_ffn_norm"](cells)))
        tokens, cells = self.final_tokens_norm(tokens), self.final_cells_norm(cells)
        filler = ops.full_like(tokens, _MASKED)
        token_max = ops.max(ops.where(token_mask[:, :, None], tokens, filler), axis=1)
        any_token = ops.any(token_mask, axis=1, keepdims=True)
        token_max = ops.where(any_token, token_max, ops.zeros_like(token_max))
        # The cells as a map: what the readout pools (and what Grad-CAM reads).
        cell_map = ops.reshape(cells, (-1, height, width, self.fusion_dim))
        out = self.readout(ops.concatenate([token_max, ops.max(cell_map, axis=(1, 2))], axis=-1))
        return (out, cell_map) if return_map else out

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, inputs_shape, modality_mask_shape=None):
        return (inputs_shape[0][0], self.fusion_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"attention_layers": self.attention_layers,
                       "attention_heads": self.attention_heads})
        return config


@FUSIONS.register("cross_attention", feature_maps=("image",), sequences=("text",), validators={
    "fusion_dim": positive_int, "attention_layers": positive_int,
    "attention_heads": positive_int})
def cross_attention_fusion(features, modality_mask=None, *, fusion_dim=64, attention_layers=2,
                           attention_heads=4, name="fusion_cross_attention"):
    """Co-attention between the image's cells and the text's tokens.

    `build_model` builds the image branch with `pooling=None` (the
    `feature_maps` registration info) and the text branch with one vector
    per token where it can (`sequences`: the `gru`, `lstm` and `cnn`
    branches; another text branch's vector, and any other modality's, is one
    token). See `CrossAttentionFusion`.

    Args:
        features: `{"image": (batch, h, w, c) map, "text": (batch, t, u),
            ...}`.
        modality_mask: optional mask (see `CrossAttentionFusion`).
        fusion_dim: width of the attentions; divisible by `attention_heads`.
        attention_layers: co-attention blocks.
        attention_heads: heads per attention.
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)`.

    Raises:
        ValueError: no image branch, or `fusion_dim` not divisible by
            `attention_heads`.
    """
    order = map_first(features, modality_mask, "cross_attention",
                      "attends between the image's cells and the text's tokens")
    layer = CrossAttentionFusion(fusion_dim, attention_layers=attention_layers,
                                 attention_heads=attention_heads, modalities=tuple(order),
                                 name=name)
    return layer([features[m] for m in order], modality_mask=modality_mask)
