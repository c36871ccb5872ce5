"""Task heads: the last layer of a model, with the loss and metrics that fit it.

A head is registered in `HEADS` under its task name (the first argument of
`build_model`). Its registration declares the name of the model output, the
default loss and the default metrics; `build_model(loss=..., metrics=...)`
overrides them.
"""

import keras

from mmzoo.registry import HEADS


@HEADS.register(
    "classification",
    output="probabilities",
    loss="sparse_categorical_crossentropy",
    metrics=("accuracy",),
)
def softmax_head(features, *, num_classes, name="head_softmax"):
    """Dense(num_classes, softmax): one class per example, integer labels."""
    return keras.layers.Dense(num_classes, activation="softmax", name=name)(features)


@HEADS.register(
    "binary",
    output="probability",
    loss="binary_crossentropy",
    metrics=("accuracy", "auc"),
)
def sigmoid_head(features, *, name="head_sigmoid"):
    """Dense(1, sigmoid): yes/no, labels 0 or 1 (image-text matching)."""
    return keras.layers.Dense(1, activation="sigmoid", name=name)(features)


@HEADS.register(
    "multilabel",
    output="probabilities",
    loss="binary_crossentropy",
    metrics=("binary_accuracy", "auc"),
)
def multilabel_head(features, *, num_classes, name="head_sigmoid"):
    """Dense(num_classes, sigmoid): any number of labels, multi-hot targets."""
    return keras.layers.Dense(num_classes, activation="sigmoid", name=name)(features)


@HEADS.register(
    "regression",
    output="value",
    loss="mean_squared_error",
    metrics=("mean_absolute_error",),
)
def linear_head(features, *, num_outputs=1, name="head_linear"):
    """Dense(num_outputs), linear: real-valued targets (e.g. an object count)."""
    return keras.layers.Dense(num_outputs, name=name)(features)


def build_metrics(names, task):
    """Turns metric names into metric objects where a bare name would be ambiguous.

    `"auc"` becomes a `keras.metrics.AUC` (multi-label aware for `"multilabel"`);
    other names and objects are passed to `compile` unchanged.
    """
    metrics = []
    for m in names:
        if m == "auc":
            metrics.append(keras.metrics.AUC(name="auc", multi_label=task == "multilabel"))
        else:
            metrics.append(m)
    return metrics
