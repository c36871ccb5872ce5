"""Recipes: every shipped recipe is valid, and bad ones fail early and clearly."""

import json
import pathlib

import pytest

from mmzoo import training
from mmzoo.training import RecipeError, load_recipe

RECIPES = pathlib.Path(__file__).resolve().parent.parent / "recipes"
SHIPPED = tuple(sorted(p.stem for p in RECIPES.glob("*.toml") if p.stem != "tiny_vqa"))

TINY = """\
name = "t"
task = "classification"

[dataset]
source = "memory"
image_size = 32

[model]
image_branch = "cnn"
text_branch = "embedding"

[training]
epochs = 1
"""


def _write(tmp_path, text, name="recipe.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(tmp_path, text, name="recipe.toml"):
    path = _write(tmp_path, text, name)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message  # names the file
    return message


@pytest.mark.parametrize("name", SHIPPED + ("tiny_vqa",))
def test_shipped_recipes_are_valid(name):
    recipe = load_recipe(RECIPES / f"{name}.toml")
    assert recipe.name == name
    assert recipe.description
    # Round trip through plain data (what the entry's metadata stores).
    again = training.Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
    assert again.to_dict() == recipe.to_dict()
    # A shorter run of it (`mmzoo train NAME --epochs 1`, `mmzoo tune`'s trials) is valid
    # too: no key may depend on the run lasting its recipe's epochs.
    assert recipe.replace(epochs=1).training["epochs"] == 1


def test_recipes_folder_holds_the_shipped_entries():
    entries = {p.name for p in (RECIPES.parent / "saved_models").iterdir()
               if (p / "metadata.json").exists()}
    assert entries and {p.stem for p in RECIPES.glob("*.toml")} >= entries | {"tiny_vqa"}


def test_mobile_recipe_fits_the_int8_budget():
    # int8 stores ~1 byte per parameter: under 5 MB means well under 5M parameters.
    recipe = load_recipe(RECIPES / "mobile_vqa.toml")
    model = training.build_model_for(recipe)
    assert model.count_params() < 4_000_000
    assert recipe.model["image_branch"] in ("cnn", "convnet")  # small, no VGG16
    assert recipe.dataset["image_size"] in (32, 64)


def test_defaults_are_filled_in(tmp_path):
    recipe = load_recipe(_write(tmp_path, TINY))
    assert recipe.training["batch_size"] == 64 and recipe.training["optimizer"] == "adam"
    assert recipe.dataset["text_field"] == "question"
    assert recipe.dataset["sequence_length"] == 16
    assert recipe.evaluation["metrics"] == ("accuracy", "per_question_type", "loss")
    assert "decoding" not in recipe.evaluation  # captioning only
    options = recipe.architecture_options()
    assert options["image_shape"] == (32, 32, 3) and options["num_classes"] == 20


def test_json_recipe_and_bare_name(tmp_path, monkeypatch):
    import tomllib

    config = tomllib.loads(TINY)
    path = _write(tmp_path, json.dumps(config), "r.json")
    assert load_recipe(path).to_dict() == load_recipe(_write(tmp_path, TINY)).to_dict()
    monkeypatch.chdir(RECIPES.parent)
    assert load_recipe("tiny_vqa").path == str(pathlib.Path("recipes/tiny_vqa.toml"))


def test_unknown_key_names_file_key_and_allowed_keys(tmp_path):
    message = _error(tmp_path, TINY.replace("epochs = 1", "epochz = 1"))
    assert "unknown key 'epochz' in [training]" in message
    assert ("Allowed keys: batch_size, deterministic_ops, distill_epochs, distill_from, "
            "distill_learning_rate, distill_to, early_stopping_patience, epochs") in message
    assert "Received: epochz=1" in message
    top = _error(tmp_path, TINY.replace('task = "classification"',
                                        'task = "classification"\nseeed = 3'))
    assert "unknown key 'seeed' at the top level" in top and "dataset" in top
    section = _error(tmp_path, TINY + "\n[trainig]\nepochs = 2\n")
    assert "unknown key 'trainig' at the top level" in section


@pytest.mark.parametrize("edit, expected", [
    (("epochs = 1", 'epochs = "10"'),
     "training.epochs must be an integer >= 1. Received: epochs='10'"),
    (("epochs = 1", "epochs = 0"),
     "training.epochs must be an integer >= 1. Received: epochs=0"),
    (("epochs = 1", "learning_rate = -0.1"),
     "training.learning_rate must be a number > 0. Received: learning_rate=-0.1"),
    (("epochs = 1", 'optimizer = "adamax9"'),
     "training.optimizer must be one of 'adam', 'adamw', 'sgd', 'rmsprop', 'nadam'. "
     "Received: optimizer='adamax9'"),
    (("epochs = 1", 'monitor = "val_auc"'),
     "training.monitor must be one of 'val_loss', 'val_accuracy', 'loss', 'accuracy' for "
     "task='classification'. Received: monitor='val_auc'"),
    (('source = "memory"', 'source = "web"'),
     "dataset.source must be one of 'tfds', 'memory', 'stream'. Received: source='web'"),
    (('task = "classification"', 'task = "vqa"'),
     "task must be one of 'classification', 'binary', 'multilabel', 'regression', "
     "'captioning', 'retrieval'. Received: task='vqa'"),
    (('task = "classification"', 'task = "binary"\n[evaluation]\nmetrics = ["bleu"]'),
     "evaluation.metrics must be a non-empty list of 'accuracy', 'auc', 'per_perturbation', "
     "'loss' for task='binary'. Received: metrics=['bleu']"),
    (('source = "memory"', 'source = "memory"\ncaptions = "first"'),
     "dataset.captions applies to task='captioning' only. Received: captions='first'"),
    (('name = "t"', 'name = "My Entry"'),
     "name must be a non-empty lower-case name"),
    (("epochs = 1", "word_dropout = 1.0"),
     "training.word_dropout must be a number in [0, 1). Received: word_dropout=1.0"),
    (("epochs = 1", "word_dropout = -0.1"),
     "training.word_dropout must be a number in [0, 1). Received: word_dropout=-0.1"),
    (('text_branch = "embedding"\n\n[training]\n',
      'text_branch = "none"\n\n[training]\nword_dropout = 0.1\n'),
     "training.word_dropout drops words of the text input: the model reads 'image'. "
     "Received: word_dropout=0.1"),
    (("epochs = 1", "word_subsampling = 1"),
     "training.word_subsampling must be a number in [0, 1). Received: word_subsampling=1"),
    (('text_branch = "embedding"\n\n[training]\n',
      'text_branch = "none"\n\n[training]\nword_subsampling = 0.02\n'),
     "training.word_subsampling drops words of the text input: the model reads 'image'. "
     "Received: word_subsampling=0.02"),
    (("epochs = 1", "epochs = 2\nword_dropout_from_epoch = 2"),
     "training.word_dropout_from_epoch starts word dropout, but word_dropout and "
     "word_subsampling are 0. Received: word_dropout_from_epoch=2"),
    (("epochs = 1", "epochs = 2\nword_dropout = 0.1\nword_dropout_from_epoch = 0"),
     "training.word_dropout_from_epoch must be"),
    (("epochs = 1", "epochs = 2\nword_subsampling = 0.1\nword_dropout_from_epoch = 2"),
     'training.word_dropout_from_epoch needs dataset.source = "stream" (each batch knows its '
     "step there). Received: source='memory'"),
])
def test_bad_values_name_key_value_and_allowed(tmp_path, edit, expected):
    message = _error(tmp_path, TINY.replace(*edit))
    assert expected in message


def test_missing_required_key(tmp_path):
    message = _error(tmp_path, TINY.replace('name = "t"\n', ""))
    assert "missing required key 'name' in top level" in message


@pytest.mark.parametrize("edit, expected", [
    (('image_branch = "cnn"', 'image_branch = "vgg61"'), "vgg61"),
    (('image_branch = "cnn"', 'image_branch = "cnn"\nimage_filterz = 3'),
     "unexpected option(s) 'image_filterz'"),
    (('image_branch = "cnn"', 'image_branch = "cnn"\nimage_filters = -3'),
     "`image_filters` must be a positive integer. Received: image_filters=-3"),
    (('image_branch = "cnn"', 'image_branch = "cnn"\nfusion_dim = 8'),
     "`fusion_dim` has no effect on this model"),
])
def test_bad_model_options_fail_at_load_time(tmp_path, edit, expected):
    message = _error(tmp_path, TINY.replace(*edit))
    assert "[model]" in message and expected in message


def test_build_time_errors_come_before_the_data(tmp_path, monkeypatch):
    # VGG16 needs 32 px or more: the branch builder's check, not an option
    # check, so it fails when the run builds the model, before any data.
    text = TINY.replace('"cnn"', '"vgg16"').replace("image_size = 32", "image_size = 16")
    path = _write(tmp_path, text)
    recipe = load_recipe(path)

    def no_data(*args, **kwargs):
        raise AssertionError("data loaded before the model was built")

    monkeypatch.setattr(training.run, "load_training_data", no_data)  # build_run's
    with pytest.raises(RecipeError) as info:
        training.build_run(recipe)
    message = str(info.value)
    assert message.startswith(f"{path}: [model]")
    assert "image_branch='vgg16' needs RGB images of at least 32x32 pixels" in message


@pytest.mark.parametrize("key, value, fixed_by", [
    ("image_shape", "[32, 32, 3]", "dataset.image_size"),
    ("vocab_size", "100", "the tokenizer"),
    ("learning_rate", "0.1", "training.learning_rate"),
])
def test_model_section_refuses_what_data_or_training_set(tmp_path, key, value, fixed_by):
    message = _error(tmp_path, TINY.replace('text_branch = "embedding"',
                                            f'text_branch = "embedding"\n{key} = {value}'))
    assert f"[model] must not set {key!r}" in message and fixed_by in message


def test_none_model_option_and_normalised_values(tmp_path):
    text = TINY.replace('text_branch = "embedding"',
                        'text_branch = "none"\nhidden_units = 32')
    recipe = load_recipe(_write(tmp_path, text))
    assert recipe.model["text_branch"] is None
    assert recipe.model["hidden_units"] == (32,)


def test_captioning_defaults_and_checks(tmp_path):
    text = TINY.replace('task = "classification"', 'task = "captioning"').replace(
        'text_branch = "embedding"\n', 'architecture = "inject"\n')
    recipe = load_recipe(_write(tmp_path, text))
    assert recipe.dataset["captions"] == "all" and recipe.dataset["text_field"] == "caption"
    assert recipe.evaluation["decoding"] == "greedy"
    assert recipe.evaluation["metrics"] == ("bleu", "cider_d")
    message = _error(tmp_path, text.replace('architecture = "inject"', 'architecture = "x"'))
    assert "[model]" in message and "architecture" in message


def test_unparsable_files(tmp_path):
    assert "not valid TOML" in _error(tmp_path, "name = \n")
    assert "not valid JSON" in _error(tmp_path, "{", "r.json")
    with pytest.raises(FileNotFoundError, match="No recipe file"):
        load_recipe(tmp_path / "missing.toml")


def test_replace_overrides_and_validates(tmp_path):
    recipe = load_recipe(_write(tmp_path, TINY))
    changed = recipe.replace(epochs=5, seed=7)
    assert changed.training["epochs"] == 5 and changed.training["seed"] == 7
    assert recipe.training["epochs"] == 1  # frozen original
    with pytest.raises(RecipeError, match="training.epochs must be an integer >= 1"):
        recipe.replace(epochs=0)


@pytest.mark.parametrize("folder", sorted(p.name for p in (RECIPES.parent / "saved_models")
                                          .iterdir() if (p / "metadata.json").exists()))
def test_every_shipped_entry_loads_and_comes_from_its_recipe(folder):
    import mmzoo

    entry = mmzoo.load(folder)  # every sha256 checked, safe_mode=True
    recipe = load_recipe(RECIPES / f"{folder}.toml")
    # The recipe file in the repo is the one that trained the entry (keys added
    # to the schema since then read as their defaults).
    trained = training.Recipe.from_dict(entry.metadata["recipe"])
    assert json.loads(json.dumps(trained.to_dict())) == json.loads(json.dumps(recipe.to_dict()))
    assert entry.metadata["metrics"]["num_examples"] == recipe.dataset["num_test"]


def test_precision_builds_the_model_in_that_policy_and_leaves_the_global_one(tmp_path):
    import keras
    import numpy as np

    from mmzoo.training.loop import build_model_for

    recipe = load_recipe(_write(tmp_path, TINY + 'precision = "mixed_bfloat16"\n'))
    before = keras.config.dtype_policy().name
    model = build_model_for(recipe)
    assert keras.config.dtype_policy().name == before == "float32"
    conv = next(layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Conv2D))
    assert conv.dtype_policy.name == "mixed_bfloat16"
    assert conv.kernel.dtype == "float32"  # weights stay float32
    inputs = {"image": np.zeros((2, 32, 32, 3), "float32"), "text": np.ones((2, 16), "int32")}
    probs = model.predict(inputs, verbose=0)
    probs = next(iter(probs.values())) if isinstance(probs, dict) else probs
    assert probs.dtype == np.float32 and np.allclose(probs.sum(-1), 1, atol=1e-5)
    # Saved and loaded, it computes in the same precision (the config keeps the policy).
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    conv = next(layer for layer in again._flatten_layers() if isinstance(layer, keras.layers.Conv2D))
    assert conv.dtype_policy.name == "mixed_bfloat16"
    reloaded = again.predict(inputs, verbose=0)
    reloaded = next(iter(reloaded.values())) if isinstance(reloaded, dict) else reloaded
    np.testing.assert_array_equal(reloaded, probs)
    assert keras.config.dtype_policy().name == "float32"
    assert "precision" in _error(tmp_path, TINY + 'precision = "half"\n')
