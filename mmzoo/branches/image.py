"""Image branches: raw pixels (0..255) in, a feature vector (or map) out.

Each branch is a functional `keras.Model` named `image_<branch>`, so it can be
reused on its own the way `keras.applications` models are. Preprocessing happens
inside the graph: callers always feed raw pixel values.
"""

import os

import keras

from mmzoo.coordconv import AddCoordinates
from mmzoo.registry import IMAGE_BRANCHES
from mmzoo.validators import boolean, choice, fail, optional_bool, positive_int

POOLINGS = ("flatten", "avg", "max", None)
# The `pooling` option, shared with the fusions that pool a feature map (FiLM).
POOLING = choice(*POOLINGS)


def pretrained_weights(name, value):
    """Validator of `image_weights`: `None`, `"imagenet"` or an existing weights file."""
    if value is None or (isinstance(value, str) and value == "imagenet"):
        return value
    if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
        return os.fspath(value)
    fail(name, value, "None, 'imagenet' or the path of an existing weights file")


@keras.saving.register_keras_serializable(package="mmzoo")
class VGGPreprocessing(keras.layers.Layer):
    """VGG16's ImageNet ("caffe") preprocessing as a layer: RGB to BGR, minus the mean.

    Same arithmetic as `keras.applications.vgg16.preprocess_input`, kept in the
    graph so that saved and exported models take raw pixels.
    """

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, inputs):
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        # take, not flip: TF 2.21's int8 converter gives REVERSE_V2 different input and
        # output scales, shifting every pixel; a gather quantizes cleanly.
        bgr = keras.ops.take(inputs, [2, 1, 0], axis=-1)
        return bgr - keras.ops.convert_to_tensor(self.MEAN_BGR, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def _pool(x, pooling, prefix):
    if pooling == "flatten":
        return keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name=f"{prefix}_avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name=f"{prefix}_max_pool")(x)
    return x  # None: keep the feature map, for fusions that work on maps


def _with_coordinates(x, coord_channels, name):
    return AddCoordinates(name=name)(x) if coord_channels else x


@IMAGE_BRANCHES.register("cnn", validators={
    "image_filters": positive_int, "pooling": POOLING, "coord_channels": boolean})
def cnn_branch(input_shape, *, image_filters=32, pooling="flatten", coord_channels=False,
               name="image_cnn"):
    """The seeds' small image branch: Conv2D(filters, 3x3, relu), then pooling.

    Args:
        input_shape: `(height, width, channels)` of the raw images.
        image_filters: number of convolution filters (the seeds use 32 and 64).
        pooling: `"flatten"` (the seeds' layout), `"avg"`, `"max"`, or `None` to
            return the feature map.
        coord_channels: append two coordinate channels (row, column in
            [-1, 1]) to the convolution's input: CoordConv (Liu et al. 2018).
        name: the branch model's name.

    Returns:
        A `keras.Model` from raw pixels to features.

    Example:
    >>> branch = cnn_branch((28, 28, 1))
    >>> branch.output.shape
    (None, 21632)
    """
    POOLING("pooling", pooling)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="image_cnn_rescale")(inputs)
    x = _with_coordinates(x, coord_channels, "image_cnn_coords")
    x = keras.layers.Conv2D(
        image_filters, (3, 3), activation="relu", name="image_cnn_conv"
    )(x)
    return keras.Model(inputs, _pool(x, pooling, "image_cnn"), name=name)


@IMAGE_BRANCHES.register("convnet", validators={
    "image_filters": positive_int, "image_blocks": positive_int, "pooling": POOLING,
    "coord_channels": boolean})
def convnet_branch(input_shape, *, image_filters=32, image_blocks=3, pooling="flatten",
                   coord_channels=False, name="image_convnet"):
    """A small VGG-style stack for phones: blocks of Conv2D(3x3) + BatchNorm + ReLU + MaxPool.

    Block `i` has `image_filters * 2**i` filters; each halves the resolution.
    Far smaller than VGG16 (about 0.1M parameters with the defaults) and deep
    enough to tell shapes apart, which the one-convolution `"cnn"` cannot.

    Args:
        input_shape: `(height, width, channels)` of the raw images.
        image_filters: filters of the first block.
        image_blocks: number of blocks; each side must stay >= 1 pixel.
        pooling: `"flatten"`, `"avg"`, `"max"`, or `None` for the feature map.
        coord_channels: CoordConv (Liu et al. 2018): every convolution also
            sees two coordinate channels (row, column in [-1, 1]), so the
            features can say where things are.
        name: the branch model's name.

    Returns:
        A `keras.Model` from raw pixels (0..255) to features.
    """
    POOLING("pooling", pooling)
    input_shape = tuple(input_shape)
    positive_int("image_blocks", image_blocks)
    if min(input_shape[:2]) < 2**image_blocks:
        most = max(0, min(input_shape[:2]).bit_length() - 1)
        raise ValueError(
            f"image_branch='convnet' halves the image once per block: with "
            f"image_blocks={image_blocks}, each side of `image_shape` must be at least "
            f"{2**image_blocks} pixels. Lower `image_blocks` (at most {most} for this "
            f"image_shape) or use larger images. Received: image_shape={input_shape}, "
            f"image_blocks={image_blocks}"
        )
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="image_convnet_rescale")(inputs)
    for i in range(image_blocks):
        prefix = f"image_convnet_block{i + 1}"
        x = _with_coordinates(x, coord_channels, f"{prefix}_coords")
        x = keras.layers.Conv2D(image_filters * 2**i, 3, padding="same", use_bias=False,
                                name=f"{prefix}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
        x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
        x = keras.layers.MaxPooling2D(name=f"{prefix}_pool")(x)
    return keras.Model(inputs, _pool(x, pooling, "image_convnet"), name=name)


@IMAGE_BRANCHES.register("vgg16", validators={
    "image_weights": pretrained_weights, "image_trainable": optional_bool, "pooling": POOLING})
def vgg16_branch(
    input_shape,
    *,
    image_weights=None,
    image_trainable=None,
    pooling="flatten",
    name="image_vgg16",
):
    """VGG16's convolutional base (`keras.applications.VGG16(include_top=False)`).

    Args:
        input_shape: `(height, width, 3)`, each side at least 32 pixels.
        image_weights: `None` (random initialisation), `"imagenet"` (downloaded
            by Keras on first use) or the path of a weights file for the
            convolutional base.
        image_trainable: whether the VGG16 layers train. `None` means "frozen
            when pretrained weights are loaded, trainable otherwise".
        pooling: `"flatten"` (the seeds' layout), `"avg"`, `"max"`, or `None`.
        name: the branch model's name.

    Returns:
        A `keras.Model` from raw pixels (0..255, RGB) to features.
    """
    POOLING("pooling", pooling)
    input_shape = tuple(input_shape)
    if input_shape[-1] != 3 or min(input_shape[:2]) < 32:
        raise ValueError(
            "image_branch='vgg16' needs RGB images of at least 32x32 pixels: "
            "`image_shape` must be (height, width, 3) with height, width >= 32. "
            f"Received: image_shape={input_shape}"
        )
    image_weights = pretrained_weights("image_weights", image_weights)
    inputs = keras.Input(shape=input_shape, name="image")
    x = VGGPreprocessing(name="image_vgg16_preprocess")(inputs)
    try:
        base = keras.applications.VGG16(
            include_top=False, weights=image_weights, input_tensor=x
        )
    except Exception as e:  # a failed download or a bad file: say which
        raise ValueError(
            f"Could not load VGG16 weights from image_weights={image_weights!r}: {e}"
        ) from e
    if image_trainable is None:
        image_trainable = image_weights is None
    for layer in base.layers:
        layer.trainable = bool(image_trainable)
    return keras.Model(inputs, _pool(base.output, pooling, "image_vgg16"), name=name)
