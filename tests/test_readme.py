"""Every Python block of README.md runs as written, top to bottom in one session."""

import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def python_blocks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_python_blocks():
    assert len(python_blocks()) >= 10


def test_every_readme_block_runs(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)             # files the blocks write land here
    monkeypatch.setenv("HOME", str(tmp_path))  # and "~/..." folders too
    namespace = {"__name__": "__readme__"}
    for i, block in enumerate(python_blocks(), start=1):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as e:  # name the block, not just the line
            pytest.fail(f"README.md python block {i} failed: {type(e).__name__}: {e}\n{block}")
    assert (tmp_path / "scene.png").exists() and (tmp_path / "why.png").exists()
    assert not (tmp_path / "~").exists()
