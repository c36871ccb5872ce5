"""Data for mmzoo: the mmzoo-shapes benchmark, a tokenizer, tf.data pipelines
and loaders for users' own data. Knows nothing of models.

Importing this package registers the `mmzoo_shapes` TFDS dataset.

Example:

```python
import mmzoo
x, y, info = mmzoo.data.shapes_arrays("classification", 256, image_size=32)  # the VQA problem
train = mmzoo.data.shapes_dataset("binary", "train", image_size=64)
tok = mmzoo.data.Tokenizer.from_texts(my_texts, sequence_length=20)
ds = mmzoo.data.image_folder_dataset("labels.csv", task="classification")
```
"""

from mmzoo.data import problems, shapes
from mmzoo.data.loaders import coco_captions_dataset, flickr8k_dataset, image_folder_dataset
from mmzoo.data.mmzoo_shapes import MmzooShapes, MmzooShapesConfig, shapes_config
from mmzoo.data.pipeline import (
    TASKS,
    TaskInfo,
    prepare_examples,
    shapes_arrays,
    shapes_dataset,
    shapes_tokenizer,
)
from mmzoo.data.preprocessor import Preprocessor
from mmzoo.data.shapes import ANSWERS, ATTRIBUTES, QUESTION_TYPES, generate_scenes
from mmzoo.data.tokenizer import Tokenizer

__all__ = [
    "ANSWERS",
    "ATTRIBUTES",
    "QUESTION_TYPES",
    "TASKS",
    "MmzooShapes",
    "MmzooShapesConfig",
    "Preprocessor",
    "TaskInfo",
    "Tokenizer",
    "coco_captions_dataset",
    "flickr8k_dataset",
    "generate_scenes",
    "image_folder_dataset",
    "prepare_examples",
    "problems",
    "shapes",
    "shapes_arrays",
    "shapes_config",
    "shapes_dataset",
    "shapes_tokenizer",
]
