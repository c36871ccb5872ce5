"""Build hook: the wheel carries the shipped zoo entries and recipes.

Everything else is declared in setup.cfg. `saved_models/` and `recipes/` stay
at the repository root (where `mmzoo train` and `mmzoo publish` work on them);
a non-editable build copies them into the package as `mmzoo/_shipped/`, where
`mmzoo.shipped.shipped_dir` finds them after `pip install .`.
"""

import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent


class BuildPyWithZoo(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own folders
        for kind in ("saved_models", "recipes"):
            source = ROOT / kind
            target = pathlib.Path(self.build_lib) / "mmzoo" / "_shipped" / kind
            if target.exists():
                shutil.rmtree(target)
            if source.is_dir():
                shutil.copytree(source, target,
                                ignore=shutil.ignore_patterns(".*", "__pycache__"))


setup(cmdclass={"build_py": BuildPyWithZoo})
