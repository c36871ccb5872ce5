"""Photos and unknown words get a warning from predict: the shapes world cannot answer them."""

import warnings

import numpy as np
import pytest

import mmzoo
from mmzoo.data import shapes
from mmzoo.zoo.familiarity import UnfamiliarInputWarning


@pytest.fixture(scope="module")
def entry():
    return mmzoo.load("mobile_vqa")


def photo_like(n, seed=0):
    """Textured, muted, uneven images: what a camera gives and the generator never does."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 200, (n, 1, 1, 3))
    noise = rng.normal(0, 35, (n, 32, 32, 3))
    return np.clip(base + noise + rng.normal(0, 20, (n, 32, 1, 1)), 0, 255).astype(np.uint8)


def test_fresh_scenes_and_known_words_pass_silently(entry):
    data = shapes.generate_scenes(64, split="test", image_size=32, seed=321)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnfamiliarInputWarning)
        entry.predict(images=list(data["image"]), texts=[str(q) for q in data["question"]])


def test_photos_and_unknown_words_warn(entry):
    with pytest.warns(UnfamiliarInputWarning, match=r"4 of 4 images look unlike"):
        entry.predict(images=list(photo_like(4)), texts="what colour is the circle?")
    scene = shapes.generate_scenes(1, split="test", image_size=32, seed=5)["image"][0]
    with pytest.warns(UnfamiliarInputWarning, match=r"mostly words .* never saw"):
        entry.predict(images=scene, texts="is the cat sleeping on my keyboard?")


def test_the_card_says_so(entry):
    assert "## Limitations" in mmzoo.zoo.model_card(entry.metadata)
    assert "UnfamiliarInputWarning" in mmzoo.zoo.model_card(entry.metadata)
