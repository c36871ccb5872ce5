"""Exact resume: a run killed with SIGKILL at random points and resumed ends as if never killed."""

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mmzoo.training import resume

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = ROOT / "recipes" / "tiny_vqa.toml"
EPOCHS = 3  # 3 x 4 steps of 16 rows
STEPS = 12

# One training process: kills itself with SIGKILL after global step KILL_AT
# (before or after that step's backup), or sleeps a little per step so the
# test can kill it from outside at a random moment.
WORKER = textwrap.dedent("""
    import os, signal, sys, time
    import keras, numpy as np
    from mmzoo.training import distribute

    out, kill_at, sleep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

    class Kill(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(sleep)
            if int(self.model.optimizer.iterations.numpy()) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    strategy = distribute.get_strategy("default")
    run = distribute.build_distributed_run(sys.argv[4], strategy, epochs=int(sys.argv[5]))
    distribute.fit_steps(run, out, strategy=strategy, verbose=0, backup_every=2,
                         callbacks=[Kill()])
    np.savez(os.path.join(out, "weights.npz"), *run.model.get_weights())
""")


def _start(script, out, kill_at=-1, sleep=0.0):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(kill_at), str(sleep), str(TINY),
         str(EPOCHS)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


def _finish(proc, timeout=180):
    try:
        output, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, output


def _steps(out):
    return [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


def test_killed_runs_resume_exactly(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    rng = random.Random(8)

    ref = _start(script, reference)
    # Kills inside the process at random steps, right after a backup or with
    # the last step not backed up yet (backups every 2 steps and at an epoch's end).
    for kill_at in (rng.choice([3, 4, 5]), rng.choice([6, 7, 9])):
        code, output = _finish(_start(script, resumed, kill_at))
        assert code == -signal.SIGKILL, output
        assert (resumed / "backup" / "backup.npz").exists() 
        assert not list((resumed / "backup").glob("*.tmp-*"))
    # And one kill from outside at a random moment after a step completed.
    proc = _start(script, resumed, sleep=0.3)
    deadline = time.monotonic() + 120
    done = len(_steps(resumed))
    while len(_steps(resumed)) <= done and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    _finish(proc)
    # Resume to the end.
    code, output = _finish(_start(script, resumed))
    assert code == 0, output
    code, output = _finish(ref)
    assert code == 0, output

    a, b = np.load(reference / "weights.npz"), np.load(resumed / "weights.npz")
    assert len(a.files) == len(b.files)
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6)
    # Every step exactly once, with the same loss as the uninterrupted run.
    ref_steps, res_steps = _steps(reference), _steps(resumed)
    assert [s["step"] for s in res_steps] == list(range(1, STEPS + 1))
    for x, y in zip(ref_steps, res_steps):
        assert x["epoch"] == y["epoch"]
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
    # The per-epoch state survived the kills; the backup is gone after the end.
    ref_state = json.loads((reference / "state.json").read_text())
    res_state = json.loads((resumed / "state.json").read_text())
    assert res_state["epochs_done"] == EPOCHS and len(res_state["history"]["loss"]) == EPOCHS
    np.testing.assert_allclose(res_state["history"]["val_loss"],
                               ref_state["history"]["val_loss"], atol=1e-6)
    assert res_state["best_epoch"] == ref_state["best_epoch"]
    assert not (resumed / "backup").exists()


def test_backup_is_replaced_atomically_and_checked(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dropout(0.5)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    backup = resume.Backup(tmp_path / "backup")
    assert backup.restore(model) is None
    backup.save(model, step=3, meta={"epoch": 1})
    saved = [v.numpy().copy() for v in model.optimizer.variables]
    weights = model.get_weights()
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    header = backup.restore(model)
    assert header["step"] == 3 and header["meta"] == {"epoch": 1}
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, v in zip(saved, model.optimizer.variables):
        np.testing.assert_array_equal(a, v.numpy())
    assert model.optimizer.iterations.numpy() == 1
    # The previous backup is kept (workers of a cluster may need it).
    backup.save(model, step=4)
    assert backup.steps() == [4, 3] and backup.header()["step"] == 4
    assert backup.restore(model, step=3)["step"] == 3
    with pytest.raises(ValueError, match=r"No backup of step 9.*Received: step=9"):
        backup.restore(model, step=9)
    # A leftover temp file from a killed save does not matter.
    (tmp_path / "backup" / "backup.npz.tmp-1").write_bytes(b"torn")
    assert backup.header()["step"] == 4

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="does not fit this model.*Received: folder="):
        backup.restore(other)


def test_step_log_is_truncated_to_the_backup(tmp_path):
    log = tmp_path / "steps.jsonl"
    log.write_text("".join(json.dumps({"step": i}) + "\n" for i in range(1, 6)) + '{"st')
    resume.truncate_step_log(log, 3)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]


def test_resume_settings_are_checked(tmp_path):
    from mmzoo import training

    with pytest.raises(ValueError, match="no backup to resume from.*Received: resume=True"):
        training.train(TINY, tmp_path, resume=True, verbose=0)
    with pytest.raises(ValueError, match="Received: resume='yes'"):
        training.train(TINY, tmp_path, resume="yes", verbose=0)


def test_a_resumed_run_counts_the_time_of_its_earlier_processes(tmp_path):
    """The card's training time is the whole run's, not the last process's."""
    import keras

    from mmzoo.training import distribute

    class SlowThenStopped(keras.callbacks.Callback):  # 0.2 s a step; interrupted at step 5
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.2)
            if int(self.model.optimizer.iterations.numpy()) == 5:
                raise KeyboardInterrupt

    strategy = distribute.get_strategy("default")
    run = distribute.build_distributed_run(str(TINY), strategy, epochs=EPOCHS)
    with pytest.raises(KeyboardInterrupt):
        distribute.fit_steps(run, tmp_path, strategy=strategy, verbose=0, backup_every=2,
                             callbacks=[SlowThenStopped()])
    run = distribute.build_distributed_run(str(TINY), strategy, epochs=EPOCHS)
    _, state = distribute.fit_steps(run, tmp_path, strategy=strategy, verbose=0, backup_every=2)
    # The backup of step 4 holds four slow steps of the first process.
    assert state.earlier_seconds >= 0.8 and state.epochs_done == EPOCHS
