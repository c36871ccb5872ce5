"""The fusion benchmark script runs end to end (tiny budget) and writes its three files."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_fusion_bench_smoke_run_writes_table_chart_and_json(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fusion.py"), "--smoke", "--tasks", "vqa",
         "--fusions", "concat,late,film,relation", "--members", "2", "--image-size", "32",
         "--image-blocks", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "fusion.json").read_text())["results"]["vqa"]
    # Both baselines, each fusion (late twice: mean and product rule; FiLM once more
    # with Perez et al.'s blocks), the relation network, the ensemble.
    assert [r["model"] for r in rows] == ["image only", "text only", "concat", "late",
                                          "late (product rule)", "film",
                                          "film (4 blocks, CoordConv, max-pool)", "relation",
                                          "bagging (2 x concat)"]
    assert all(0 <= r["accuracy"] <= 1 and r["params"] > 0 and r["latency_ms_b64"] > 0
               for r in rows)
    table = (tmp_path / "fusion.md").read_text()
    assert "| late (product rule) |" in table and "image_branch='convnet'" in table
    assert (tmp_path / "fusion.png").read_bytes()[:4] == b"\x89PNG"
