"""`MultimodalModel`: the functional model that `build_model` returns."""

import inspect

import keras

from mmzoo.checks import MASK_INPUT, check_batch_size, check_model_arrays
from mmzoo.fusion.masking import ModalityDropout
from mmzoo.registry import FUSIONS, MODALITIES, TASKS
from mmzoo.tasks.options import resolve_options


def _kwargs(component, resolved):
    return {key: resolved[key] for key in component.options}


def _modality_mask(inputs, features, resolved, fusion):
    """The mask tensor the fusion gets, or None (no mask input, no dropout).

    `modality_mask=True` adds the input `"modality_mask"`, `(batch,
    num_modalities)` floats in model order (the order of `MODALITIES`: image,
    text, then modalities declared since; 1.0 present, 0.0 missing);
    `modality_dropout > 0` drops modalities at random in training.
    """
    if not resolved["modality_mask"] and not resolved["modality_dropout"]:
        return None
    if "modality_mask" not in inspect.signature(fusion.builder).parameters:
        raise ValueError(
            f"fusion={fusion.name!r} does not take a `modality_mask` argument, so it "
            "cannot handle missing modalities. Received: "
            f"modality_mask={resolved['modality_mask']!r}, "
            f"modality_dropout={resolved['modality_dropout']!r}"
        )
    mask = None
    if resolved["modality_mask"]:
        mask = inputs["modality_mask"] = keras.Input(
            shape=(len(features),), dtype="float32", name="modality_mask"
        )
    if resolved["modality_dropout"]:
        mask = ModalityDropout(resolved["modality_dropout"], name="modality_dropout")(
            list(features.values()), modality_mask=mask
        )
    return mask


def _check_keras_batch_size(x, batch_size):
    # Keras ignores batch_size for a dataset; for arrays, -1 or 1.5 would
    # fail deep inside tf.data.
    if isinstance(x, dict) or hasattr(x, "__array__"):
        check_batch_size(batch_size, allow_none=True)


# Config key of the dtype policy a model's layers were built in, when not float32.
BUILD_POLICY = "build_dtype_policy"


class OptionsModel(keras.Model):
    """Base of mmzoo's functional models, whose config is their resolved option set.

    A subclass builds its graph from the options, calls
    `super().__init__(inputs=..., outputs=..., name=...)`, then
    `self._set_options(resolved, trainable, dtype)`.
    """

    def _set_options(self, resolved, trainable, dtype):
        # Set after construction: Functional's `trainable=` argument is applied
        # before the layers are tracked, so it would leave them trainable and a
        # frozen model (an ensemble member) reloaded from its config would
        # train again inside an outer model.
        self.trainable = trainable
        if dtype is not None:
            self.dtype_policy = keras.dtype_policies.get(dtype)
        self._options = resolved
        # The layers took the global dtype policy in effect while they were made
        # (e.g. "mixed_bfloat16"); the config keeps it so a reloaded model
        # computes in the same precision.
        self._build_policy = keras.config.dtype_policy().name

    def call(self, inputs, training=None, mask=None, **kwargs):
        # One data dict for every model of a comparison: a text-only baseline
        # given {"image", "text"} uses "text". Keras drops unused keys for
        # list-input models but, for dict inputs, flattens the extra keys in
        # with the rest, so the image would be fed to the "text" input.
        if isinstance(inputs, dict) and isinstance(self.input, dict):
            if MASK_INPUT in inputs and MASK_INPUT not in self.input:
                # Dropping it would silently predict as if every modality were there.
                raise ValueError(
                    f"This model was built without modality_mask=True, so it has no "
                    f"`{MASK_INPUT}` input and cannot use one. Build it with "
                    f"modality_mask=True, or leave the key out. Received: inputs with "
                    f"keys {sorted(inputs)}")
            inputs = {k: v for k, v in inputs.items() if k in self.input}
        return super().call(inputs, training=training, mask=mask, **kwargs)

    # User arrays enter here: token ids, masks and batch sizes are checked
    # before TensorFlow sees them (a tf.data.Dataset passes unchecked; see
    # mmzoo.checks for what the graph does then).

    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        check_model_arrays(self, x)
        _check_keras_batch_size(x, batch_size)
        return super().fit(x, y, batch_size, *args, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, *args, **kwargs):
        check_model_arrays(self, x)
        _check_keras_batch_size(x, batch_size)
        return super().evaluate(x, y, batch_size, *args, **kwargs)

    def predict(self, x, batch_size=None, *args, **kwargs):
        check_model_arrays(self, x)
        _check_keras_batch_size(x, batch_size)
        return super().predict(x, batch_size, *args, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        check_model_arrays(self, x)
        return super().train_on_batch(x, *args, **kwargs)

    def test_on_batch(self, x, *args, **kwargs):
        check_model_arrays(self, x)
        return super().test_on_batch(x, *args, **kwargs)

    def predict_on_batch(self, x):
        check_model_arrays(self, x)
        return super().predict_on_batch(x)

    @property
    def task(self):
        """The task name (`"classification"`, ...)."""
        return self._options["task"]

    @property
    def build_options(self):
        """Every architecture option: `mmzoo.build_model(**model.build_options)`."""
        return dict(self._options)

    def get_config(self):
        config = {**self._options, "trainable": self.trainable}
        if getattr(self, "_build_policy", "float32") != "float32":
            config[BUILD_POLICY] = self._build_policy
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        policy = config.pop(BUILD_POLICY, None)
        if policy is None:
            return cls(**config)
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            return cls(**config)
        finally:
            keras.config.set_dtype_policy(previous)


@keras.saving.register_keras_serializable(package="mmzoo")
class MultimodalModel(OptionsModel):
    """A functional Keras model assembled from registered branches, fusion and head.

    Its config is the complete set of architecture options, so
    `keras.saving.load_model` rebuilds it (with `safe_mode=True`, after
    `import mmzoo`) and `mmzoo.build_model(**model.build_options)` builds the
    same architecture again. Prefer `mmzoo.build_model`, which also compiles it.

    Args:
        task: a registered task whose model is a `MultimodalModel`
            (`"classification"`, `"binary"`, `"multilabel"`, `"regression"`).
        **options: architecture options, as for `mmzoo.build_model`.

    Inputs are a dict keyed by modality, one per declared modality
    (`mmzoo.registry.MODALITIES`) whose `<name>_branch` is set (`"image"`:
    raw pixels 0..255 `(batch, *image_shape)`, `"text"`: int token ids
    `(batch, sequence_length)`, ...; each of the shape its branch builds from
    the modality's shape option); with `modality_mask=True` also
    `"modality_mask"`, `(batch, num_modalities)` floats in that order, 1.0
    present / 0.0 missing. The output is a dict with one entry named by the
    head (e.g. `"probabilities"`).

    The fusion (`fusion=...`) is looked up in `FUSIONS`: feature-level fusions
    return fused features and the hidden layers and head follow; decision-level
    ones (`late`, `hybrid`) build one head per modality themselves; FiLM gets
    the image branch unpooled.
    """

    def __init__(self, task, trainable=True, dtype=None, **options):
        resolved = resolve_options(task, options)
        present = [m for m in MODALITIES.all() if resolved.get(m.branch_option) is not None]
        fusion = FUSIONS.get(resolved["fusion"]) if len(present) > 1 else None
        # Fusions that work on feature maps (FiLM) get those branches unpooled;
        # the fusion pools after combining (it reads the `pooling` option).
        # Fusions that attend over steps (cross-attention) get the `sequences`
        # branches unpooled where the branch says how (its `unpooled` info).
        feature_maps = fusion.info.get("feature_maps", ()) if fusion else ()
        sequences = fusion.info.get("sequences", ()) if fusion else ()
        inputs, features = {}, {}
        for modality in present:
            component = modality.branches.get(resolved[modality.branch_option])
            kwargs = _kwargs(component, resolved)
            if modality.name in feature_maps:
                kwargs["pooling"] = None
            elif modality.name in sequences and component.info.get("unpooled"):
                kwargs.update(component.info["unpooled"])
            branch = component.builder(resolved[modality.shape_option], **kwargs)
            inputs[modality.name] = keras.Input(
                shape=branch.input.shape[1:], dtype=branch.input.dtype, name=modality.name
            )
            features[modality.name] = branch(inputs[modality.name])

        head = TASKS.get(task).head_component()
        head_name = inspect.signature(head.builder).parameters["name"].default

        def head_fn(x, suffix=None):
            # Decision-level fusions call this once per modality; the suffix
            # keeps the layer names unique (head_softmax_image, ...).
            end = f"_{suffix}" if suffix else ""
            for i, units in enumerate(resolved["hidden_units"], start=1):
                x = keras.layers.Dense(units, activation="relu", name=f"head_hidden_{i}{end}")(x)
            if resolved["dropout"]:
                x = keras.layers.Dropout(resolved["dropout"], name=f"head_dropout{end}")(x)
            return head.builder(x, **_kwargs(head, resolved), name=f"{head_name}{end}")

        if fusion is None:
            (x,) = features.values()
            y = head_fn(x)
        else:
            kwargs = _kwargs(fusion, resolved)
            mask = _modality_mask(inputs, features, resolved, fusion)
            if mask is not None:
                kwargs["modality_mask"] = mask
            if fusion.info.get("decision_level"):
                y = fusion.builder(features, head=head_fn, **kwargs)
            else:
                y = head_fn(fusion.builder(features, **kwargs))
        outputs = {head.info["output"]: y}

        name = resolved["name"] or f"mmzoo_{task}"
        super().__init__(inputs=inputs, outputs=outputs, name=name)
        self._set_options(resolved, trainable, dtype)
