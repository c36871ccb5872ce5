"""`tfds.load("mmzoo_shapes", data_dir=...)` end to end, after `import mmzoo`."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import mmzoo
from mmzoo.data import shapes


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    splits = tfds.load("mmzoo_shapes/tiny", data_dir=data_dir)
    return data_dir, {k: list(tfds.as_numpy(v)) for k, v in splits.items()}


def test_builder_is_registered_by_importing_mmzoo():
    assert "mmzoo_shapes" in tfds.list_builders(with_community_datasets=False)
    builder_cls = tfds.builder_cls("mmzoo_shapes")
    assert builder_cls is mmzoo.data.MmzooShapes
    assert {c.name for c in builder_cls.BUILDER_CONFIGS} >= {"32px", "64px", "128px", "tiny"}
    assert builder_cls.DEFAULT_CONFIG_NAME == "64px"


def test_load_builds_every_split_with_its_features(built):
    data_dir, splits = built
    assert {k: len(v) for k, v in splits.items()} == {"train": 48, "validation": 16, "test": 16}
    ex = splits["train"][0]
    assert ex["image"].shape == (32, 32, 3) and ex["image"].dtype == np.uint8
    assert ex["captions"].shape == (5,) and all(c for c in ex["captions"])
    assert 0 <= ex["answer"] < len(shapes.ANSWERS)
    assert ex["match_label"] in (0, 1)
    assert len(ex["objects"]["shape"]) == ex["count"]
    bbox = ex["objects"]["bbox"]
    assert bbox.shape == (ex["count"], 4) and (bbox >= 0).all() and (bbox <= 1).all()
    info = tfds.builder("mmzoo_shapes/tiny", data_dir=data_dir).info
    assert info.features["answer"].names == list(shapes.ANSWERS)
    assert info.features["question_type"].names == list(shapes.QUESTION_TYPES)
    assert info.features["attributes"].feature.names == list(shapes.ATTRIBUTES)


def test_tfds_data_equal_the_in_memory_generator(built):
    _, splits = built
    for split, examples in splits.items():
        memory = shapes.generate_scenes(len(examples), split, image_size=32, seed=0)
        # Unshuffled build: the files keep the generator's order.
        assert [int(e["scene_id"]) for e in examples] == memory["scene_id"].tolist()
        for i, ex in enumerate(examples):
            np.testing.assert_array_equal(ex["image"], memory["image"][i])  # PNG is lossless
            assert ex["question"].decode() == memory["question"][i]
            assert ex["answer"] == memory["answer"][i]
            assert [c.decode() for c in ex["captions"]] == list(memory["captions"][i])
            hot = np.zeros(len(shapes.ATTRIBUTES), np.uint8)
            hot[ex["attributes"]] = 1
            np.testing.assert_array_equal(hot, memory["attributes"][i])


def test_splits_are_disjoint(built):
    _, splits = built
    ids = {k: {int(e["scene_id"]) for e in v} for k, v in splits.items()}
    images = {k: {e["image"].tobytes() for e in v} for k, v in splits.items()}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not ids[a] & ids[b] and not images[a] & images[b]


def test_custom_config_and_reload(tmp_path):
    config = mmzoo.data.shapes_config(image_size=16, num_train=6, num_validation=2,
                                      num_test=2, seed=5)
    assert config.name == "16px_6_2_2_seed5"
    ds = tfds.load("mmzoo_shapes", split="validation", data_dir=str(tmp_path),
                   builder_kwargs={"config": config})
    images = [e["image"] for e in tfds.as_numpy(ds)]
    assert len(images) == 2 and images[0].shape == (16, 16, 3)
    # A second load reads the prepared files instead of generating again.
    again = tfds.load("mmzoo_shapes", split="validation", data_dir=str(tmp_path),
                      builder_kwargs={"config": config}, download=False)
    assert [e["image"].tobytes() for e in tfds.as_numpy(again)] == [i.tobytes() for i in images]
    with pytest.raises(ValueError, match="Received: num_train=-1"):
        mmzoo.data.shapes_config(num_train=-1)
