"""tf.distribute: 2 logical CPUs (mirrored), 2 local workers (multiworker), the TPU path."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mmzoo.training import distribute

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = ROOT / "recipes" / "tiny_vqa.toml"
EPOCHS = 2  # 2 x 4 steps of a global batch of 16

# One training process. Logical devices must be configured before TensorFlow
# initialises, hence a fresh process per strategy.
WORKER = textwrap.dedent("""
    import os, sys, time
    import keras, numpy as np
    name, out, recipe, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sleep = float(sys.argv[5])

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(sleep)

    if name == "mirrored":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from mmzoo.training import distribute
    strategy = distribute.get_strategy(name)
    print("replicas", strategy.num_replicas_in_sync, flush=True)
    run = distribute.build_distributed_run(recipe, strategy, epochs=epochs)
    distribute.fit_steps(run, out, strategy=strategy, verbose=0, callbacks=[Slow()])
    np.savez(os.path.join(distribute.worker_dir(out), "weights.npz"), *run.model.get_weights())
""")


def _env(**extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    return {**env, **extra}


def _start(script, name, out, sleep=0.0, **env):
    return subprocess.Popen([sys.executable, str(script), name, str(out), str(TINY), str(EPOCHS),
                             str(sleep)],
                            cwd=ROOT, env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(*procs, timeout=240):
    """Waits for all, killing every one still alive at the end; returns (code, output)s."""
    results = []
    try:
        for proc in procs:
            output, _ = proc.communicate(timeout=timeout)
            results.append((proc.returncode, output))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def _weights(folder):
    data = np.load(pathlib.Path(folder) / "weights.npz")
    return [data[k] for k in data.files]


def _losses(folder):
    lines = (pathlib.Path(folder) / "steps.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("distribute") / "worker.py"
    path.write_text(WORKER)
    return path


@pytest.fixture(scope="module")
def single(script, tmp_path_factory):
    """One device, the same global batch: the reference run."""
    out = tmp_path_factory.mktemp("single")
    [(code, output)] = _finish(_start(script, "default", out))
    assert code == 0, output
    return out


def _assert_same_run(folder, reference):
    for a, b in zip(_weights(folder), _weights(reference), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_losses(folder), _losses(reference), rtol=1e-5)
    assert len(_losses(folder)) == EPOCHS * 4


def test_mirrored_over_two_logical_cpus_matches_one_device(script, single, tmp_path):
    [(code, output)] = _finish(_start(script, "mirrored", tmp_path))
    assert code == 0, output
    assert "replicas 2" in output
    _assert_same_run(tmp_path, single)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epochs_done"] == EPOCHS and len(state["history"]["val_loss"]) == EPOCHS
    assert (tmp_path / "checkpoints" / "best.keras").exists()


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(script, out, sleep=0.0):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    return [_start(script, "multiworker", out, sleep,
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": i}}))
            for i in range(2)]


def test_two_local_workers_match_one_worker(script, single, tmp_path):
    # Both workers killed (SIGKILL) mid-run, then restarted: they resume.
    procs = _start_workers(script, tmp_path, sleep=0.3)
    try:
        deadline = time.monotonic() + 120
        log = tmp_path / "steps.jsonl"
        while time.monotonic() < deadline and all(p.poll() is None for p in procs) and (
                not log.exists() or len(log.read_text().splitlines()) < 3):
            time.sleep(0.05)
        assert all(p.poll() is None for p in procs), _finish(*procs)
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
    finally:
        _finish(*procs)
    assert distribute.has_backup(tmp_path)
    results = _finish(*_start_workers(script, tmp_path), timeout=240)
    for code, output in results:
        assert code == 0, output
        assert "replicas 2" in output
    chief, other = tmp_path, tmp_path / "worker-1"
    # Identical weights on both workers, and those of one worker with the same global batch.
    for a, b in zip(_weights(chief), _weights(other), strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_same_run(chief, single)
    np.testing.assert_allclose(_losses(other), _losses(chief), rtol=1e-6)
    lines = (chief / "steps.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, EPOCHS * 4 + 1))
    assert (chief / "checkpoints" / "best.keras").exists()
    assert (chief / "logs" / "train").exists() and not (other / "logs").exists()


def test_tpu_without_a_tpu_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mmzoo", "train", str(TINY), "--strategy", "tpu",
         "--out", str(tmp_path / "entry"), "--work-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120, env=_env(), cwd=tmp_path)
    assert result.returncode == 1
    assert "mmzoo train: error: Could not connect to a TPU" in result.stderr
    assert "Received: --tpu='local'" in result.stderr and "Traceback" not in result.stderr


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match="Expected one of default, mirrored, multiworker, tpu. "
                                         "Received: strategy='gpus'"):
        distribute.get_strategy("gpus")


def test_the_step_compiles_with_xla_on_cpu():
    import keras
    import tensorflow as tf

    def model():
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        m.optimizer.build(m.trainable_variables)
        return m

    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.arange(8) % 3
    strategy = tf.distribute.get_strategy()
    eager, xla = model(), model()
    eager_step, _ = distribute.make_step_functions(eager, strategy)
    xla_step, _ = distribute.make_step_functions(xla, strategy, jit_compile=True)
    for _ in range(3):
        a, b = eager_step((x, y)), xla_step((x, y))
    np.testing.assert_allclose(float(a["loss"]), float(b["loss"]), rtol=1e-5)
    for u, v in zip(eager.get_weights(), xla.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    # The XLA step really is an XLA cluster.
    hlo = xla_step.get_concrete_function((x, y)).graph.as_graph_def()
    assert any(n.attr["_XlaMustCompile"].b for n in hlo.node) or any(
        f.attr["_XlaMustCompile"].b for f in hlo.library.function)
