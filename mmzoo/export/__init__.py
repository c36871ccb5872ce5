"""Export for serving and phones: SavedModel and TFLite, checked against Keras.

`mmzoo.export(model, path, format=...)` is the one call; the submodules hold
the pieces (`mmzoo.export.saved_model`, `mmzoo.export.tflite`,
`mmzoo.export.parity`, `mmzoo.export.preprocessing`).

The package itself is callable, so `mmzoo.export(...)` runs `export()` whether
`mmzoo.export` names this package or the function, and
`import mmzoo.export.tflite` keeps working.

Example:

```python
import mmzoo
model = mmzoo.build_model("classification", image_branch="cnn", text_branch="lstm",
                          image_shape=(32, 32, 3), vocab_size=200,
                          sequence_length=12, num_classes=5)
report = mmzoo.export(model, "serving/1")             # SavedModel
report = mmzoo.export(model, "phone/model.tflite", format="tflite",
                      quantization="float16")
print(report.check("litert").max_abs_diff)
```
"""

import sys
import types

# Checks and reports are plain Python; the exporters import TensorFlow, so
# they load on first use (`mmzoo export --help` and the other commands start
# without it).
from mmzoo.export.report import Check, ExportError, ExportReport

__all__ = ["export", "ExportReport", "ExportError", "Check", "FORMATS", "QUANTIZATIONS"]


def __getattr__(name):
    if name in ("export", "FORMATS", "QUANTIZATIONS"):
        from mmzoo.export import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _CallableModule(types.ModuleType):
    """This package, callable as `export()`."""

    def __call__(self, *args, **kwargs):
        from mmzoo.export.api import export

        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
