"""Decision-level fusion: one head per modality, predictions combined by weights.

A decision-level fusion registers with `decision_level=True`; `build_model`
then hands it a `head` callable, `head(features, suffix)`, that builds the
model's hidden layers and task head on `features` (layer names end in
`_<suffix>`, e.g. `head_softmax_image`), and the fusion returns the final
prediction instead of fused features.

How the predictions combine is the `decision_rule`, after Kittler et al.'s
"On combining classifiers" (1998):

- `"mean"` (the sum rule, the seeds' averaging): `P = sum_i w_i P_i`. A
  confident head is diluted by an unsure one, so the combination is never
  sharper than its best member.
- `"product"` (the product rule): the normalised weighted geometric mean,
  `P = softmax(sum_i w_i log P_i)` (for a sigmoid, `sigmoid(sum_i w_i
  logit P_i)`). Each head can veto classes: an image head that knows which
  colours are in the scene and a text head that knows the question asks for a
  colour together pick a colour that is present, which neither does alone.
"""

import keras
from keras import ops

from mmzoo.fusion.arithmetic import WeightedFusion
from mmzoo.fusion.base import EPSILON, check_weights, fixed_weights
from mmzoo.fusion.concat import concat_fusion
from mmzoo.heads import OUTPUT_DTYPE
from mmzoo.registry import FUSIONS
from mmzoo.validators import choice


DECISION_RULES = ("mean", "product")
DECISION_RULE = choice(*DECISION_RULES)


@keras.saving.register_keras_serializable(package="mmzoo")
class ProductRuleFusion(WeightedFusion):
    """The weighted product rule: a normalised weighted geometric mean of predictions.

    Each input is one head's probabilities. `(batch, k)` softmax outputs give
    `softmax(sum_i w_i log P_i)`; `(batch, 1)` sigmoid outputs give
    `sigmoid(sum_i w_i logit P_i)`. The weights are normalised to sum to 1,
    learned or fixed, and renormalised over the present inputs under a mask,
    exactly as in `WeightedFusion(None, ...)` (of which this is the same
    average taken in log space). With weights `(1, 0)` the output is the
    first input (up to the clipping of probabilities at `1e-7`).

    Args:
        fusion_dim: must be `None` (predictions are combined as they are).
        input_weights: `None` (learned) or one non-negative number per input.
        always_present: the first `always_present` inputs have no mask column.
        modalities: names of the inputs, in order.
        **kwargs: base layer arguments.
    """

    def __init__(self, fusion_dim=None, **kwargs):
        if fusion_dim is not None:
            raise ValueError(
                "ProductRuleFusion combines predictions as they are: `fusion_dim` "
                f"must be None. Received: fusion_dim={fusion_dim!r}"
            )
        super().__init__(None, **kwargs)

    def call(self, inputs, modality_mask=None):
        inputs = list(inputs)
        sigmoid = inputs[0].shape[-1] == 1
        logs = []
        for p in inputs:
            p = ops.clip(p, EPSILON, 1.0 - EPSILON)
            logs.append(ops.log(p) - ops.log(1.0 - p) if sigmoid else ops.log(p))
        combined = super().call(logs, modality_mask=modality_mask)
        return ops.sigmoid(combined) if sigmoid else ops.softmax(combined, axis=-1)


def _combiner(decision_rule):
    DECISION_RULE("decision_rule", decision_rule)
    return ProductRuleFusion if decision_rule == "product" else WeightedFusion


def _need_head(head, fusion):
    if head is None:
        raise ValueError(
            f"fusion={fusion!r} is decision-level: it needs `head`, a callable "
            "`head(features, suffix) -> prediction` (build_model passes one). "
            "Received: head=None"
        )


@FUSIONS.register("late", decision_level=True, validators={
    "fusion_weights": fixed_weights, "decision_rule": DECISION_RULE})
def late_fusion(
    features, modality_mask=None, head=None, *, fusion_weights=None, decision_rule="mean",
    name="fusion_late",
):
    """Late (decision-level) fusion: a head per modality, predictions combined.

    `P = sum w_i P_i` (`decision_rule="mean"`) or the normalised weighted
    geometric mean (`"product"`, see the module docstring), with the weights
    normalised to sum to 1: fixed by `fusion_weights` or learned.
    `fusion_weights=(1, 0)` gives the image head's prediction. With a mask,
    the weights are renormalised over the present modalities, so a missing
    modality's head is ignored.

    Args:
        features: `{modality: (batch, size) tensor}`.
        modality_mask: optional `(batch, num_modalities)` mask, 1.0 = present.
        head: `head(features, suffix) -> prediction`, from `build_model`.
        fusion_weights: `None` (learned) or one non-negative weight per modality.
        decision_rule: `"mean"` (weighted average of the predictions) or
            `"product"` (weighted geometric mean, renormalised).
        name: the name of the layer that combines the predictions.

    Returns:
        The combined prediction (same shape as one head's).
    """
    _need_head(head, "late")
    combiner = _combiner(decision_rule)
    weights = check_weights(fusion_weights, len(features))
    predictions = [head(x, modality) for modality, x in features.items()]
    # The combination is the model's output: float32 like the heads (mixed precision).
    layer = combiner(None, input_weights=weights, modalities=tuple(features), name=name,
                     dtype=OUTPUT_DTYPE)
    return layer(predictions, modality_mask=modality_mask)


@FUSIONS.register("hybrid", decision_level=True, validators={
    "fusion_weights": fixed_weights, "decision_rule": DECISION_RULE})
def hybrid_fusion(
    features, modality_mask=None, head=None, *, fusion_weights=None, decision_rule="mean",
    name="fusion_hybrid",
):
    """Hybrid fusion: an early-fusion head and one head per modality, averaged.

    The early part concatenates the features (`<name>_concat`) and has its own
    head (`head_<kind>_fused`); each modality has its head too; the final
    prediction is `w_0 P_fused + sum w_i P_i` (or their weighted geometric
    mean, `decision_rule="product"`). With a mask, missing features
    are zeroed in the early part and the missing modalities' heads are left
    out of the average (the fused head is always kept).

    Args:
        features: `{modality: (batch, size) tensor}`.
        modality_mask: optional `(batch, num_modalities)` mask, 1.0 = present.
        head: `head(features, suffix) -> prediction`, from `build_model`.
        fusion_weights: `None` (learned) or `1 + num_modalities` non-negative
            weights: the fused head first, then each modality's.
        decision_rule: `"mean"` or `"product"`, as for `"late"`.
        name: the name of the layer that combines the predictions.

    Returns:
        The combined prediction.
    """
    _need_head(head, "hybrid")
    combiner = _combiner(decision_rule)
    weights = check_weights(
        fusion_weights, len(features) + 1, what="prediction (the fused head first, then each modality)"
    )
    early = concat_fusion(features, modality_mask, name=f"{name}_concat")
    predictions = [head(early, "fused")] + [head(x, m) for m, x in features.items()]
    layer = combiner(
        None,
        input_weights=weights,
        always_present=1,
        modalities=("fused",) + tuple(features),
        name=name,
        dtype=OUTPUT_DTYPE,
    )
    return layer(predictions, modality_mask=modality_mask)


@keras.saving.register_keras_serializable(package="mmzoo")
class VoteFusion(keras.layers.Layer):
    """Weighted hard votes of several classifiers (the SAMME combination).

    Each input is one classifier's probabilities: `(batch, k)` softmax outputs
    vote for their argmax, `(batch, 1)` sigmoid outputs vote 1 from 0.5 up.
    The output is each class's share of the weighted vote, `sum_t a_t
    onehot_t / sum_t a_t`: rows sum to 1 (the `(batch, 1)` case gives the
    share voting 1), so the argmax is the ensemble's class.

    Args:
        input_weights: one non-negative weight per input (e.g. SAMME's alphas).
        **kwargs: base layer arguments.
    """

    def __init__(self, input_weights, **kwargs):
        # An ensemble's output: float32 under mixed precision, like the heads.
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = OUTPUT_DTYPE
        super().__init__(**kwargs)
        self.input_weights = check_weights(input_weights, len(tuple(input_weights)), "input_weights", "input")

    def call(self, inputs):
        inputs = list(inputs)
        if len(inputs) != len(self.input_weights):
            raise ValueError(
                f"VoteFusion has {len(self.input_weights)} weights but was called on "
                f"{len(inputs)} inputs."
            )
        out = 0.0
        for w, p in zip(self.input_weights, inputs):
            if p.shape[-1] == 1:
                # At 0.5 a yes, as the binary task decides (`Task.decide`).
                vote = ops.cast(p >= 0.5, self.compute_dtype)
            else:
                vote = ops.one_hot(ops.argmax(p, axis=-1), p.shape[-1], dtype=self.compute_dtype)
            out = out + w * vote
        return out

    def get_config(self):
        config = super().get_config()
        config["input_weights"] = self.input_weights
        return config
