"""Training throughput with 1 and 2 replicas, measured in one run.

The devices are whatever this machine has: two GPUs when there are two,
otherwise the CPU split into two logical devices (which share the same cores:
the ratio then shows the overhead of mirroring, not a speed-up). Each replica
gets the same batch (`--batch-per-replica`), so the global batch doubles with
two replicas; throughput is training rows per second, the median of
`--repeats` timings of `--steps` steps after a warm-up.

    python bench/scaling.py                      # recipes/tiny_vqa.toml
    python bench/scaling.py recipes/mobile_vqa.toml --steps 20 --repeats 5
"""

import argparse
import json
import statistics
import sys
import time


def _devices():
    """Two devices of one kind: GPUs if there are two, else two logical CPUs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= 2:
        return [d.name for d in tf.config.list_logical_devices("GPU")[:2]], "GPU"
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return [d.name for d in tf.config.list_logical_devices("CPU")[:2]], "logical CPU"


def measure(recipe, devices, batch_per_replica, steps, repeats):
    """Training rows per second under a `MirroredStrategy` over `devices`."""
    import tensorflow as tf

    from mmzoo.training import Recipe, load_recipe
    from mmzoo.training.distribute import _distribute, build_distributed_run, make_step_functions

    recipe = load_recipe(recipe) if not isinstance(recipe, Recipe) else recipe
    config = recipe.to_dict()
    global_batch = batch_per_replica * len(devices)
    config["training"]["batch_size"] = global_batch
    # Enough rows for the timed steps without running the stream dry.
    config["dataset"]["num_train"] = max(config["dataset"]["num_train"], 4 * global_batch)
    recipe = Recipe.from_dict(config, recipe.path or "<recipe>")
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    run = build_distributed_run(recipe, strategy)
    with strategy.scope():
        run.model._symbolic_build(data_batch=run.data.train.element_spec)
        run.model.optimizer.build(run.model.trainable_variables)
    iterator = iter(_distribute(run.data.train.repeat(), strategy, global_batch))
    train_step, _ = make_step_functions(run.model, strategy)
    for _ in range(3):  # tracing and warm-up
        float(train_step(next(iterator))["loss"])
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            logs = train_step(next(iterator))
        float(logs["loss"])  # waits for the last step
        timings.append(time.perf_counter() - start)
    seconds = statistics.median(timings)
    return {"replicas": len(devices), "global_batch": global_batch,
            "rows_per_second": steps * global_batch / seconds,
            "median_seconds": seconds, "timings": timings}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="recipes/tiny_vqa.toml")
    parser.add_argument("--batch-per-replica", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    devices, kind = _devices()  # before TensorFlow initialises
    results = [measure(args.recipe, devices[:n], args.batch_per_replica, args.steps,
                       args.repeats) for n in (1, 2)]
    for r in results:
        print(f"{r['replicas']} replica(s) on {kind}: global batch {r['global_batch']}, "
              f"{r['rows_per_second']:.1f} rows/s (median of {args.repeats} x {args.steps} "
              f"steps: {r['median_seconds']:.3f} s)")
    ratio = results[1]["rows_per_second"] / results[0]["rows_per_second"]
    print(f"2 / 1 replicas throughput ratio: {ratio:.2f} ({kind})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"devices": kind, "results": results, "ratio": ratio}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
