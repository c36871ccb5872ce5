"""mmzoo: a Keras 3 model zoo for multimodal (image + text) models.

Example:

```python
import mmzoo
model = mmzoo.build_model("classification", image_branch="vgg16",
                          text_branch="lstm", image_shape=(64, 64, 3),
                          vocab_size=500, sequence_length=12, num_classes=20)
```

`import mmzoo` itself is quick and starts no TensorFlow (so `mmzoo --help`,
`mmzoo list` and `mmzoo info` answer at once). The API below is imported on
first use of one of its names (`mmzoo.build_model`, `mmzoo.load`, ...), a
subpackage on first use of it (`mmzoo.data`), and everything at once when
Keras is already imported (`import keras, mmzoo`), so that mmzoo's layers are
registered before a `keras.saving.load_model`.
"""

import importlib
import importlib.util
import sys

from mmzoo._version import __version__

__all__ = [
    "build_model",
    "explain",
    "Explanation",
    "CaptionExplanation",
    "export",
    "list_models",
    "load",
    "tune",
    "TuneResult",
    "zoo",
    "MultimodalModel",
    "captioning",
    "ensembles",
    "IMAGE_BRANCHES",
    "TEXT_BRANCHES",
    "AUDIO_BRANCHES",
    "FUSIONS",
    "HEADS",
    "TASKS",
    "MODALITIES",
    "branches",
    "data",
    "fusion",
    "heads",
]

_importing = False


def _import_api():
    """Imports the public API (every name in `__all__`) into this module, once."""
    global _importing
    if _importing or "build_model" in globals():
        return
    _importing = True
    try:
        # Building blocks register themselves on import; keep these before the API.
        from mmzoo import branches, components, data, fusion, heads  # noqa: F401
        from mmzoo.registry import (AUDIO_BRANCHES, FUSIONS, HEADS, IMAGE_BRANCHES,
                                    MODALITIES, TASKS, TEXT_BRANCHES)
        from mmzoo.tasks import MultimodalModel, build_model
        from mmzoo import captioning  # the captioning package (its decoder and generation)
        from mmzoo.tasks import ensembles
        from mmzoo import export  # a callable package: mmzoo.export(model, path)
        from mmzoo import zoo
        from mmzoo.zoo import list_models, load
        from mmzoo.explain import CaptionExplanation, Explanation, explain
        from mmzoo.training.tuning import TuneResult, tune

        globals().update({k: v for k, v in locals().items() if not k.startswith("_")})
    finally:
        _importing = False


def __getattr__(name):
    if name.startswith("__"):  # probes such as `__wrapped__` or `__path__` load nothing
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # A subpackage or module (`mmzoo.data`, `mmzoo.export`): that one only,
        # as `import mmzoo.data` would (also while mmzoo's own modules import).
        return importlib.import_module(f"{__name__}.{name}")
    _import_api()
    try:
        return globals()[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(__all__))


if "keras" in sys.modules:
    # Keras is loaded anyway: register mmzoo's layers (and the TFDS dataset) now.
    _import_api()
