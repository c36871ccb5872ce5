"""training.init_from: a new model starts from a trained one's weights where names and shapes fit."""

import json

import numpy as np
import pytest

from mmzoo import training
from mmzoo.training import RecipeError, load_recipe
from mmzoo.training.run import build_run
from mmzoo.training.warm_start import layers_by_path, warm_start


def _recipe(name, **training_keys):
    config = load_recipe(name).to_dict()
    config["training"].update(training_keys)
    return training.Recipe.from_dict(config)


def _weights(model):
    return {path: [np.asarray(w) for w in layer.get_weights()]
            for path, layer in layers_by_path(model)}


def test_matching_starts_from_shapes_vqa_except_its_head():
    import mmzoo

    recipe = _recipe("shapes_matching", init_from="shapes_vqa").replace(num_train=64)
    run = build_run(recipe)
    start = run.warm_start
    assert start.source == "shapes_vqa"
    # The exact weights, as the entry's metadata lists them (checked on load).
    entry_files = mmzoo.load("shapes_vqa").metadata["files"]
    assert start.source_sha256 == entry_files["model.keras"]["sha256"]
    # The softmax head over 20 answers cannot become a sigmoid: fresh; the rest is copied.
    assert start.skipped == ("head_sigmoid",)
    assert any(p.startswith("image_convnet/") for p in start.copied)
    assert any(p.startswith("text_gru/") for p in start.copied) and "fusion_film" in start.copied
    assert 0.9 < start.copied_weights / start.total_weights < 1.0
    source = _weights(mmzoo.load("shapes_vqa").model)
    new = _weights(run.model)
    for path in start.copied:
        for a, b in zip(new[path], source[path]):
            np.testing.assert_array_equal(a, b)
    assert "head_sigmoid" not in source
    assert "fresh: head_sigmoid" in start.summary()


def test_a_keras_file_starts_a_run_and_the_entry_records_it(tmp_path):
    first = training.train("tiny_vqa", tmp_path / "a", verbose=0)
    path = tmp_path / "a.keras"
    first.model.save(path)
    result = training.train(_recipe("tiny_vqa", init_from=str(path)), tmp_path / "b", verbose=0)
    record = result.entry_metadata()["training"]["warm_start"]
    from mmzoo.zoo.folder import sha256_file

    assert record["source"] == str(path) and record["fresh"] == []
    assert record["source_sha256"] == sha256_file(path)
    from mmzoo.zoo import save_entry

    entry = save_entry(tmp_path / "tiny_vqa", result.model, result.preprocessor(),
                       metadata=result.entry_metadata())
    card = (entry / "README.md").read_text(encoding="utf-8")
    assert f"Started from `{path}`'s weights (SHA-256 " \
           f"`{sha256_file(path)[:12]}…`)" in card
    assert record["copied_weights"] == record["total_weights"] == first.model.count_params()
    json.dumps(record)  # metadata is JSON


def test_sources_that_do_not_fit_are_named(tmp_path):
    with pytest.raises(RecipeError, match="init_from"):
        _recipe("tiny_vqa", init_from=3)
    with pytest.raises(RecipeError, match=r"\[training\].*no_such_entry"):
        build_run(_recipe("tiny_vqa", init_from="no_such_entry"))
    with pytest.raises(RecipeError, match=r"shares no layer"):
        build_run(_recipe("tiny_vqa", init_from="shapes_captioner"))
    with pytest.raises(RecipeError, match=r"does not exist"):
        build_run(_recipe("tiny_vqa", init_from=str(tmp_path / "missing.keras")))


def test_warm_start_copies_a_model_directly():
    import mmzoo

    model = mmzoo.load("mobile_vqa").model
    fresh = mmzoo.build_model("classification", **mmzoo.load("mobile_vqa").metadata["recipe"][
        "model"], **load_recipe("mobile_vqa").data_options())
    start = warm_start(fresh, model)
    assert start.source_sha256 is None  # a model object: no file to name
    assert start.skipped == () and start.copied_weights == start.total_weights
    x = {"image": np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3)).astype("float32"),
         "text": np.ones((2, 16), "int32")}
    np.testing.assert_allclose(fresh.predict(x, verbose=0)["probabilities"],
                               model.predict(x, verbose=0)["probabilities"], atol=1e-6)
