"""Tasks and model assembly: `build_model`, `MultimodalModel`, the task modules.

One module per task (`classification`, `binary`, `multilabel`,
`regression`, `captioning`, `retrieval`), each a `mmzoo.tasks.base.Task` registered in
`mmzoo.registry.TASKS`, which imports a built-in task's module when the task
is first asked for. `build_model` and `MultimodalModel` are imported on first
use (they need Keras; a task's display and metric facts do not).
"""

import importlib

__all__ = ["build_model", "compile_model", "MultimodalModel"]


def __getattr__(name):
    if name in ("build_model", "compile_model"):
        from mmzoo.tasks import build

        return getattr(build, name)
    if name == "MultimodalModel":
        from mmzoo.tasks import model

        return model.MultimodalModel
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
