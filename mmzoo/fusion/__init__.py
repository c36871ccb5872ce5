"""Fusion strategies: how modality features are combined.

One module per family; each registers itself in `FUSIONS` under the name that
`build_model(fusion=...)` takes.
"""

from mmzoo.fusion.concat import concat_fusion
from mmzoo.registry import FUSIONS

__all__ = ["FUSIONS", "concat_fusion"]
