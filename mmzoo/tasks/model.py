"""`MultimodalModel`: the functional model that `build_model` returns."""

import keras

from mmzoo.registry import FUSIONS, HEADS
from mmzoo.tasks.options import BRANCH_REGISTRIES, MODALITIES, resolve_options


def _kwargs(component, resolved):
    return {key: resolved[key] for key in component.options}


@keras.saving.register_keras_serializable(package="mmzoo")
class MultimodalModel(keras.Model):
    """A functional Keras model assembled from registered branches, fusion and head.

    Its config is the complete set of architecture options, so
    `keras.saving.load_model` rebuilds it (with `safe_mode=True`, after
    `import mmzoo`) and `mmzoo.build_model(**model.build_options)` builds the
    same architecture again. Prefer `mmzoo.build_model`, which also compiles it.

    Args:
        task: `"classification"`, `"binary"`, `"multilabel"` or `"regression"`.
        **options: architecture options, as for `mmzoo.build_model`.

    Inputs are a dict keyed by modality (`"image"`: raw pixels 0..255,
    `"text"`: int token ids); the output is a dict with one entry named by the
    head (e.g. `"probabilities"`).
    """

    def __init__(self, task, trainable=True, dtype=None, **options):
        resolved = resolve_options(task, options)
        inputs, features = {}, {}
        for modality in MODALITIES:
            branch_name = resolved[f"{modality}_branch"]
            if branch_name is None:
                continue
            component = BRANCH_REGISTRIES[modality].get(branch_name)
            shape_option = "image_shape" if modality == "image" else "sequence_length"
            branch = component.builder(resolved[shape_option], **_kwargs(component, resolved))
            inputs[modality] = keras.Input(
                shape=branch.input.shape[1:], dtype=branch.input.dtype, name=modality
            )
            features[modality] = branch(inputs[modality])

        if len(features) > 1:
            fusion = FUSIONS.get(resolved["fusion"])
            x = fusion.builder(features, **_kwargs(fusion, resolved))
        else:
            (x,) = features.values()
        for i, units in enumerate(resolved["hidden_units"], start=1):
            x = keras.layers.Dense(units, activation="relu", name=f"head_hidden_{i}")(x)
        if resolved["dropout"]:
            x = keras.layers.Dropout(resolved["dropout"], name="head_dropout")(x)
        head = HEADS.get(task)
        outputs = {head.info["output"]: head.builder(x, **_kwargs(head, resolved))}

        name = resolved["name"] or f"mmzoo_{task}"
        super().__init__(inputs=inputs, outputs=outputs, name=name, trainable=trainable)
        if dtype is not None:
            self.dtype_policy = keras.dtype_policies.get(dtype)
        self._options = resolved

    @property
    def task(self):
        """The task name (`"classification"`, ...)."""
        return self._options["task"]

    @property
    def build_options(self):
        """Every architecture option: `mmzoo.build_model(**model.build_options)`."""
        return dict(self._options)

    def get_config(self):
        return {**self._options, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)
