"""mmzoo: a Keras 3 model zoo for multimodal (image + text) models.

Example:

```python
import mmzoo
model = mmzoo.build_model("classification", image_branch="vgg16",
                          text_branch="lstm", image_shape=(64, 64, 3),
                          vocab_size=500, sequence_length=12, num_classes=20)
```
"""

from mmzoo._version import __version__  # noqa: E402,F401

# Building blocks register themselves on import; keep these before the API.
from mmzoo import branches, data, fusion, heads  # noqa: F401,E402
from mmzoo.registry import FUSIONS, HEADS, IMAGE_BRANCHES, TEXT_BRANCHES  # noqa: E402
from mmzoo.tasks import MultimodalModel, build_model  # noqa: E402
from mmzoo import captioning  # noqa: E402,F401  (registers the "captioning" task)
from mmzoo.tasks import ensembles  # noqa: E402,F401
from mmzoo import export  # noqa: E402,F401  (a callable package: mmzoo.export(model, path))
from mmzoo import zoo  # noqa: E402,F401
from mmzoo.zoo import list_models, load  # noqa: E402
from mmzoo.explain import Explanation, explain  # noqa: E402

__all__ = [
    "build_model",
    "explain",
    "Explanation",
    "export",
    "list_models",
    "load",
    "zoo",
    "MultimodalModel",
    "captioning",
    "ensembles",
    "IMAGE_BRANCHES",
    "TEXT_BRANCHES",
    "FUSIONS",
    "HEADS",
    "branches",
    "data",
    "fusion",
    "heads",
]
