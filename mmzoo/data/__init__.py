"""Data for mmzoo: the mmzoo-shapes benchmark, a tokenizer, tf.data pipelines
and loaders for users' own data. Knows nothing of models."""

from mmzoo.data import shapes
from mmzoo.data.mmzoo_shapes import MmzooShapes, MmzooShapesConfig, shapes_config
from mmzoo.data.tokenizer import Tokenizer

__all__ = ["shapes", "MmzooShapes", "MmzooShapesConfig", "shapes_config", "Tokenizer"]
