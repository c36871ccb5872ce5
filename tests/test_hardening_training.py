"""Issue 14, hardening of the other writers: training run folders, backups, the demo.

A run or the demo writes into a folder only when it is new, empty or mmzoo's
own output (marked by `.mmzoo-output.json`, or an earlier version's run);
a kill during a backup write leaves a file the next run removes.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from mmzoo.training import loop, resume


MARKER = ".mmzoo-output.json"


def claim_folder(*args, **kwargs):
    from mmzoo._folders import claim_folder

    return claim_folder(*args, **kwargs)


def read_marker(folder):
    from mmzoo._folders import read_marker

    return read_marker(folder)


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _users_folder(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "thesis.txt").write_text("four years of work")
    (folder / "metrics.json").write_text('{"mine": 1}')
    return folder


def _untouched(folder):
    assert sorted(os.listdir(folder)) == ["metrics.json", "thesis.txt"]
    assert (folder / "metrics.json").read_text() == '{"mine": 1}'


# ------------------------------------------------------------------ run folders


def test_train_refuses_a_folder_of_the_users_before_any_work(tmp_path):
    folder = _users_folder(tmp_path)
    with pytest.raises(FileExistsError, match="not the output folder of an mmzoo training run") \
            as info:
        loop.train("recipes/tiny_vqa.toml", folder)
    assert f"Received: out_dir={str(folder)!r}" in str(info.value)
    _untouched(folder)


def test_fit_refuses_a_folder_of_the_users(tmp_path):
    folder = _users_folder(tmp_path)
    with pytest.raises(FileExistsError, match="will not write into it"):
        loop.fit(None, folder)  # refused before the run is even looked at
    _untouched(folder)


def test_run_folders_new_empty_marked_or_earlier_are_accepted(tmp_path):
    new = loop.claim_run_folder(tmp_path / "new" / "run")
    assert read_marker(new)["kind"] == loop.RUN_KIND
    assert loop.claim_run_folder(new) == new  # again: marked
    empty = tmp_path / "empty"
    empty.mkdir()
    loop.claim_run_folder(empty)
    assert os.listdir(empty) == [MARKER]
    # A run folder of an earlier version (no marker) is recognised by its files.
    earlier = tmp_path / "earlier"
    (earlier / "backup").mkdir(parents=True)
    (earlier / "state.json").write_text("{}")
    (earlier / "state.tmp").write_text("{torn")
    loop.claim_run_folder(earlier)
    assert read_marker(earlier)["kind"] == loop.RUN_KIND
    assert not (earlier / "state.tmp").exists()  # a kill's leftover, removed
    with pytest.raises(FileExistsError, match="is a file"):
        loop.claim_run_folder(earlier / "state.json")
    # A cluster's other worker may create its sub-folder before the chief claims its own.
    chief = tmp_path / "chief"
    loop.claim_run_folder(chief / "worker-1")
    loop.claim_run_folder(chief)
    assert read_marker(chief)["kind"] == loop.RUN_KIND


def test_a_folder_marked_for_something_else_is_refused(tmp_path):
    claim_folder(tmp_path / "demo", "demo")
    with pytest.raises(FileExistsError, match="output folder of an mmzoo demo, not of a "
                                              "training run"):
        loop.claim_run_folder(tmp_path / "demo")


# ---------------------------------------------------------------------- backups


def _compiled_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    return model


def test_backup_written_by_a_killed_process_is_removed_by_the_next_run(tmp_path):
    folder = tmp_path / "backup"
    folder.mkdir()
    dead = folder / f"backup.npz.tmp-{_dead_pid()}"
    dead.write_bytes(b"half a backup")
    alive = folder / f"backup.npz.tmp-{os.getppid()}"  # a live writer: not ours to remove
    alive.write_bytes(b"being written")
    backup = resume.Backup(folder)
    assert backup.restore(_compiled_model()) is None  # nothing finished to resume from
    assert not dead.exists() and alive.exists()
    dead.write_bytes(b"half a backup")
    backup.save(_compiled_model(), step=3)
    assert sorted(os.listdir(folder)) == ["backup.npz", alive.name]


def test_a_backup_killed_while_writing_never_looks_finished(tmp_path):
    """The unfinished file is named .tmp-<pid>: `exists()` and `restore` ignore it."""
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / f"backup.npz.tmp-{_dead_pid()}").write_bytes(b"torn")
    backup = resume.Backup(folder)
    assert not backup.exists() and backup.header() is None


# ------------------------------------------------------------------------- demo


def test_demo_refuses_a_folder_of_the_users(tmp_path):
    from mmzoo.demo import run_demo

    folder = _users_folder(tmp_path)
    with pytest.raises(FileExistsError, match="so the demo will not write into it"):
        run_demo(out=str(folder), entry=None, verbose=0)
    _untouched(folder)


def test_demo_folder_of_an_earlier_version_is_accepted(tmp_path):
    from mmzoo.demo import DEMO_KIND, _is_legacy_demo_folder

    folder = tmp_path / "demo"
    (folder / "export").mkdir(parents=True)
    (folder / "demo_model.keras").write_bytes(b"x")
    assert _is_legacy_demo_folder(folder)
    claim_folder(folder, DEMO_KIND, legacy=_is_legacy_demo_folder)
    assert read_marker(folder)["kind"] == DEMO_KIND


def test_demo_export_replaces_only_mmzoo_exports(tmp_path, monkeypatch):
    """The demo no longer empties out/export; each export may replace only mmzoo's files."""
    import mmzoo
    from mmzoo import demo

    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "thesis.txt").write_text("mine")
    calls = []

    class Report:
        passed = True
        checks = []
        size_bytes = 0

        def __str__(self):
            return "report"

    def fake_export(entry, path, **kwargs):
        calls.append(kwargs)
        return Report()

    class Entry:
        name = "entry"
        task = "vqa"

    monkeypatch.setattr(mmzoo, "export", fake_export)
    demo._export_part(Entry(), str(tmp_path), 0, lambda *a, **k: None, {})
    assert (export_dir / "thesis.txt").read_text() == "mine"
    assert calls and all(c["overwrite"] is True for c in calls)


def test_marker_is_json_that_names_its_kind(tmp_path):
    claim_folder(tmp_path / "x", "demo")
    data = json.loads((tmp_path / "x" / MARKER).read_text())
    assert data["format"] == "mmzoo-output" and data["kind"] == "demo"


TORN = b"PK\x03\x04 torn"


def test_a_checkpoint_killed_while_saving_leaves_the_last_complete_one(tmp_path, monkeypatch):
    from mmzoo.training.callbacks import AtomicModelCheckpoint, partial_path

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    path = tmp_path / "checkpoints" / "last.keras"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[AtomicModelCheckpoint(str(path))])
    saved = [w.copy() for w in keras.saving.load_model(path).get_weights()]
    assert not os.path.exists(partial_path(path))

    def killed_halfway(filepath, *args, **kwargs):  # a save that dies mid-file
        with open(filepath, "wb") as f:
            f.write(TORN)
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[AtomicModelCheckpoint(str(path))])
    # The checkpoint is still the last complete one; the torn file is beside it.
    for a, b in zip(keras.saving.load_model(path).get_weights(), saved):
        np.testing.assert_array_equal(a, b)
    assert open(partial_path(path), "rb").read() == TORN
