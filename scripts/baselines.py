"""Baselines on mmzoo-shapes: is the benchmark really multimodal?

Trains and evaluates, on visual question answering ("classification") and
image-text matching ("binary"):

  * majority: the most frequent training label, always;
  * text only: the LSTM text branch alone (`image_branch=None`);
  * image only: the VGG16 image branch alone (`text_branch=None`);
  * document model: VGG16 + LSTM + concat, the seeds' model.

The single-modality models are built from the fused model's options, so they
differ only in the missing branch. Prints a markdown table (VQA accuracy also
per question type). A valid benchmark shows text-only and image-only near the
majority baseline and the fused model well above them.

Usage:
    python scripts/baselines.py                       # in-memory data, 32 px
    python scripts/baselines.py --image-size 64 --train 20000 --eval 2000 \\
        --epochs 10 --data-dir ~/tensorflow_datasets  # the TFDS build
    python scripts/baselines.py --smoke               # a few steps, to check it runs

On 2 CPU cores VGG16 trains at ~11 images/s at 64 px (~40/s at 32 px): the
full run is hours; use a GPU for the real numbers.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

TASKS = {"vqa": "classification", "matching": "binary"}
MODELS = ("majority", "text only", "image only", "document model")


def _arrays(task, args):
    """(train x, train y, eval x, eval y, info) for `task`."""
    import numpy as np

    import mmzoo

    if args.data_dir is None:
        x, y, info = mmzoo.data.shapes_arrays(task, args.train, image_size=args.image_size,
                                              seed=args.seed, split="train")
        ex, ey, einfo = mmzoo.data.shapes_arrays(task, args.eval, image_size=args.image_size,
                                                 seed=args.seed, split=args.eval_split)
        return x, y, ex, ey, info, einfo.question_types

    def load(split, n):
        ds, info = mmzoo.data.shapes_dataset(
            task, f"{split}[:{n}]", data_dir=args.data_dir, image_size=args.image_size,
            batch_size=256, shuffle=False, cache=False, with_info=True)
        xs, ys = [], []
        for xb, yb in ds:
            xs.append({k: v.numpy() for k, v in xb.items()})
            ys.append(yb.numpy())
        return ({k: np.concatenate([b[k] for b in xs]) for k in xs[0]},
                np.concatenate(ys), info)

    x, y, info = load("train", args.train)
    ex, ey, _ = load(args.eval_split, args.eval)
    # Unshuffled, the raw examples come in the pipeline's order.
    import tensorflow_datasets as tfds

    raw = tfds.load(f"mmzoo_shapes/{args.image_size}px", split=f"{args.eval_split}[:{args.eval}]",
                    data_dir=args.data_dir, shuffle_files=False)
    qtypes = np.array([int(e["question_type"]) for e in tfds.as_numpy(raw)])
    return x, y, ex, ey, info, qtypes


def _options(info, args):
    """The document model's options; baselines drop one branch from them."""
    return dict(image_branch="vgg16", text_branch="lstm", fusion="concat",
                image_weights=args.image_weights, learning_rate=args.learning_rate,
                **info.model_options())


def _accuracy(task, probs, y):
    if task == "classification":
        return (probs.argmax(-1) == y).astype(float)
    return ((probs.reshape(-1) > 0.5) == (y.reshape(-1) > 0.5)).astype(float)


def run(args):
    import keras
    import numpy as np

    import mmzoo

    results = {}
    for short, task in TASKS.items():
        x, y, ex, ey, info, qtypes = _arrays(task, args)
        print(f"\n[{short}] {len(y)} training / {len(ey)} evaluation examples, "
              f"{args.image_size} px, labels {y.shape[1:] or 'ids'}", flush=True)
        for name in MODELS:
            t0 = time.perf_counter()
            if name == "majority":
                if task == "classification":
                    guess = np.bincount(y).argmax()
                    correct = (ey == guess).astype(float)
                else:
                    correct = ((ey.reshape(-1) > 0.5) == (y.mean() > 0.5)).astype(float)
            else:
                keras.utils.set_random_seed(args.seed)
                options = _options(info, args)
                if name == "text only":
                    options["image_branch"] = None
                elif name == "image only":
                    options["text_branch"] = None
                inputs = {"text"} if name == "text only" else (
                    {"image"} if name == "image only" else {"image", "text"})
                model = mmzoo.build_model(task, **options)
                train_x = {k: v for k, v in x.items() if k in inputs}
                eval_x = {k: v for k, v in ex.items() if k in inputs}
                model.fit(train_x, y, batch_size=args.batch_size, epochs=args.epochs,
                          steps_per_epoch=args.steps, verbose=2 if args.verbose else 0)
                out = model.predict(eval_x, batch_size=args.batch_size, verbose=0)
                probs = next(iter(out.values())) if isinstance(out, dict) else out
                correct = _accuracy(task, np.asarray(probs), ey)
            row = {"accuracy": float(correct.mean()), "seconds": time.perf_counter() - t0}
            if task == "classification" and qtypes is not None:
                for t, type_name in enumerate(mmzoo.data.QUESTION_TYPES):
                    sel = qtypes == t
                    row[type_name] = float(correct[sel].mean()) if sel.any() else float("nan")
            results[(short, name)] = row
            print(f"  {name:15s} accuracy {row['accuracy']:.3f}  ({row['seconds']:.0f} s)",
                  flush=True)
    return results


def table(results, args):
    """Markdown table of the results."""
    from mmzoo.data import QUESTION_TYPES

    lines = [f"mmzoo-shapes baselines ({args.image_size} px, {args.train} train / "
             f"{args.eval} {args.eval_split}, {args.epochs} epochs"
             + (f" of {args.steps} steps" if args.steps else "") + ")", "",
             "| model | VQA accuracy | " + " | ".join(QUESTION_TYPES)
             + " | matching accuracy |",
             "|---|---|" + "---|" * len(QUESTION_TYPES) + "---|"]
    for name in MODELS:
        vqa, match = results[("vqa", name)], results[("matching", name)]
        per_type = " | ".join(f"{vqa[t]:.3f}" if t in vqa else "-" for t in QUESTION_TYPES)
        lines.append(f"| {name} | {vqa['accuracy']:.3f} | {per_type} | "
                     f"{match['accuracy']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--train", type=int, default=4000, help="training examples")
    parser.add_argument("--eval", type=int, default=1000, help="evaluation examples")
    parser.add_argument("--eval-split", default="validation",
                        choices=("validation", "test"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per epoch (default: the whole training set)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--image-weights", default=None,
                        help="VGG16 weights: none (default), 'imagenet' (downloads) or a file")
    parser.add_argument("--data-dir", default=None,
                        help="read the TFDS build here instead of generating in memory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny run (64 examples, 2 steps) to check the script works")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.image_weights in ("none", "None", ""):
        args.image_weights = None
    if args.smoke:
        args.train, args.eval, args.epochs, args.steps, args.batch_size = 64, 32, 1, 2, 16
    results = run(args)
    text = table(results, args)
    print("\n" + text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({" / ".join(k): v for k, v in results.items()}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
