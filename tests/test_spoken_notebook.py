"""notebooks/spoken_shapes.ipynb runs top to bottom (small settings): plots, players, every voice."""

import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import execute_notebook
from mmzoo.data import shapes, speech

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
    spoken = [(v, q) for v, q in re.findall(r"^(\w+) +((?:is|are|what|how) .*)$", text, re.M)
              if "->" not in q]  # the questions listed (not the entry's answers further on)
    assert len(spoken) == 2 and all(v in speech.VOICE_NAMES for v, _ in spoken), text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # Scenes with waveforms and log-mels; one question in every voice; the entry's
    # accuracy per voice; its answers to fresh spoken questions.
    assert len(images) == 4
    players = [o for o in outputs if "<audio" in "".join(o.get("data", {}).get("text/html", ""))]
    assert len(players) == 4  # one per scene, the first voice, the question asked last
    # shapes_spoken_vqa answers questions spoken by held-out voices, read from WAV files.
    import mmzoo

    card = mmzoo.load("shapes_spoken_vqa").metadata["metrics"]
    assert f"test accuracy {card['accuracy']:.3f}" in text
    answered = re.findall(r"^(\w+) +.*\? -> (\w+) \((\d\.\d\d)\); truth (\w+)$", text, re.M)
    assert len(answered) == 2, text
    assert all(v in speech.HELD_OUT_VOICES and a in shapes.ANSWERS for v, a, _, _ in answered)
    top3 = re.findall(r"^(\w+) +(0\.\d{3}|1\.000)$", text, re.M)
    assert len(top3) == 3 and all(a in shapes.ANSWERS for a, _ in top3)
