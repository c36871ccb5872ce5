"""The `mmzoo_shapes` TFDS dataset (registered with TFDS on import)."""

from mmzoo.data.mmzoo_shapes.mmzoo_shapes import MmzooShapes, MmzooShapesConfig, shapes_config

__all__ = ["MmzooShapes", "MmzooShapesConfig", "shapes_config"]
