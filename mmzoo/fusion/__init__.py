"""Fusion strategies: how modality features are combined.

One module per family; each registers itself in `FUSIONS` under the name that
`build_model(fusion=...)` takes:

| name | family | options |
|---|---|---|
| `"concat"` | early / feature level: concatenate | - |
| `"sum"` | parallel: `z_1 + z_2` | `fusion_dim` |
| `"product"` | serial: `z_1 * z_2` | `fusion_dim` |
| `"weighted"` | `a z_1 + b z_2`, fixed or learned, normalised | `fusion_dim`, `fusion_weights` |
| `"late"` | decision level: one head per modality, averaged (or product rule) | `fusion_weights`, `decision_rule` |
| `"hybrid"` | early head + per-modality heads, averaged (or product rule) | `fusion_weights`, `decision_rule` |
| `"layer"` | layer level: stacks meet at a given depth | `fusion_dim`, `fusion_depth`, `fusion_layers` |
| `"attention"` | softmax weights over modalities, per example | `fusion_dim` |
| `"gated"` | learned sigmoid gates per modality | `fusion_dim` |
| `"bilinear"` | low-rank bilinear pooling (MFB) | `fusion_dim`, `bilinear_factors` |
| `"film"` | text scales and shifts the image feature map, at one or several depths; pooled, or read out by a relation network | `fusion_dim`, `pooling`, `film_blocks`, `coord_channels`, `film_output_dim`, `film_readout`, `relation_layers` |
| `"relation"` | relation network over pairs of image cells and the text | `fusion_dim`, `relation_layers` |
| `"cross_attention"` | image cells and text tokens attend to each other (co-attention), then max over each | `fusion_dim`, `attention_layers`, `attention_heads` |

`z_i = W_i x_i + b_i` is each modality projected into the common embedding
space of size `fusion_dim`. Every fusion takes an optional per-example
`modality_mask` (see `mmzoo.fusion.masking`) and documents what a missing
modality does.

Adding a fusion is one registration, which declares the validators of its
options (`mmzoo.validators`):

```python
from mmzoo.validators import positive_int

@FUSIONS.register("max", validators={"fusion_dim": positive_int})
def max_fusion(features, modality_mask=None, *, fusion_dim=64, name="fusion_max"):
    layer = MyMaxFusion(fusion_dim, name=name)  # a serializable keras Layer
    return layer(list(features.values()), modality_mask=modality_mask)
```

`features` is `{modality: tensor}` in model order; keyword-only parameters
are `build_model` options, checked before any layer is built by the
validators declared for them. An option shared with other components
(`fusion_dim`, `pooling`, ...) must use the validator they declare (the
registry refuses another); one left undeclared takes that shared validator,
or else one inferred from its default's type. Registration info:
`decision_level=True` (the builder gets `head=` and returns the prediction,
see `mmzoo.fusion.decision`) and `feature_maps=("image",)` (that branch is
built with `pooling=None`, see `mmzoo.fusion.film`) and `sequences=("text",)`
(that branch gives one vector per step where it can, see
`mmzoo.fusion.cross_attention`).
"""

from mmzoo.fusion.arithmetic import (
    ProductFusion,
    SumFusion,
    WeightedFusion,
    product_fusion,
    sum_fusion,
    weighted_fusion,
)
from mmzoo.fusion.attention import AttentionFusion, GatedFusion, attention_fusion, gated_fusion
from mmzoo.fusion.base import FusionLayer
from mmzoo.fusion.bilinear import BilinearFusion, bilinear_fusion
from mmzoo.fusion.concat import concat_fusion
from mmzoo.fusion.cross_attention import CrossAttentionFusion, cross_attention_fusion
from mmzoo.fusion.decision import ProductRuleFusion, VoteFusion, hybrid_fusion, late_fusion
from mmzoo.fusion.film import FiLMFusion, film_fusion
from mmzoo.fusion.inspection import modality_weights
from mmzoo.fusion.layer_level import LayerFusion, layer_fusion
from mmzoo.fusion.masking import MaskModalities, ModalityDropout
from mmzoo.fusion.relation import RelationFusion, relation_fusion
from mmzoo.registry import FUSIONS

__all__ = [
    "FUSIONS",
    "FusionLayer",
    "SumFusion",
    "ProductFusion",
    "WeightedFusion",
    "ProductRuleFusion",
    "AttentionFusion",
    "GatedFusion",
    "BilinearFusion",
    "FiLMFusion",
    "LayerFusion",
    "RelationFusion",
    "CrossAttentionFusion",
    "VoteFusion",
    "MaskModalities",
    "ModalityDropout",
    "concat_fusion",
    "sum_fusion",
    "product_fusion",
    "weighted_fusion",
    "late_fusion",
    "hybrid_fusion",
    "layer_fusion",
    "attention_fusion",
    "gated_fusion",
    "bilinear_fusion",
    "film_fusion",
    "relation_fusion",
    "cross_attention_fusion",
    "modality_weights",
]
