"""A path given as "~/..." means the home folder everywhere mmzoo takes a path (never a folder named "~")."""

import mmzoo
from mmzoo.data import Preprocessor, shapes_arrays


def test_tilde_paths_mean_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    x, y, info = shapes_arrays("classification", 16, image_size=32)
    model = mmzoo.build_model("classification", image_branch="cnn", image_filters=2,
                              pooling="max", text_branch="embedding", embedding_dim=2,
                              **info.model_options())
    pre = Preprocessor.from_task_info(info)
    saved = mmzoo.zoo.save_entry("~/zoo/tiny", model, pre, metadata={})
    assert saved == tmp_path / "home" / "zoo" / "tiny"
    entry = mmzoo.load("~/zoo/tiny")
    assert entry.predict(images=x["image"][:1], texts="what colour is the circle?")
    mmzoo.export(model, "~/exports/tiny.tflite", format="tflite", verbose=False)
    assert (tmp_path / "home" / "exports" / "tiny.tflite").is_file()
    ds = mmzoo.data.shapes_dataset("classification", "validation", data_dir="~/tfds",
                                   config="tiny", batch_size=8)
    assert next(iter(ds))[1].shape[0] == 8
    assert (tmp_path / "home" / "tfds").is_dir()
    assert not (tmp_path / "~").exists()


def test_a_killed_entry_write_is_swept_by_the_next(tmp_path):
    import subprocess
    import sys

    from mmzoo.zoo.entry import staging_folder

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    left = tmp_path / f".tiny.partial-{dead}-0a1b2c3d"  # a writer killed mid-save
    left.mkdir()
    (left / "model.keras").write_text("half")
    mine = tmp_path / f".tiny.partial-{__import__('os').getpid()}-deadbeef"  # a live one
    mine.mkdir()
    other = tmp_path / ".other.partial-1-00000000"  # another entry's: not ours to judge
    other.mkdir()
    new = staging_folder(tmp_path, "tiny")
    assert new.is_dir() and not left.exists() and mine.exists() and other.exists()
