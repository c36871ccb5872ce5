import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # effective only for subprocesses (kernels)
# Speech synthesised by any test (and its subprocesses) goes to a throw-away
# cache, never into the user's ~/.cache/mmzoo/speech.
os.environ.setdefault("MMZOO_SPEECH_CACHE", tempfile.mkdtemp(prefix="mmzoo-speech-cache-"))

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state, so failures reproduce."""
    keras.utils.set_random_seed(1234)
    yield


def execute_notebook(path, timeout=600, parameters=None):
    """Executes a notebook in a kernel running this interpreter; fails on any cell error.

    Args:
        path: the `.ipynb` file.
        timeout: seconds allowed per cell.
        parameters: `{name: value}` assignments run right after the cell tagged
            "parameters" (papermill's convention), to shrink a notebook's
            settings (epochs, sizes) for the test suite.

    Returns:
        The executed notebook (`nbformat.NotebookNode`).
    """
    import sys

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if parameters:
        code = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
        tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
        nb.cells.insert(tagged[0] + 1 if tagged else 0, nbformat.v4.new_code_cell(code))
    # The "python3" kernel starts `python` from PATH: make that this interpreter.
    bindir = os.path.dirname(sys.executable)
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = bindir + os.pathsep + old_path
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}
                       ).execute()
    finally:
        os.environ["PATH"] = old_path
    return nb
