"""Model assembly: options, `MultimodalModel` and `build_model`."""

from mmzoo.tasks.build import build_model, compile_model
from mmzoo.tasks.model import MultimodalModel

__all__ = ["build_model", "compile_model", "MultimodalModel"]
