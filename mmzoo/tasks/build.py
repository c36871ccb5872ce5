"""`build_model`: one call from options to a compiled multimodal Keras model."""

import keras

# The branches and fusions register their names on import: build_model looks
# them up. A task registers its own head (`Task.register_components`).
from mmzoo import branches, fusion  # noqa: F401
from mmzoo.registry import TASKS
from mmzoo.tasks.options import split_compile_options, validate_compile_options


def build_model(task, **options):
    """Builds and compiles a multimodal Keras model.

    Every option is checked before any layer is built: an unknown option is a
    `TypeError`, a bad value a `ValueError` that names it.

    Args:
        task: a task registered in `mmzoo.registry.TASKS`:
            `"classification"` (softmax), `"binary"` (sigmoid),
            `"multilabel"` (sigmoid per label), `"regression"` (linear),
            `"captioning"` (LSTM decoder, see `mmzoo.captioning`), or your
            own (`mmzoo.tasks.base.Task`).
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
            <name>_branch, and its shape option: a modality declared in
                `mmzoo.registry.MODALITIES` (see `mmzoo.modalities`); its
                branch is built when `<name>_branch` is given.
            compile: `False` to get the model uncompiled. optimizer,
                learning_rate, loss, metrics, jit_compile: compile settings
                (loss and metrics default to the task's own).

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
    task = TASKS.get(task)
    task.register_components()
    arch_options, compile_options = split_compile_options(options)
    compile_options = validate_compile_options(compile_options)
    # A task declares its model class (e.g. "captioning" -> CaptioningModel;
    # MultimodalModel by default).
    model = _build_within_memory(task.model_class(), task.name, arch_options)
    if compile_options["compile"]:
        compile_model(model, **{k: v for k, v in compile_options.items() if k != "compile"})
    return model


def _build_within_memory(model_class, task, options):
    """`model_class(task, **options)`; running out of memory names the size options."""
    import tensorflow as tf

    try:
        return model_class(task, **options)
    except (MemoryError, tf.errors.ResourceExhaustedError, tf.errors.InvalidArgumentError) as e:
        text = str(e)
        if not isinstance(e, (MemoryError, tf.errors.ResourceExhaustedError)) and \
                "more than 2**63 - 1 elements" not in text:
            raise
        detail = next((line.strip() for line in text.splitlines()
                       if "OOM when allocating" in line or "elements" in line), "")
        detail = detail.split("[Op:")[0].split("}}")[-1].strip()
        sizes = sorted(((k, v) for k, v in options.items() if _size_of(v) > 1),
                       key=lambda kv: -_size_of(kv[1]))
        shown = ", ".join(f"{k}={v!r}" for k, v in sizes[:4]) or "(defaults)"
        raise ValueError(
            "The model is too large to build in memory: its weights (or one of them) "
            "do not fit. Lower the largest size options (vocab_size * embedding_dim is "
            "the embedding table; image_shape with pooling='flatten' and hidden_units "
            f"set the dense layers). Received: {shown}"
            + (f" ({detail})" if detail else "")) from None


def _size_of(value):
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, (tuple, list)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        product = 1
        for v in value:
            product *= v
        return product
    return 0


def compile_model(model, optimizer="adam", learning_rate=1e-3, loss=None, metrics=None,
                  jit_compile="auto"):
    """Compiles `model` with the loss and metrics its task declares, unless given."""
    task = TASKS.get(model.task)
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get(
            {"class_name": optimizer, "config": {"learning_rate": learning_rate}}
        )
    model.compile(
        optimizer=optimizer,
        loss=loss if loss is not None else task.compile_loss(),
        # A task may declare metric classes (e.g. captioning's padding-masked
        # accuracy): each model gets instances of its own, metrics hold state.
        metrics=task.compile_metrics(metrics),
        jit_compile=jit_compile,
    )
    # Built now, a model saved before training reloads without Keras's
    # "Skipping variable loading for optimizer" warning.
    model.optimizer.build(model.trainable_variables)
    return model
