"""The `"tfhub"` image branch: a TF-Hub style SavedModel as the image encoder.

The module is wrapped with `keras.layers.TFSMLayer` (a Keras 3 layer), never
tensorflow_hub's KerasLayer (a Keras 2 layer that breaks inside Keras 3 models). It may
be a TF-Hub / Kaggle handle (downloaded and cached by `tensorflow_hub`) or a
local SavedModel folder: one written by `tf.saved_model.save`, or by
`keras_model.export(...)`.

**Saving and `safe_mode`.** A model with this branch saves to `.keras` (the
module's variables are stored with the other weights, the module itself is
referenced by its handle), but Keras refuses to *load* a `TFSMLayer` with
`safe_mode=True`: a SavedModel is a TensorFlow graph that could hold
arbitrary ops (reading or writing files, for instance). Load it with
`keras.saving.load_model(path, safe_mode=False)` only when you trust the
module, and have the module available at the same handle or path. For the same
reason such a model cannot become a zoo entry (`mmzoo.zoo.save_entry` refuses
it), since entries always load with `safe_mode=True`.

Example:

```python
model = mmzoo.build_model(
    "classification", image_branch="tfhub",
    image_handle="https://www.kaggle.com/models/google/mobilenet-v2/TensorFlow2/"
                 "035-128-feature-vector/2",
    image_shape=(128, 128, 3), text_branch="lstm", vocab_size=100,
    sequence_length=12, num_classes=5)
```
"""

import os

import keras

from mmzoo.registry import IMAGE_BRANCHES
from mmzoo.validators import fail, optional_bool, optional_name

PIXEL_RANGES = ((0, 1), (0, 255), (-1, 1))
# Endpoints tried, in order, when `image_endpoint` is None: Keras export's,
# the TF-Hub reusable SavedModel's `__call__`, then the serving signature.
AUTO_ENDPOINTS = ("serve", "__call__", "serving_default")


def _in_safe_mode():
    """True inside `keras.saving.load_model(..., safe_mode=True)`.

    Keras has no public accessor; its own `TFSMLayer.from_config` reads the
    same flag. `None` (outside any loading) is not safe mode here: that is a
    user building a model.
    """
    from keras.src.saving import serialization_lib

    return serialization_lib.in_safe_mode() is True


def is_url(handle):
    """Whether `handle` is a URL (resolved by `tensorflow_hub`) rather than a path."""
    return isinstance(handle, str) and "://" in handle


def resolve_handle(handle):
    """The local SavedModel folder of a handle: itself, or the hub cache's copy."""
    if is_url(handle):
        if handle.startswith("file://"):
            return handle[len("file://"):]
        # Imported only here: importing tensorflow_hub also imports tf_keras,
        # which local modules never need.
        import tensorflow_hub

        return tensorflow_hub.resolve(handle)
    return os.fspath(handle)


def endpoints(path):
    """`(function attributes, signature names)` of the SavedModel at `path`.

    Read from `saved_model.pb` without loading the module.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(path, "saved_model.pb")
    if not os.path.isfile(pb):
        raise ValueError(f"`image_handle` must be the folder of a SavedModel (with "
                         f"saved_model.pb). Received: image_handle={path!r}")
    proto = saved_model_pb2.SavedModel()
    with open(pb, "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0]
    nodes = graph.object_graph_def.nodes
    functions = [c.local_name for c in nodes[0].children
                 if nodes[c.node_id].WhichOneof("kind") in ("function",
                                                            "bare_concrete_function")]
    signatures = [k for k in graph.signature_def if not k.startswith("__")]
    return functions, signatures


def _pick_endpoint(path, endpoint):
    functions, signatures = endpoints(path)
    available = functions + [s for s in signatures if s not in functions]
    if endpoint is None:
        for candidate in AUTO_ENDPOINTS:
            if candidate in available:
                return candidate
    elif endpoint in available:
        return endpoint
    raise ValueError(
        f"`image_endpoint` must name a function or signature of the module at {path!r}: "
        f"one of {', '.join(map(repr, available)) or '(none found)'}. "
        f"Received: image_endpoint={endpoint!r}")


@keras.saving.register_keras_serializable(package="mmzoo")
class HubModule(keras.layers.TFSMLayer):
    """A TF-Hub style SavedModel as a Keras 3 layer (a `TFSMLayer`).

    Unlike a bare `TFSMLayer` it calls serving signatures (which take keyword
    arguments) as well as functions, picks one output of a dict, and keeps
    the handle (not the resolved cache path) in its config. Loading it keeps
    `TFSMLayer`'s rule: refused under `safe_mode=True`.

    Args:
        handle: a TF-Hub / Kaggle handle (URL) or a local SavedModel folder.
        endpoint: the function or signature to call (`"serve"`, `"__call__"`,
            `"serving_default"`, ...).
        output_key: which entry of a dict output to return; `None` when the
            output is a tensor or a dict with one entry.
        trainable: fine-tune the module's variables.

    Example:

    ```python
    keras_model.export("encoder")              # endpoint "serve"
    layer = HubModule("encoder", endpoint="serve")
    features = layer(images)
    ```
    """

    def __init__(self, handle, endpoint="serve", output_key=None, trainable=False,
                 name=None, dtype=None):
        if _in_safe_mode():
            # Models rebuilt from their options (MultimodalModel.from_config)
            # construct this layer directly, past TFSMLayer.from_config's
            # check: refuse here too, so safe_mode=True never loads a module.
            raise ValueError(
                f"Refusing to load the SavedModel {handle!r} (image_branch='tfhub') with "
                "safe_mode=True: a SavedModel is a TensorFlow graph that may run "
                "arbitrary ops (e.g. read or write files). If you trust it, load with "
                "keras.saving.load_model(path, safe_mode=False).")
        self.handle = handle
        self.endpoint = endpoint
        self.output_key = output_key
        super().__init__(resolve_handle(handle), call_endpoint=endpoint, trainable=trainable,
                         name=name, dtype=dtype)
        fn = self.call_endpoint_fn
        self._keyword = None
        if not hasattr(self._reloaded_obj, endpoint):
            # A signature: its one input must be passed by keyword.
            kwargs = fn.structured_input_signature[1]
            if len(kwargs) != 1:
                raise ValueError(
                    f"The signature {endpoint!r} of {handle!r} takes {len(kwargs)} inputs "
                    f"({', '.join(sorted(kwargs))}); an image branch feeds exactly one. "
                    f"Received: image_endpoint={endpoint!r}")
            (self._keyword,) = kwargs

    def call(self, inputs, training=False):
        fn = self.call_endpoint_fn
        outputs = fn(**{self._keyword: inputs}) if self._keyword else fn(inputs)
        if not isinstance(outputs, dict):
            return outputs
        if self.output_key is None and len(outputs) == 1:
            (value,) = outputs.values()
            return value
        if self.output_key in outputs:
            return outputs[self.output_key]
        raise ValueError(
            f"The module {self.handle!r} returns a dict: `image_output_key` must be one of "
            f"{', '.join(map(repr, sorted(outputs)))}. "
            f"Received: image_output_key={self.output_key!r}")

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
                "handle": self.handle, "endpoint": self.endpoint,
                "output_key": self.output_key}


def hub_handle(name, value):
    """Validator of `image_handle`: a URL, or the folder of a SavedModel."""
    # A URL is resolved (downloaded) by the branch; a path must hold a SavedModel.
    if isinstance(value, str) and "://" in value:
        return value
    if (isinstance(value, (str, os.PathLike)) and os.fspath(value)
            and os.path.isfile(os.path.join(value, "saved_model.pb"))):
        return os.path.abspath(os.fspath(value))
    fail(name, value, "a TF-Hub handle (a URL) or the folder of a SavedModel "
                      "(with saved_model.pb)")


def pixel_range(name, value):
    """Validator of `image_pixel_range`: one of `PIXEL_RANGES`, as a tuple or list."""
    if isinstance(value, (tuple, list)) and tuple(value) in PIXEL_RANGES and not any(
            isinstance(v, bool) for v in value):
        return tuple(int(v) for v in value)
    fail(name, value, "one of " + ", ".join(map(repr, PIXEL_RANGES)))


# A model with this branch loads only with safe_mode=False (see the module
# docstring); declared so that tests/test_conformance.py checks that refusal.
@IMAGE_BRANCHES.register("tfhub", loads_in_safe_mode=False, validators={
    "image_handle": hub_handle, "image_endpoint": optional_name,
    "image_output_key": optional_name, "image_pixel_range": pixel_range,
    "image_trainable": optional_bool})
def tfhub_branch(input_shape, *, image_handle, image_endpoint=None, image_output_key=None,
                 image_pixel_range=(0, 1), image_trainable=None, name="image_tfhub"):
    """A TF-Hub style image module (SavedModel) as the image branch.

    Args:
        input_shape: `(height, width, channels)` the module is fed (resize
            your images to the size the module expects, often 224x224).
        image_handle: a TF-Hub / Kaggle handle (URL, downloaded and cached by
            `tensorflow_hub`) or the folder of a local SavedModel.
        image_endpoint: the function or signature to call; `None` tries
            `"serve"` (Keras `model.export`), `"__call__"` (TF-Hub modules),
            then `"serving_default"`.
        image_output_key: the entry of a dict output to use (e.g.
            `"feature_vector"`); `None` when there is only one.
        image_pixel_range: the pixel range the module expects: `(0, 1)`
            (TF-Hub image modules' convention, the default), `(-1, 1)` or
            `(0, 255)`. The branch takes raw 0..255 pixels and rescales.
        image_trainable: fine-tune the module; `None` means frozen.
        name: the branch model's name.

    Returns:
        A `keras.Model` from raw pixels to the module's feature vector.
    """
    path = resolve_handle(image_handle)
    endpoint = _pick_endpoint(path, image_endpoint)
    pixel_range = tuple(image_pixel_range)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    if pixel_range != (0, 255):
        low, high = pixel_range
        x = keras.layers.Rescaling((high - low) / 255.0, offset=low,
                                   name="image_tfhub_rescale")(x)
    module = HubModule(image_handle, endpoint=endpoint, output_key=image_output_key,
                       trainable=bool(image_trainable), name="image_tfhub_module")
    features = module(x)
    if len(features.shape) != 2:
        raise ValueError(
            f"The tfhub image branch needs a module that returns a feature vector "
            f"(batch, features); {image_handle!r} returns shape {tuple(features.shape)}. "
            "Pick a feature-vector module or another `image_output_key`. "
            f"Received: image_handle={image_handle!r}")
    return keras.Model(inputs, features, name=name)
