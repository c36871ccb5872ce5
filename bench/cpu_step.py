"""The CPU kernels of a training step, side by side: Eigen and oneDNN, recurrent layers looped and unrolled.

- **oneDNN.** TensorFlow runs its oneDNN kernels by itself only on CPUs with
  AVX-512 deep-learning instructions; elsewhere (AVX2, AMD) it runs Eigen's.
  The `mmzoo` command (and `./dev`) sets `TF_ENABLE_ONEDNN_OPTS=1` before
  TensorFlow is imported, unless the user set it (`mmzoo/cli.py`).
- **Unrolled recurrent layers** (Keras's `unroll=True`: the time steps as one
  straight graph instead of a symbolic loop). Measured, not adopted: mmzoo's
  GRU and LSTM branches keep the loop. On `shapes_vqa` unrolling saved 3% of
  the CPU time per step, while the unrolled graph is slower to trace, which
  short runs and the tests pay for (six one-epoch fits of small 16-token GRU
  models: 55.6 s unrolled against 40.9 s looped, session 17).

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported, so each
kernel setting runs in a process of its own. Each round starts one child per
setting (Eigen, then oneDNN); each child builds the recipe's model twice (the
same weights), with the recurrent layers looped and unrolled, and times
`--steps` training steps of each on one fixed batch, after warm-up, in turns
of five steps, so that a busy moment falls on both. Printed, per
combination: the median over rounds (min-max) of milliseconds per step, the
median CPU milliseconds per step (process time, all threads: what the data
pipeline competes for during training), and the ratio of the medians to Eigen
with the loop, which is what TensorFlow and Keras do on such a CPU by default.

Usage:
    python bench/cpu_step.py shapes_vqa
    python bench/cpu_step.py tiny_vqa --variant text_branch=gru --rounds 2
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from training_step import parse_variant, variant_recipe  # noqa: E402

SETTINGS = (("Eigen", "0"), ("oneDNN", "1"))


def child(args):
    """Times the recipe's model in this process (one kernel setting); prints JSON."""
    import keras
    import numpy as np
    from tensorflow.python.util import _pywrap_util_port

    from mmzoo.export.parity import synthetic_inputs
    from mmzoo.training.recipe import load_recipe
    from mmzoo.training.run import build_model_for

    recipe = variant_recipe(load_recipe(args.recipe), args.variant or {})
    batch = recipe.training["batch_size"]
    models = {}
    for unroll in (False, True):  # one model per mode, the same weights
        keras.utils.set_random_seed(0)
        model = build_model_for(recipe, steps_per_epoch=1000)
        recurrent = [layer for layer in model._flatten_layers()
                     if isinstance(layer, keras.layers.RNN)]
        for layer in recurrent:
            layer.unroll = unroll
        models[str(unroll) if recurrent else "None"] = model
        if not recurrent:
            break
    x = synthetic_inputs(model, batch, seed=0)
    y = np.random.default_rng(0).integers(0, model.output_shape[-1], batch)
    for model in models.values():
        for _ in range(args.warmup):
            model.train_on_batch(x, y)
    timings = {mode: [0.0, 0.0] for mode in models}
    blocks = max(1, args.steps // 5)  # in turns, a few steps at a time
    for block in range(blocks):
        steps = args.steps // blocks + (block < args.steps % blocks)
        for mode, model in models.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                model.train_on_batch(x, y)
            timings[mode][0] += (time.perf_counter() - wall) / args.steps
            timings[mode][1] += (time.process_time() - cpu) / args.steps
    print(json.dumps({"onednn": bool(_pywrap_util_port.IsMklEnabled()),
                      "recurrent": [layer.name for layer in recurrent],
                      "batch": batch, "timings": timings}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="a recipe file or the name of a shipped recipe")
    parser.add_argument("--variant", type=parse_variant, default=None,
                        help="key=value[,key=value...]: [model] options (or batch_size) "
                             "changed in the recipe first, as in training_step.py")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (one child per setting)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode and child")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    from mmzoo.training.recipe import load_recipe

    try:  # refused here, with the recipe's own error, before any child starts
        recipe = variant_recipe(load_recipe(args.recipe), args.variant or {})
    except ValueError as error:
        raise SystemExit(f"cpu_step.py: {error}") from None
    if recipe.task != "classification":
        raise SystemExit(f"cpu_step.py times classification recipes; {recipe.name} is "
                         f"task={recipe.task!r}")
    command = [sys.executable, os.path.abspath(__file__), args.recipe, "--child",
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.variant:
        command += ["--variant", ",".join(f"{k}={v}" for k, v in args.variant.items())]
    results = {}  # (setting, unroll) -> [(wall, cpu), ...]
    report = None
    for _ in range(args.rounds):
        for setting, value in SETTINGS:
            env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=value)
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"cpu_step.py: the {setting} child failed:\n{done.stderr}")
            report = json.loads(done.stdout.strip().splitlines()[-1])
            if report["onednn"] != (value == "1"):
                raise SystemExit(f"cpu_step.py: TF_ENABLE_ONEDNN_OPTS={value} but TensorFlow "
                                 f"says oneDNN is {'on' if report['onednn'] else 'off'}")
            for unroll, timing in report["timings"].items():
                results.setdefault((setting, unroll), []).append(timing)
    recurrent = ", ".join(report["recurrent"]) or "none"
    print(f"{recipe.name}: one training step of batch {report['batch']} (medians of "
          f"{args.rounds} rounds of {args.steps} steps; recurrent layers: {recurrent})")
    print(f"{'kernels':<8} {'recurrent':<10} {'ms/step':>8} {'(min-max)':>11} "
          f"{'CPU ms/step':>11} {'ratio':>6} {'CPU ratio':>9}")
    base = results[(SETTINGS[0][0], "False" if report["recurrent"] else "None")]
    base_wall = statistics.median(t[0] for t in base)
    base_cpu = statistics.median(t[1] for t in base)
    for (setting, unroll), times in results.items():
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        mode = {"False": "loop", "True": "unrolled", "None": "-"}[unroll]
        spread = f"{min(t[0] for t in times) * 1e3:.0f}-{max(t[0] for t in times) * 1e3:.0f}"
        print(f"{setting:<8} {mode:<10} {wall * 1e3:>8.1f} {spread:>11} {cpu * 1e3:>11.1f} "
              f"{wall / base_wall:>6.2f} {cpu / base_cpu:>9.2f}")


if __name__ == "__main__":
    main()
