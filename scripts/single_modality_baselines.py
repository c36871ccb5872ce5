"""Is the benchmark really multimodal? A zoo recipe against its single-modality halves.

Trains, from a fused recipe (default `recipes/shapes_vqa.toml`), the same model
without its image branch (text only) and without its text branch (image only)
on the same data and schedule for `--epochs` epochs, measures both on the
recipe's own test split, adds the majority answer, and writes the table beside
the fused entry's card metrics (and any other shipped entries of the same task
and test split, e.g. `document_vqa`):

- `<out>/baselines.json`: every number and the settings;
- `<out>/baselines.md`: the markdown table (README's baselines table).

A valid benchmark shows text-only and image-only near the majority answer and
the fused models far above them.

Usage:
    python scripts/single_modality_baselines.py                       # shapes_vqa, 2 epochs
    python scripts/single_modality_baselines.py --epochs 1 --num-train 2000 --out /tmp/b
    python scripts/single_modality_baselines.py --reuse bench/results/baselines_shapes_vqa.json
        # no training: the earlier run's baselines, the entries' rows collected anew
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _variant(recipe, suffix, drop, epochs, num_train):
    from mmzoo.training import Recipe

    config = recipe.to_dict()
    config["name"] = f"{recipe.name}_{suffix}"
    config["model"][f"{drop}_branch"] = "none"
    config["training"]["epochs"] = epochs
    if num_train:
        config["dataset"]["num_train"] = num_train
    return Recipe.from_dict(config, source=f"<{config['name']}>")


def _type_columns(metrics, names):
    return [metrics.get(f"accuracy_{n}") for n in names]


def _baselines(recipe, test, args):
    """The majority answer, and the recipe without its image and without its text branch."""
    import numpy as np

    from mmzoo.data import shapes
    from mmzoo.training import train

    rows = []
    types = test.groups["question_type"]
    # The majority answer of the training stream (its first epoch's worth), on the test split.
    train_answers = [shapes.stream_scene(recipe.dataset["seed"], k).answer
                     for k in range(min(recipe.dataset["num_train"], 20000))]
    majority = int(np.bincount(train_answers, minlength=len(shapes.ANSWERS)).argmax())
    right = test.labels == majority
    rows.append({"model": "majority answer", "accuracy": float(right.mean()),
                 **{f"accuracy_{n}": float(right[types == i].mean())
                    for i, n in enumerate(shapes.QUESTION_TYPES)}})
    for suffix, drop, label in (("text_only", "image", "text only (GRU)"),
                                ("image_only", "text", "image only (CoordConv convnet)")):
        variant = _variant(recipe, suffix, drop, args.epochs, args.num_train)
        result = train(variant, os.path.join(args.out, suffix), verbose=2)
        rows.append({"model": label, "seconds": round(result.training_seconds, 1),
                     "epochs": args.epochs, **result.metrics})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=os.path.join(ROOT, "recipes", "shapes_vqa.toml"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--num-train", type=int, default=None,
                        help="scenes per epoch (default: the recipe's)")
    parser.add_argument("--out", default=os.path.join("mmzoo_runs", "baselines"))
    parser.add_argument("--reuse", default=None,
                        help="a baselines.json of an earlier run: take its majority, "
                             "text-only and image-only rows (and epochs) instead of training; "
                             "the zoo entries' rows are collected anew")
    args = parser.parse_args(argv)

    import mmzoo
    from mmzoo.data import shapes
    from mmzoo.training import load_recipe
    from mmzoo.training.data import load_evaluation_data

    recipe = load_recipe(args.recipe)
    if recipe.task != "classification":
        raise SystemExit("The baselines table is for VQA recipes (task = 'classification').")
    os.makedirs(args.out, exist_ok=True)
    rows = []
    if args.reuse:
        with open(args.reuse) as f:
            earlier = json.load(f)
        if any(earlier["recipe"]["dataset"].get(k) != recipe.dataset[k]
               for k in ("seed", "num_test", "image_size", "sequence_length")):
            raise SystemExit(f"{args.reuse} was measured on another dataset than {args.recipe}.")
        args.epochs = earlier["epochs"]
        rows = [r for r in earlier["rows"] if not r["model"].startswith("zoo entry")]
    test = load_evaluation_data(recipe) if not args.reuse else None
    if not args.reuse:
        rows += _baselines(recipe, test, args)
    for name in mmzoo.list_models():
        entry = mmzoo.load(name)
        dataset = entry.metadata.get("dataset") or {}
        if entry.task == "classification" and all(
                dataset.get(k) == recipe.dataset[k] for k in ("seed", "num_test", "image_size")):
            model = (entry.metadata.get("recipe") or {}).get("model", {})
            design = ", ".join(str(model[k]) for k in ("image_branch", "text_branch",
                                                       "audio_branch", "fusion")
                               if model.get(k))
            rows.append({"model": f"zoo entry `{name}` ({design})",
                         "seconds": entry.metadata.get("training", {}).get("seconds"),
                         **entry.metadata["metrics"]})
    names = shapes.QUESTION_TYPES
    lines = [f"Test split of `{recipe.name}` ({recipe.dataset['num_test']} questions, seed "
             f"{recipe.dataset['seed']}, {recipe.dataset['image_size']} px). Single-modality "
             f"models: {args.epochs} epochs of the recipe's schedule.", "",
             "| model | accuracy | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for row in rows:
        cells = [f"{v:.3f}" if v is not None else "n/a"
                 for v in [row["accuracy"]] + _type_columns(row, names)]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "baselines.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.out, "baselines.json"), "w") as f:
        # The recipe the single-modality rows were trained from (a reused run's own).
        trained = earlier["recipe"] if args.reuse else recipe.to_dict()
        json.dump({"recipe": trained, "epochs": args.epochs, "rows": rows}, f, indent=1)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
