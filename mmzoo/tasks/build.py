"""`build_model`: one call from options to a compiled multimodal Keras model."""

import keras

from mmzoo.heads import build_metrics
from mmzoo.registry import HEADS
from mmzoo.tasks.model import MultimodalModel
from mmzoo.tasks.options import split_compile_options, validate_compile_options


def build_model(task, **options):
    """Builds and compiles a multimodal Keras model.

    Every option is checked before any layer is built: an unknown option is a
    `TypeError`, a bad value a `ValueError` that names it.

    Args:
        task: `"classification"` (softmax), `"binary"` (sigmoid),
            `"multilabel"` (sigmoid per label), `"regression"` (linear) or
            `"captioning"` (LSTM decoder, see `mmzoo.captioning`).
        **options: the model's options. The main ones:
            image_branch: `"vgg16"` (default), `"cnn"`, or `None` for no image.
            text_branch: `"lstm"` (default), `"embedding"`, `"dense"`, or `None`.
            fusion: how the modalities meet (`"concat"`, the default).
            num_classes: classes (classification) or labels (multilabel).
            image_shape: `(height, width, channels)`, default `(224, 224, 3)`.
            sequence_length: token ids per text (or the text vector's length
                for `text_branch="dense"`), default 100.
            vocab_size, embedding_dim, text_units: text branch sizes.
            image_weights, image_trainable, pooling, image_filters: image
                branch settings.
            hidden_units, dropout: layers between fusion and head.
            compile: `False` to get the model uncompiled. optimizer,
                learning_rate, loss, metrics, jit_compile: compile settings
                (loss and metrics default to the head's own).

    Returns:
        A compiled `MultimodalModel` (a functional `keras.Model`) whose inputs
        are a dict keyed by modality and whose output is a dict named by the head.

    Example:

    ```python
    model = mmzoo.build_model(
        "classification", image_branch="cnn", text_branch="embedding",
        image_shape=(28, 28, 1), vocab_size=10000, sequence_length=100,
        embedding_dim=64, num_classes=10)
    model.fit({"image": images, "text": token_ids}, labels)
    ```
    """
    arch_options, compile_options = split_compile_options(options)
    compile_options = validate_compile_options(compile_options)
    # A task may declare its own model class (e.g. "captioning" ->
    # CaptioningModel); every other task is a MultimodalModel.
    model_class = HEADS.get(task).info.get("model_class", MultimodalModel)
    model = model_class(task, **arch_options)
    if compile_options["compile"]:
        compile_model(model, **{k: v for k, v in compile_options.items() if k != "compile"})
    return model


def compile_model(model, optimizer="adam", learning_rate=1e-3, loss=None, metrics=None,
                  jit_compile="auto"):
    """Compiles `model` with the loss and metrics its head declares, unless given."""
    head = HEADS.get(model.task)
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get(
            {"class_name": optimizer, "config": {"learning_rate": learning_rate}}
        )
    if metrics is None:
        # A head may declare metric classes (e.g. captioning's padding-masked
        # accuracy): each model gets instances of its own, metrics hold state.
        metrics = [m() if isinstance(m, type) else m for m in head.info["metrics"]]
    model.compile(
        optimizer=optimizer,
        loss=loss if loss is not None else head.info["loss"],
        metrics=build_metrics(metrics, model.task),
        jit_compile=jit_compile,
    )
    # Built now, a model saved before training reloads without Keras's
    # "Skipping variable loading for optimizer" warning.
    model.optimizer.build(model.trainable_variables)
    return model
