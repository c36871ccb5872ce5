"""How fast mmzoo-shapes is generated, in scenes per second.

Measures, for each image size, the median over several runs (wall clock, and
per CPU-second of this process: the machine may be shared, and CPU time is
what the generator itself costs) of
  * `generate`: the in-memory generator (`shapes.generate_scenes`: scene
    graphs, texts, vectorised rendering), per split;
  * `tfds`: a full TFDS build (`download_and_prepare` into a temporary
    folder: generation, PNG encoding, serialisation, shuffling, writing).

Usage:
    python bench/shapes_generation.py [--scenes 2000] [--runs 5] [--sizes 32 64 128]
"""

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _median_rate(fn, scenes, runs):
    """(median, min, max) scenes per wall-clock second, and the median scenes
    per CPU-second of this process (all its threads)."""
    rates, cpu_rates = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        rates.append(scenes / (time.perf_counter() - t))
        cpu_rates.append(scenes / max(time.process_time() - c, 1e-9))
    return statistics.median(rates), min(rates), max(rates), statistics.median(cpu_rates)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=2000, help="scenes per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--no-tfds", action="store_true", help="skip the TFDS builds")
    args = parser.parse_args(argv)

    import tensorflow_datasets as tfds
    from absl import logging

    from mmzoo.data import shapes, shapes_config

    logging.set_verbosity(logging.ERROR)  # no "custom data configuration" lines per build

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"mmzoo-shapes generation, {args.scenes} scenes per run, median of {args.runs} "
          f"runs ({os.cpu_count()} CPUs, load average {load:.1f} at the start)\n")
    print("| size | what | scenes/s (median) | min | max | scenes per CPU-second (median) |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        shapes.generate_scenes(16, image_size=size)  # warm the noise bank
        for split in ("train", "test"):
            median, low, high, cpu = _median_rate(
                lambda: shapes.generate_scenes(args.scenes, split, image_size=size),
                args.scenes, args.runs)
            print(f"| {size} | generate ({split}) | {median:,.0f} | {low:,.0f} | {high:,.0f} "
                  f"| {cpu:,.0f} |", flush=True)
        if args.no_tfds:
            continue
        # Train only in the config, so every scene counted is one written.
        n_val = n_test = 1
        total = args.scenes + n_val + n_test

        def build():
            folder = tempfile.mkdtemp(prefix="mmzoo_bench_")
            try:
                config = shapes_config(size, args.scenes, n_val, n_test)
                with contextlib.redirect_stdout(io.StringIO()):  # TFDS's "preparing" lines
                    tfds.builder("mmzoo_shapes", config=config,
                                 data_dir=folder).download_and_prepare()
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        tfds.disable_progress_bar()
        median, low, high, cpu = _median_rate(build, total, args.runs)
        print(f"| {size} | tfds build | {median:,.0f} | {low:,.0f} | {high:,.0f} | {cpu:,.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
