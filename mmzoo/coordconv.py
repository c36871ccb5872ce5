"""CoordConv: coordinate channels for convolutional features (Liu et al., 2018).

A convolution is translation-equivariant: on its own it cannot say *where*
something is, which questions such as "what is at the top left?" or "what is
nearest to the red square?" need. Appending two channels that hold each
cell's row and column, scaled to [-1, 1], lets the following layers compute
with positions ("An intriguing failing of convolutional neural networks and
the CoordConv solution", Liu et al., NeurIPS 2018).

Used by the `cnn` and `convnet` image branches (`coord_channels=True`), and by
the FiLM and relation-network fusions, whose blocks see the coordinates again.
"""

import keras
from keras import ops


def coordinate_grid(height, width, dtype="float32"):
    """`(height, width, 2)` tensor: channel 0 the row, channel 1 the column, in [-1, 1].

    A side of one cell gets the coordinate 0.
    """
    def axis(n):
        if n == 1:
            return ops.zeros((1,), dtype=dtype)
        return ops.cast(ops.linspace(-1.0, 1.0, n), dtype)

    rows = ops.broadcast_to(ops.reshape(axis(height), (height, 1)), (height, width))
    cols = ops.broadcast_to(ops.reshape(axis(width), (1, width)), (height, width))
    return ops.stack([rows, cols], axis=-1)


@keras.saving.register_keras_serializable(package="mmzoo")
class AddCoordinates(keras.layers.Layer):
    """Appends two coordinate channels (row, column in [-1, 1]) to a feature map.

    Input `(batch, height, width, channels)` with static height and width;
    output `(batch, height, width, channels + 2)`. The coordinates are
    constants (no weights), the same for every example.

    Args:
        **kwargs: base `keras.layers.Layer` arguments.

    Example:
    >>> x = AddCoordinates()(keras.Input((8, 8, 16)))
    >>> x.shape
    (None, 8, 8, 18)
    """

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        _, height, width, _ = inputs.shape
        grid = coordinate_grid(height, width, self.compute_dtype)
        grid = ops.broadcast_to(grid[None], (ops.shape(inputs)[0], height, width, 2))
        return ops.concatenate([inputs, grid], axis=-1)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4 or None in tuple(input_shape[1:3]):
            raise ValueError(
                "AddCoordinates needs a feature map (batch, height, width, channels) "
                f"with a static height and width. Received: shape={tuple(input_shape)}")
        return (*input_shape[:3], None if input_shape[3] is None else input_shape[3] + 2)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # the same check, at build time
        self.built = True
