"""The zoo works from a normal install: a built wheel lists and loads every shipped entry."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

CHECK = """
import json, mmzoo
from mmzoo.training import load_recipe
names = mmzoo.list_models()
loaded = {}
for name in names:
    entry = mmzoo.load(name)
    loaded[name] = {"task": entry.metadata["task"], "parameters": entry.model.count_params()}
print(json.dumps({"file": mmzoo.__file__, "names": names, "loaded": loaded,
                  "recipe": load_recipe("tiny_vqa").name}))
"""


def test_wheel_carries_and_loads_every_shipped_entry(tmp_path):
    dist, site = tmp_path / "dist", tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(dist)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("mmzoo-*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
         str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "3",
           "MMZOO_HOME": str(tmp_path / "home")}
    # From a folder outside the checkout: nothing may come from the repository.
    run = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    installed = json.loads(run.stdout.strip().splitlines()[-1])
    assert installed["file"].startswith(str(site))
    shipped = sorted(p.name for p in (ROOT / "saved_models").iterdir()
                     if (p / "metadata.json").is_file())
    assert shipped and installed["names"] == shipped
    assert set(installed["loaded"]) == set(shipped)
    assert installed["recipe"] == "tiny_vqa"
