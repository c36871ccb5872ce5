"""Task heads: the last layer of a model.

A head is registered in `HEADS` under a name (the built-in heads under their
task's name); its registration declares the name of the model output. The
task that uses it (`mmzoo.tasks`, `Task.head`) owns the default loss and
metrics; `build_model(loss=..., metrics=...)` overrides them. (A head may
declare `loss=` and `metrics=` too: a task that declares none uses them.)

Heads compute in float32 (`dtype="float32"`) whatever the global policy: under
`keras.mixed_precision.set_global_policy("mixed_float16")` the rest of the
model computes in float16, but a softmax or sigmoid in float16 saturates and
its loss loses precision, so the output stays float32, as Keras's
mixed-precision guide recommends.
"""

import keras

from mmzoo.registry import HEADS, TASKS
from mmzoo.validators import positive_int

# The output layer's dtype policy under any global policy (see the docstring).
OUTPUT_DTYPE = "float32"


@HEADS.register(
    "classification",
    output="probabilities",
    validators={"num_classes": positive_int},
)
def softmax_head(features, *, num_classes, name="head_softmax"):
    """Dense(num_classes, softmax): one class per example, integer labels."""
    return keras.layers.Dense(num_classes, activation="softmax", name=name,
                              dtype=OUTPUT_DTYPE)(features)


@HEADS.register(
    "binary",
    output="probability",
)
def sigmoid_head(features, *, name="head_sigmoid"):
    """Dense(1, sigmoid): yes/no, labels 0 or 1 (image-text matching)."""
    return keras.layers.Dense(1, activation="sigmoid", name=name,
                              dtype=OUTPUT_DTYPE)(features)


@HEADS.register(
    "multilabel",
    output="probabilities",
    validators={"num_classes": positive_int},
)
def multilabel_head(features, *, num_classes, name="head_sigmoid"):
    """Dense(num_classes, sigmoid): any number of labels, multi-hot targets."""
    return keras.layers.Dense(num_classes, activation="sigmoid", name=name,
                              dtype=OUTPUT_DTYPE)(features)


@HEADS.register(
    "regression",
    output="value",
    validators={"num_outputs": positive_int},
)
def linear_head(features, *, num_outputs=1, name="head_linear"):
    """Dense(num_outputs), linear: real-valued targets (e.g. an object count)."""
    return keras.layers.Dense(num_outputs, name=name, dtype=OUTPUT_DTYPE)(features)


def build_metrics(names, task):
    """Turns metric names into metric objects where a bare name would be ambiguous.

    `"auc"` becomes a `keras.metrics.AUC` (multi-label aware for multi-hot
    labels); metric classes are instantiated; other names and objects are
    passed to `compile` unchanged. (`Task.compile_metrics`.)
    """
    return TASKS.get(task).compile_metrics(list(names))
