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
