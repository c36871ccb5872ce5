"""Grad-CAM and HiResCAM peak hits of an entry folder, as `tests/test_explain.py` measures them.

Usage (from the repository root): python bench/results/shapes_vqa_word_subsampling/peaks.py ENTRY

Prints, for each method and map (FiLM's last map, "last"; the image branch's,
"branch"), the share of the test's colour and shape questions whose heat-map
peak lies on the object the question names. Unlike the test, it needs no
published entry.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tests"))
import mmzoo
from test_explain import _peak_hits

vqa = mmzoo.load(sys.argv[1])
for method in ("grad_cam", "hirescam"):
    for layer in ("last", "branch"):
        print(method, layer, round(float(_peak_hits(vqa, method, layer)), 3), flush=True)
