"""Warm start: a new model begins with the weights of a trained one where they fit.

A recipe's `training.init_from` names a zoo entry (`"shapes_vqa"`), an entry
folder or a `.keras` file. Before the first step, every layer of the new model
takes the weights of the source's layer at the same path (`branch/layer`
names, as `build_model` gives them) when all their weight shapes agree; the
others (typically the head, when the task changes) keep their fresh
initialisation. It is transfer learning by layer names: e.g. an image-text
matching model (sigmoid head) starts from `shapes_vqa`'s image branch, question
encoder and FiLM blocks, which already find and compare objects.

With `freeze=True` (a recipe's `training.freeze = "copied"`) the copied
layers are not trained further (`trainable = False`; their batch
normalisation keeps its statistics): only the fresh layers learn, e.g. a new
audio branch under `shapes_vqa`'s FiLM blocks (`mmzoo.training.distill`).

A resumed run restores its own backup over these weights, so the warm start
only decides where the first step begins.
"""

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """What `warm_start` copied.

    Attributes:
        source: what the weights came from (as given).
        copied: paths of the layers that took the source's weights.
        skipped: paths of layers with weights that kept their initialisation
            (no layer of that path in the source, or other shapes).
        copied_weights: number of weight values copied.
        total_weights: number of weight values of the model.
        frozen: the copied layers were frozen (`trainable = False`).
        source_sha256: SHA-256 of the source's weights file (a zoo entry's
            `model.keras`, or the `.keras` file given), so the card names the
            exact weights even after the entry is retrained; `None` for a
            model object.
    """

    source: str
    copied: tuple
    skipped: tuple
    copied_weights: int
    total_weights: int
    frozen: bool = False
    source_sha256: str = None

    def summary(self):
        """One line, e.g. "warm start from shapes_vqa: 14 of 15 layers (99.6% of weights)"."""
        share = self.copied_weights / max(self.total_weights, 1)
        kept = f"; fresh: {', '.join(self.skipped)}" if self.skipped else ""
        frozen = ", frozen" if self.frozen else ""
        return (f"warm start from {self.source}: {len(self.copied)} of "
                f"{len(self.copied) + len(self.skipped)} layers ({share:.1%} of weights"
                f"{frozen}){kept}")


def layers_by_path(model, prefix=""):
    """`[(path, layer)]` for every layer of `model` with weights, nested models opened.

    A nested `keras.Model` (a branch) is opened and its layers get
    `"<model name>/<layer name>"` paths; any other layer is one unit with all
    its weights (a fusion layer and its sublayers).
    """
    import keras

    found = []
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            found.extend(layers_by_path(layer, prefix=f"{path}/"))
        elif layer.weights:
            found.append((path, layer))
    return found


def load_source(source):
    """`(model, sha256)`: the Keras model `source` names and its weights file's SHA-256.

    `source` is a zoo entry name or folder, a `.keras` file, or a Keras model
    (whose SHA-256 is `None`).

    Raises:
        ValueError: a source that is none of these (named).
    """
    import keras

    if isinstance(source, keras.Model):
        return source, None
    if not isinstance(source, (str, os.PathLike)) or not str(source):
        raise ValueError("`init_from` must be a zoo entry name, an entry folder or a .keras "
                         f"file. Received: init_from={source!r}")
    if str(source).endswith(".keras"):
        if not os.path.isfile(source):
            raise ValueError(f"`init_from` names a .keras file that does not exist. "
                             f"Received: init_from={source!r}")
        import mmzoo.components  # noqa: F401  (mmzoo's layers, for safe-mode loading)

        from mmzoo.zoo.folder import sha256_file

        return keras.saving.load_model(source, safe_mode=True), sha256_file(source)
    from mmzoo.zoo import load

    try:
        entry = load(source)  # its files' SHA-256 checked against its metadata
        return entry.model, entry.metadata["files"]["model.keras"]["sha256"]
    except (ValueError, FileNotFoundError, TypeError) as e:
        raise ValueError(f"`init_from` must be a zoo entry name, an entry folder or a .keras "
                         f"file: {e}") from None


def warm_start(model, source, freeze=False):
    """Copies into `model` the weights of every layer of `source` that fits.

    Args:
        model: the new Keras model (built).
        source: a zoo entry name or folder, a `.keras` file, or a Keras model.
        freeze: set the copied layers' `trainable` to `False`.

    Returns:
        A `WarmStart` listing what was copied.

    Raises:
        ValueError: `source` cannot be loaded, or no layer fits (the models
            share no layer names and shapes: almost surely the wrong source).
    """
    source_model, digest = load_source(source)
    source_layers = dict(layers_by_path(source_model))
    copied, skipped, copied_weights, total = [], [], 0, 0
    for path, layer in layers_by_path(model):
        size = sum(int(w.numpy().size) for w in layer.weights)
        total += size
        other = source_layers.get(path)
        if other is None or [tuple(w.shape) for w in other.weights] != \
                [tuple(w.shape) for w in layer.weights]:
            skipped.append(path)
            continue
        layer.set_weights(other.get_weights())
        if freeze:
            layer.trainable = False
        copied.append(path)
        copied_weights += size
    name = source if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "model")
    if not copied:
        raise ValueError(f"`init_from` shares no layer (same name and weight shapes) with the "
                         f"new model, so nothing could be copied. Received: init_from={name!r}")
    return WarmStart(source=str(name), copied=tuple(copied), skipped=tuple(skipped),
                     copied_weights=copied_weights, total_weights=total, frozen=bool(freeze),
                     source_sha256=digest)
