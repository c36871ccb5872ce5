"""mmzoo.tune: a KerasTuner search over a recipe's options, its files, resume and budgets."""

import csv
import json

import pytest

import mmzoo
from mmzoo.training import load_recipe
from mmzoo.training.tuning import SearchSpaceError, load_search_space, write_recipe

from tests.test_recipes import RECIPES

SPACE = {
    "fusion": ["concat", "film"],
    "film_blocks": {"min": 1, "max": 2},  # film only: a conditional option
    "learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"},
}


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune")
    result = mmzoo.tune("tiny_vqa", SPACE, out, tuner="random", max_trials=3, max_epochs=1,
                        verbose=0)
    return out, result


def test_search_writes_table_plot_and_a_trainable_best_recipe(search):
    out, result = search
    assert len(result.trials) == 3
    assert result.objective == ("val_loss", "min")  # tiny_vqa monitors val_loss
    scores = [t["score"] for t in result.trials]
    assert scores == sorted(scores)  # best (lowest loss) first
    for trial in result.trials:
        assert trial["status"] == "COMPLETED" and trial["epochs"] == 1 and trial["seconds"] > 0
        # film_blocks exists exactly in the trials that chose FiLM.
        assert ("film_blocks" in trial) == (trial["fusion"] == "film")
    with open(result.paths["table"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial_id"] for r in rows] == [t["trial_id"] for t in result.trials]
    assert result.table().count("\n") == 2 + 3 and "val_loss" in result.table()
    assert open(result.paths["plot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    best = load_recipe(result.paths["recipe"])  # what mmzoo train reads
    assert best.name == "tiny_vqa_tuned"
    assert best.model["fusion"] == result.best_values["fusion"]
    assert best.training["learning_rate"] == pytest.approx(result.best_values["learning_rate"])
    assert best.training["epochs"] == load_recipe("tiny_vqa").training["epochs"]
    assert ("film_blocks" in best.model) == (best.model["fusion"] == "film")
    assert best.to_dict() == result.best_recipe.to_dict()
    # The description states the search's choice, not the base recipe's design.
    assert best.description.startswith("The best trial of mmzoo tune on tiny_vqa: fusion=")
    assert f"fusion={best.model['fusion']}," in best.description
    assert load_recipe("tiny_vqa").description not in best.description


def test_search_continues_from_its_state(search, tmp_path):
    out, first = search
    again = mmzoo.tune("tiny_vqa", SPACE, out, tuner="random", max_trials=4, max_epochs=1,
                       verbose=0)
    assert len(again.trials) == 4  # one new trial; the first three were not rerun
    before = {t["trial_id"]: t["score"] for t in first.trials}
    after = {t["trial_id"]: t["score"] for t in again.trials}
    assert all(after[k] == before[k] for k in before)


def test_minutes_budget_starts_no_trial_after_the_deadline(tmp_path):
    result = mmzoo.tune("tiny_vqa", {"learning_rate": [1e-3, 3e-3, 1e-2]}, tmp_path,
                        tuner="random", max_trials=3, max_minutes=1e-4, max_epochs=1,
                        verbose=0)
    assert len(result.trials) == 1


def test_hyperband_trains_promising_trials_longer(tmp_path):
    result = mmzoo.tune("tiny_vqa", {"embedding_dim": [4, 8, 16]}, tmp_path, max_epochs=3,
                        verbose=0)
    epochs = {t["epochs"] for t in result.trials}
    assert min(epochs) < max(epochs) == 3


@pytest.mark.parametrize("space, named", [
    ({"fusion_dimm": [8, 16]}, "fusion_dimm"),
    ({"film_blocks": {"min": 1, "max": 2}}, "film_blocks"),  # tiny_vqa's concat takes none
    ({"fusion": ["film"], "film_blocks": {"min": 0, "max": 2}}, "film_blocks"),
    ({"batch_size": [8, 16]}, "batch_size"),
    ({"fusion": ["concat", "sum"], "film_blocks": [1, 2]}, "film_blocks"),
    ({"dropout": {"min": 0.3, "max": 0.1}}, "dropout"),
    ({"fusion": []}, "fusion"),
    ({}, "empty"),
])
def test_bad_spaces_fail_before_training_and_name_the_option(tmp_path, space, named):
    with pytest.raises((SearchSpaceError, ValueError)) as info:
        mmzoo.tune("tiny_vqa", space, tmp_path / "t", max_trials=1, verbose=0)
    assert named in str(info.value)
    assert not (tmp_path / "t").exists()  # nothing trained or written


def test_search_space_file(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('fusion = ["concat", "film"]\nfusion_dim = 32\n'
                    'learning_rate = {min = 1e-4, max = 1e-2, sampling = "log"}\n'
                    'film_blocks = {min = 1, max = 4}\n')
    dims = {d.name: d for d in load_search_space(path)}
    assert dims["fusion"].kind == "choice" and dims["fusion_dim"].kind == "fixed"
    assert dims["learning_rate"].kind == "float" and dims["learning_rate"].sampling == "log"
    assert dims["film_blocks"].kind == "int"
    path.write_text("fusion = [")
    with pytest.raises(SearchSpaceError, match="not valid TOML"):
        load_search_space(path)


@pytest.mark.parametrize("name", sorted(p.stem for p in RECIPES.glob("*.toml")))
def test_write_recipe_round_trips_every_shipped_recipe(tmp_path, name):
    recipe = load_recipe(RECIPES / f"{name}.toml")
    write_recipe(recipe, tmp_path / "r.toml")
    again = load_recipe(tmp_path / "r.toml")
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(recipe.to_dict(),
                                                                    sort_keys=True)


def test_cli_tune_writes_the_results_and_names_bad_options(tmp_path):
    import os
    import subprocess
    import sys

    space = tmp_path / "space.toml"
    space.write_text('fusion = ["concat", "film"]\nlearning_rate = [1e-3, 1e-2]\n')
    out = tmp_path / "search"
    command = [sys.executable, "-m", "mmzoo", "tune", "tiny_vqa", "--space", str(space),
               "--out", str(out), "--tuner", "random", "--max-trials", "2", "--max-epochs",
               "1", "--quiet"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mmzoo tune: 2 trials; best val_loss" in done.stdout
    assert "| trial | val_loss |" in done.stdout
    assert load_recipe(out / "best_recipe.toml").name == "tiny_vqa_tuned"
    space.write_text("fusion_dimm = [8, 16]\n")
    bad = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode != 0 and "fusion_dimm" in bad.stderr and "Traceback" not in bad.stderr
