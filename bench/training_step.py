"""How long one training step of a recipe's model takes, against variants of it, side by side.

A recipe's training time is its steps times the time of one step (plus the
data pipeline and validation, which this leaves out). Before a 90-minute run,
this says in a minute whether a variant of the recipe's `[model]` section (or
its `batch_size`, or `jit_compile`: XLA, which Keras leaves off on a CPU) fits
a time budget on this machine, and what it costs against the recipe as written.

Each variant's model is built from the recipe (`mmzoo.training.run.build_model_for`,
so with the recipe's optimizer) and trained on one fixed random batch, after
warm-up steps that trace the step function. The variants are timed in turns,
round after round, so that a busy moment of a shared machine falls on all of
them alike. Printed: the median (min, max) milliseconds per step over the
rounds, microseconds per example, parameters, and the median's ratio to the
recipe's.

Usage:
    python bench/training_step.py shapes_vqa
    python bench/training_step.py shapes_vqa --variant image_filters=16,fusion_dim=48 \\
        --variant film_blocks=3 --variant batch_size=128 --variant jit_compile=true
"""

import argparse
import ast
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def parse_variant(text):
    """`"image_filters=16,fusion_dim=48"` -> `{"image_filters": 16, "fusion_dim": 48}`.

    Values are Python literals; `true` and `false` are also read as in a recipe file.
    """
    variant = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(
                f"a variant is key=value[,key=value...]. Received: {text!r}")
        value = value.strip()
        if value in ("true", "false"):  # TOML's spelling, as in the recipe
            variant[key.strip()] = value == "true"
            continue
        try:
            variant[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            variant[key.strip()] = value  # a string option, e.g. fusion=concat
    return variant


# Variant keys that belong to the recipe's [training] section: how a step runs.
TRAINING_KEYS = ("batch_size", "jit_compile")


def variant_recipe(recipe, variant):
    """The recipe with `variant`'s keys set: `TRAINING_KEYS` in [training], the others in [model].

    The result is checked as a recipe file is, so a bad value is refused with the
    recipe's own error (a `RecipeError` naming the key).
    """
    from mmzoo.training.recipe import Recipe

    config = recipe.to_dict()
    for key, value in variant.items():
        config["training" if key in TRAINING_KEYS else "model"][key] = value
    return Recipe.from_dict(config, source=f"{recipe.name} with --variant {variant}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="a recipe file or the name of a shipped recipe")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[],
                        help="key=value[,key=value...]: [model] options, batch_size or jit_compile")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per variant")
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    args = parser.parse_args(argv)

    import numpy as np

    from mmzoo.export.parity import synthetic_inputs
    from mmzoo.training.recipe import load_recipe
    from mmzoo.training.run import build_model_for

    recipe = load_recipe(args.recipe)
    if recipe.task != "classification":
        raise SystemExit(f"training_step.py times classification recipes; {recipe.name} is "
                         f"task={recipe.task!r}")
    try:  # every variant is checked before any model is built
        recipes = [variant_recipe(recipe, variant) for variant in [{}] + args.variant]
    except ValueError as error:
        raise SystemExit(f"training_step.py: {error}") from None
    rng = np.random.default_rng(0)
    rows = []
    for variant, r in zip([{}] + args.variant, recipes):
        model = build_model_for(r, steps_per_epoch=1000)
        batch = r.training["batch_size"]
        # Inputs in each modality's range (pixels, token ids, waveforms), random labels.
        x = synthetic_inputs(model, batch, seed=0)
        y = rng.integers(0, model.output_shape[-1], batch)
        for _ in range(args.warmup):
            model.train_on_batch(x, y)
        label = ",".join(f"{k}={v}" for k, v in variant.items()) or "recipe as written"
        rows.append({"label": label, "model": model, "x": x, "y": y, "batch": batch,
                     "params": model.count_params(), "times": []})
    for _ in range(args.rounds):
        for row in rows:
            start = time.perf_counter()
            for _ in range(args.steps):
                row["model"].train_on_batch(row["x"], row["y"])
            row["times"].append((time.perf_counter() - start) / args.steps)
    base = statistics.median(rows[0]["times"])
    print(f"{recipe.name}: one training step (median of {args.rounds} rounds of "
          f"{args.steps} steps; variants in turns)")
    print(f"{'variant':<40} {'batch':>5} {'params':>9} {'ms/step':>8} {'(min-max)':>13} "
          f"{'us/example':>10} {'ratio':>6}")
    for row in rows:
        med = statistics.median(row["times"])
        spread = f"{min(row['times']) * 1e3:.0f}-{max(row['times']) * 1e3:.0f}"
        print(f"{row['label']:<40} {row['batch']:>5} {row['params']:>9,} {med * 1e3:>8.1f} "
              f"{spread:>13} {med * 1e6 / row['batch']:>10.0f} {med / base:>6.2f}")


if __name__ == "__main__":
    main()
