"""Is an input like what the entry was trained on? Warnings for photos and unknown words.

A zoo entry trained on mmzoo-shapes has only seen flat synthetic scenes and
the generator's few dozen words: it gives a photo or a question about cats a
confident-looking answer that means nothing. `check_inputs` warns instead
(`UnfamiliarInputWarning`), from two cheap signals:

- **words**: the share of a text's words the tokenizer does not know (they all
  become the unknown-word id);
- **image statistics**: per image, the mean and spread of the pixels, the mean
  absolute difference between neighbouring pixels (texture) and the share of
  strongly coloured pixels, compared with the range these take on the entry's
  own validation scenes (regenerated from its recorded dataset, 256 scenes,
  widened by a quarter of the range on each side). A photo is far more
  textured and less saturated than any generated scene.

Entries whose metadata does not name mmzoo-shapes as their dataset are checked
for unknown words only.
"""

import warnings

import numpy as np

REFERENCE_SCENES = 256
MARGIN = 0.25
FEATURES = ("mean", "spread", "texture", "coloured")


class UnfamiliarInputWarning(UserWarning):
    """An input unlike anything the entry was trained on: its answer is a guess."""


def image_features(images):
    """`(N, 4)` statistics of raw `(N, H, W, 3)` images (0..255): see `FEATURES`."""
    x = np.asarray(images, np.float32)
    if x.ndim == 3:
        x = x[None]
    mean = x.mean(axis=(1, 2, 3))
    spread = x.std(axis=(1, 2, 3))
    texture = (np.abs(np.diff(x, axis=1)).mean(axis=(1, 2, 3))
               + np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))) / 2
    saturation = x.max(axis=-1) - x.min(axis=-1)
    coloured = (saturation > 100).mean(axis=(1, 2))
    return np.stack([mean, spread, texture, coloured], axis=1)


def reference_ranges(dataset, image_size):
    """`(low, high)` arrays of `image_features` on the entry's validation scenes, widened."""
    from mmzoo.data import shapes

    data = shapes.generate_scenes(REFERENCE_SCENES, split="validation", image_size=image_size,
                                  seed=int(dataset.get("seed", 0)))
    feats = image_features(data["image"])
    low, high = feats.min(axis=0), feats.max(axis=0)
    width = high - low
    return low - MARGIN * width, high + MARGIN * width


def check_inputs(entry, inputs, texts=None):
    """Warns (`UnfamiliarInputWarning`) about inputs unlike the entry's training data.

    Args:
        entry: the `ZooEntry`.
        inputs: the model's input dict (images already resized, raw pixels).
        texts: the raw texts, for naming unknown words.

    Returns:
        The list of warning messages issued (empty when all is familiar).
    """
    from mmzoo.data.tokenizer import OOV

    messages = []
    if "text" in inputs and texts is not None:
        ids = np.asarray(inputs["text"])
        words = (ids > 0).sum(axis=1)
        unknown = (ids == OOV).sum(axis=1)
        bad = np.flatnonzero((words > 0) & (unknown / np.maximum(words, 1) > 0.2))
        if bad.size:
            texts = [texts] if isinstance(texts, str) else list(texts)
            shown = texts[bad[0]] if len(texts) > bad[0] else texts[0]
            messages.append(
                f"{bad.size} of {len(ids)} texts are mostly words entry {entry.name!r} never "
                f"saw in training (e.g. {str(shown)!r}): its answers to them are guesses.")
    dataset = entry.metadata.get("dataset") or {}
    shape = np.asarray(inputs["image"]).shape if "image" in inputs else ()
    if dataset.get("name") == "mmzoo_shapes" and len(shape) == 4 and shape[-1] == 3 \
            and shape[1] >= 16:
        if getattr(entry, "_familiar_ranges", None) is None:
            entry._familiar_ranges = reference_ranges(dataset, np.asarray(
                inputs["image"]).shape[1])
        low, high = entry._familiar_ranges
        feats = image_features(inputs["image"])
        outside = (feats < low) | (feats > high)
        bad = np.flatnonzero(outside.any(axis=1))
        if bad.size:
            which = sorted({FEATURES[j] for j in np.flatnonzero(outside[bad].any(axis=0))})
            messages.append(
                f"{bad.size} of {len(feats)} images look unlike the synthetic mmzoo-shapes "
                f"scenes entry {entry.name!r} was trained on (their {', '.join(which)} fall "
                "outside its training range, e.g. a photo): its answers to them are guesses.")
    for message in messages:
        warnings.warn(message, UnfamiliarInputWarning, stacklevel=3)
    return messages
