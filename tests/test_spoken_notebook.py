"""notebooks/spoken_shapes.ipynb runs top to bottom (small settings): plots, players, every voice."""

import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import execute_notebook
from mmzoo.data import speech

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "spoken_shapes.ipynb"

# Skipped where espeak-ng is missing, except on CI (.ci/run installs it there).
pytestmark = pytest.mark.skipif(shutil.which(speech.ESPEAK) is None and not os.environ.get("CI"),
                                reason="espeak-ng is not installed")


def test_spoken_notebook_shows_and_plays_the_data():
    nb = execute_notebook(NOTEBOOK, parameters={"NUM_SCENES": 2, "SEED": 3})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "(2, 48000) float32" in text
    assert "log-mel: (2, 298, 40) (examples, frames, bands)" in text
    spoken = re.findall(r"^(\w+) +(is|are|what|how) ", text, re.M)
    assert len(spoken) == 2 and all(v in speech.VOICE_NAMES for v, _ in spoken), text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # scenes with waveforms and log-mels; one question in every voice
    players = [o for o in outputs if "<audio" in "".join(o.get("data", {}).get("text/html", ""))]
    assert len(players) == 3  # one per scene, one for the question in the first voice
