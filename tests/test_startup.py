"""`mmzoo --help`, `mmzoo list` and `mmzoo info` start without TensorFlow.

They read only argparse and the entries' files, so they must not import
TensorFlow or Keras (seconds of start-up and TensorFlow's C++ log lines).
Timings are in `bench/startup.py`; these tests check the behaviour.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "shapes_vqa"  # a shipped entry
# TensorFlow's C++ lines: absl's banner, `I0000 00:00:1795... port.cc:153] oneDNN ...`,
# `... cudart_stub.cc:31] Could not find cuda drivers ...`, the CPU feature guard.
TF_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|oneDNN custom|"
                     r"cudart_stub|cpu_feature_guard|rebuild TensorFlow with")


def _env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["MMZOO_HOME"] = str(tmp_path / "home")  # only the shipped entries
    return env


def _commands():
    """The console script as installed beside this interpreter, and `python -m mmzoo`."""
    script = Path(sys.executable).with_name("mmzoo")
    runs = [[sys.executable, "-m", "mmzoo"]]
    if script.is_file():
        runs.insert(0, [str(script)])
    return runs


@pytest.mark.parametrize("args", [("--help",), ("list",), ("info", ENTRY), ("info", "--help"),
                                  ("list", "--json")])
def test_light_commands_print_no_tensorflow_lines(tmp_path, args):
    for command in _commands():
        result = subprocess.run([*command, *args], capture_output=True, text=True,
                                timeout=120, env=_env(tmp_path), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        noisy = [line for line in (result.stdout + result.stderr).splitlines()
                 if TF_LINE.search(line)]
        assert not noisy, f"{' '.join(command[-1:] + list(args))} printed: {noisy[:3]}"
    if args[0] == "info" and len(args) == 2 and args[1] == ENTRY:
        assert result.stdout.startswith(f"# {ENTRY}")
        assert "Verified: " in result.stdout and "sha256 match metadata.json" in result.stdout


PROBE = """
import contextlib, io, json, sys
import mmzoo.cli

def run(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = mmzoo.cli.main(list(args))
        except SystemExit as e:  # --help
            code = e.code
    return code, out.getvalue()

(c1, _), (c2, card), (c3, listed), (c4, _) = (run("list"), run("info", "%s"),
                                              run("list", "--json"), run("--help"))
import mmzoo, mmzoo.zoo, mmzoo.export
print(json.dumps({"codes": [c1, c2, c3, c4], "card": card[:200],
                  "listed": [row["name"] for row in json.loads(listed)],
                  "version": mmzoo.__version__, "zoo_list": mmzoo.zoo.list_models(),
                  "heavy": sorted(m for m in ("tensorflow", "keras", "tensorflow_datasets",
                                              "mmzoo.zoo.entry", "mmzoo.export.api")
                                  if m in sys.modules)}))
""" % ENTRY


def test_cli_list_and_info_import_no_tensorflow(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            timeout=120, env=_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["codes"] == [0, 0, 0, 0] and found["card"].startswith(f"# {ENTRY}")
    shipped = sorted(p.name for p in (ROOT / "saved_models").iterdir()
                     if (p / "metadata.json").is_file())
    assert found["listed"] == found["zoo_list"] == shipped and ENTRY in shipped
    from mmzoo._version import __version__

    assert found["version"] == __version__
    assert found["heavy"] == [], f"the light commands imported {found['heavy']}"


def test_info_still_refuses_a_changed_file(tmp_path):
    entry = tmp_path / "models" / "changed"
    shutil.copytree(ROOT / "saved_models" / ENTRY, entry)
    with open(entry / "tokenizer.json", "a", encoding="utf-8") as f:
        f.write(" ")
    result = subprocess.run([sys.executable, "-m", "mmzoo", "info", str(entry)],
                            capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'tokenizer.json'" in result.stderr and "truncated or was replaced" in result.stderr


def test_keras_then_mmzoo_registers_the_layers(tmp_path):
    # The README's `import keras, mmzoo` before `keras.saving.load_model`.
    code = ("import keras, mmzoo, sys; "
            "print(all(keras.saving.get_registered_object(f'mmzoo>{n}') is not None "
            "for n in ('MultimodalModel', 'CaptioningModel', 'FiLMFusion')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env={**_env(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "True"


def _probe(monkeypatch, variable):
    """`mmzoo probe`, a command that records `variable` as the command sees it."""
    import mmzoo.cli as cli

    seen = []
    monkeypatch.setitem(cli.COMMANDS, "probe", (lambda parser: None,
                                                lambda args: seen.append(os.environ.get(variable)),
                                                "records the environment"))
    monkeypatch.delenv(variable, raising=False)
    return lambda: cli.main(["probe"]), seen


def test_commands_run_with_quiet_tensorflow_unless_the_user_chose(monkeypatch):
    probe, seen = _probe(monkeypatch, "TF_CPP_MIN_LOG_LEVEL")
    assert probe() == 0
    assert seen == ["2"] and "TF_CPP_MIN_LOG_LEVEL" not in os.environ  # put back
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert probe() == 0
    assert seen == ["2", "0"] and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_commands_turn_on_onednn_before_tensorflow_unless_the_user_chose(monkeypatch):
    import tensorflow  # noqa: F401  (as after any test that ran a model)

    probe, seen = _probe(monkeypatch, "TF_ENABLE_ONEDNN_OPTS")
    # TensorFlow is imported in this process: the setting would come too late
    # (TensorFlow reads it once), so it is left alone.
    assert probe() == 0
    assert seen == [None]
    monkeypatch.delitem(sys.modules, "tensorflow")  # as in a fresh `mmzoo` process
    assert probe() == 0
    assert seen == [None, "1"]
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the user's choice is kept
    assert probe() == 0
    assert seen == [None, "1", "0"]


def test_startup_bench_runs_and_writes_its_table(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "startup.py"), "--rounds", "1",
                             "--warmup", "0", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300,
                            env={**_env(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "startup.json").read_text())["results"]
    assert [r["command"] for r in rows] == ['python -c "import tensorflow"', "mmzoo --help",
                                            "mmzoo list", f"mmzoo info {ENTRY}"]
    assert all(r["min_s"] <= r["median_s"] <= r["max_s"] and r["runs"] == 1 for r in rows)
    assert rows[0]["ratio_of_medians"] == 1.0
    assert "| `mmzoo list` |" in (tmp_path / "startup.md").read_text()
