"""The fusion benchmark script runs end to end (tiny budget), writes its three files and resumes."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMOKE = ["--smoke", "--tasks", "vqa", "--members", "2", "--image-size", "32",
         "--image-blocks", "2"]


def bench(out, *args):
    return subprocess.run([sys.executable, str(ROOT / "bench" / "fusion.py"), *SMOKE,
                           "--out", str(out), *args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("fusion")
    result = bench(out, "--fusions", "concat,late,film,relation")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_fusion_bench_smoke_run_writes_table_chart_and_json(smoke):
    rows = json.loads((smoke / "fusion.json").read_text())["results"]["vqa"]
    # Both baselines, each fusion (late twice: mean and product rule; FiLM once more
    # with Perez et al.'s blocks), the relation network, the ensemble.
    assert [r["model"] for r in rows] == ["image only", "text only", "concat", "late",
                                          "late (product rule)", "film",
                                          "film (4 blocks, CoordConv, max-pool)", "relation",
                                          "bagging (2 x concat)"]
    assert all(0 <= r["accuracy"] <= 1 and r["params"] > 0 and r["latency_ms_b64"] > 0
               for r in rows)
    table = (smoke / "fusion.md").read_text()
    assert "| late (product rule) |" in table and "image_branch='convnet'" in table
    assert "measured on different days" not in table
    assert (smoke / "fusion.png").read_bytes()[:4] == b"\x89PNG"


def test_fusion_bench_resume_trains_only_the_missing_rows(smoke, tmp_path):
    for name in ("fusion.json", "fusion.md", "fusion.png"):
        (tmp_path / name).write_bytes((smoke / name).read_bytes())
    before = json.loads((tmp_path / "fusion.json").read_text())
    for row in before["results"]["vqa"]:  # as if measured on another day
        row["measured"] = "2026-01-01"
    (tmp_path / "fusion.json").write_text(json.dumps(before))

    result = bench(tmp_path, "--fusions", "concat,sum", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "concat                   measured 2026-01-01 (--resume: kept)" in result.stdout
    after = json.loads((tmp_path / "fusion.json").read_text())["results"]["vqa"]
    # Every earlier row is kept as it was; only `sum` was trained, and the rows
    # follow the registry's order.
    assert ({r["model"]: r for r in after if r["model"] != "sum"}
            == {r["model"]: r for r in before["results"]["vqa"]})
    assert [r["model"] for r in after] == ["image only", "text only", "concat", "film",
                                           "film (4 blocks, CoordConv, max-pool)", "late",
                                           "late (product rule)", "relation", "sum",
                                           "bagging (2 x concat)"]
    assert next(r for r in after if r["model"] == "sum")["measured"] != "2026-01-01"
    table = (tmp_path / "fusion.md").read_text()
    assert "| sum |" in table and "Rows measured on different days" in table


def test_fusion_bench_resume_refuses_other_settings(smoke, tmp_path):
    (tmp_path / "fusion.json").write_bytes((smoke / "fusion.json").read_bytes())
    result = bench(tmp_path, "--fusions", "concat", "--resume", "--seed", "3")
    assert result.returncode != 0
    assert "seed=0 there, 3 here" in result.stderr


def _bench_script(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _training_step_script():
    return _bench_script("training_step")


def test_ig_convergence_bench_prints_the_miss_shrinking_with_the_steps(capsys):
    script = _bench_script("ig_convergence")
    script.main(["shapes_vqa", "--scenes", "12", "--steps", "1,64"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("shapes_vqa: integrated gradients' miss on 12 test scenes' "
                               "questions")
    rows = {int(line.split()[0]): [float(v) for v in line.split()[1:]] for line in lines[2:]}
    assert list(rows) == [1, 64]
    assert rows[1][0] == rows[64][0] >= 6  # the same questions (score moved by >= 0.01)
    assert rows[64][1] < rows[1][1]  # the median miss shrinks with the steps
    with pytest.raises(SystemExit):
        script.main(["shapes_vqa", "--steps", "0,8"])
    with pytest.raises(SystemExit):  # no words to explain
        script.main(["shapes_spoken_vqa", "--steps", "8"])
    assert "the entry must read images and text" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a retrieval model's words have no answer to explain
        script.main(["shapes_retrieval", "--steps", "8"])
    assert "is a 'retrieval' entry" in capsys.readouterr().err


def test_cpu_step_bench_times_both_kernels_with_the_loop_and_unrolled(capsys):
    script = _bench_script("cpu_step")
    # Each child checks that TensorFlow runs the kernels its setting asked for.
    script.main(["tiny_vqa", "--variant", "text_branch=gru", "--rounds", "1", "--steps", "1",
                 "--warmup", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny_vqa: one training step of batch 16 (medians of 1 rounds")
    assert lines[0].endswith("recurrent layers: text_gru_gru)")
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in lines[2:]}
    assert list(rows) == [("Eigen", "loop"), ("Eigen", "unrolled"), ("oneDNN", "loop"),
                          ("oneDNN", "unrolled")]
    assert rows[("Eigen", "loop")][-2:] == ["1.00", "1.00"]
    assert all(float(row[0]) > 0 and float(row[2]) > 0 for row in rows.values())
    with pytest.raises(SystemExit, match="fusion"):  # refused before any child starts
        script.main(["tiny_vqa", "--variant", "fusion=nope"])


def test_training_step_bench_times_the_recipe_and_its_variants_side_by_side(capsys):
    script = _training_step_script()
    script.main(["tiny_vqa", "--variant", "image_filters=8,fusion=film",
                 "--variant", "batch_size=8", "--rounds", "2", "--steps", "1", "--warmup", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny_vqa: one training step (median of 2 rounds of 1 steps")
    rows = {line[:40].strip(): line[40:].split() for line in lines[2:]}
    assert list(rows) == ["recipe as written", "image_filters=8,fusion=film", "batch_size=8"]
    assert rows["recipe as written"][-1] == "1.00"  # the ratio is to the recipe's own step
    # A narrower image branch has fewer weights; a batch size alone changes none.
    params = {k: int(v[1].replace(",", "")) for k, v in rows.items()}
    assert params["image_filters=8,fusion=film"] != params["recipe as written"]
    assert params["batch_size=8"] == params["recipe as written"] and rows["batch_size=8"][0] == "8"


def test_training_step_bench_variants_are_parsed_and_bad_ones_refused():
    import argparse

    script = _training_step_script()
    assert script.parse_variant("image_filters=16,fusion_dim=48,fusion=film") == {
        "image_filters": 16, "fusion_dim": 48, "fusion": "film"}
    assert script.parse_variant("hidden_units=[128]") == {"hidden_units": [128]}
    # A recipe's spelling of booleans, and Python's.
    assert script.parse_variant("jit_compile=true") == {"jit_compile": True}
    assert script.parse_variant("jit_compile=False") == {"jit_compile": False}
    with pytest.raises(argparse.ArgumentTypeError, match="key=value"):
        script.parse_variant("image_filters")
    from mmzoo.training import load_recipe

    recipe = load_recipe("tiny_vqa")
    changed = script.variant_recipe(recipe, {"batch_size": 8, "image_filters": 6})
    assert changed.training["batch_size"] == 8 and changed.model["image_filters"] == 6
    assert changed.model["fusion"] == "concat"  # the other options stay the recipe's
    assert (recipe.training["batch_size"], recipe.model["image_filters"]) == (16, 4)
    assert script.variant_recipe(recipe, {}).to_dict() == recipe.to_dict()
    # jit_compile is how a step runs: a [training] key, checked as in a recipe file.
    assert script.variant_recipe(recipe, {"jit_compile": True}).training["jit_compile"] is True
    with pytest.raises(ValueError, match="jit_compile"):
        script.variant_recipe(recipe, {"jit_compile": "yes"})
    with pytest.raises(ValueError, match="image_filters"):
        script.variant_recipe(recipe, {"image_filters": -1})
    # From the command line, before any model is built: the message, not a traceback.
    with pytest.raises(SystemExit, match=r"training_step.py: .*jit_compile must be 'auto', true"):
        script.main(["tiny_vqa", "--variant", "image_filters=6", "--variant", "jit_compile=yes"])
