"""Writes a generated notebook, optionally executed: shared by the `make_*.py` scripts.

`write(cells, "name.ipynb")` saves `notebooks/name.ipynb`; with `--execute` on
the command line the notebook is first run top to bottom at its full settings
(in a kernel on this interpreter) so that it is saved with its outputs.
TensorFlow's C++ start-up log lines, which no environment variable silences in
TF 2.21, are dropped from the saved stderr.
"""

import os
import re
import sys

import nbformat
from nbformat.v4 import new_notebook

NOTEBOOKS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# TensorFlow's C++ log lines ("I0000 00:00:... port.cc:153] ...") and their
# continuation, written to the kernel's stderr when TensorFlow starts.
_TF_LOG = re.compile(
    r"^([IWE]\d{4} \S+ +\d+ \S+:\d+\]|WARNING: All log messages before absl|"
    r"To enable the following instructions|INFO: Created TensorFlow Lite)")


def execute(nb, path, timeout=900):
    """Runs `nb` in a kernel on this interpreter (cwd: `path`'s folder); returns it."""
    from nbclient import NotebookClient

    # The "python3" kernel starts `python` from PATH: make that this interpreter.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                lines = [line for line in output["text"].splitlines(keepends=True)
                         if line.strip() and not _TF_LOG.match(line)]
                if not lines:
                    continue
                output["text"] = "".join(lines)
            kept.append(output)
        cell["outputs"] = kept
    return nb


def write(cells, filename, argv=None):
    """Saves the cells as `notebooks/<filename>` (executed first with `--execute`)."""
    argv = sys.argv[1:] if argv is None else argv
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    path = os.path.join(NOTEBOOKS, filename)
    executed = "--execute" in argv
    if executed:
        nb = execute(nb, path)
    nbformat.write(nb, path)
    print("wrote", path, "(executed)" if executed else "")
    return path
