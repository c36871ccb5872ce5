"""Which fusion works best? Every fusion, two baselines and an ensemble, one budget.

Trains each registered fusion, the image-only and text-only baselines and a
bagging ensemble (of `concat` models) on the 64-pixel mmzoo-shapes VQA
(`classification`: question -> answer) and matching (`binary`: is the caption
true?) tasks with the same data, epochs, batch size and optimizer, then writes

- `fusion.md`: per task, test accuracy, parameters, training images/s and
  inference latency at batch 1 and 64 (median of repeated calls);
- `fusion.png`: test accuracy per model, one bar group per task;
- `fusion.json`: the raw numbers and the settings.

The models are small (`image_branch="convnet"`, four Conv+BN+ReLU+pool
blocks from 16 filters, so the 64-pixel image becomes a 4x4x128 map) so the
full run finishes on a CPU: about 70 minutes on 2 cores. The defaults are the
settings of the published table (bench/results/).
Training images/s leaves out the first epoch (tracing) when there are more.
Each ensemble member trains for the full budget, so bagging costs
`--members` times as much; its images/s is over its whole wall time (each
member's tracing included) and counts every member's images.

Usage:

```
python bench/fusion.py                      # full run (long on 2 cores)
python bench/fusion.py --smoke --out /tmp/b # tiny budget: checks that it all runs
python bench/fusion.py --tasks vqa --fusions concat,film --epochs 3
python bench/fusion.py --resume             # train only the rows fusion.json lacks
```

`--resume` keeps every row of the `fusion.json` already in `--out` (if it was
measured with the same settings) and trains only the models it lacks: a run
stopped part-way goes on where it stopped, and a fusion added to the registry
since the published run is measured with the same budget and added to the
table. Every row records the day it was measured (UTC); the table says when
its rows come from more than one day. A resumed table lists its rows in the
registry's order.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras  # noqa: E402
import mmzoo  # noqa: E402
import mmzoo.data  # noqa: E402
from mmzoo.tasks import ensembles  # noqa: E402

TASKS = {"vqa": "classification", "matching": "binary"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="vqa,matching", help="comma-separated: vqa, matching")
    p.add_argument("--fusions", default="all", help="comma-separated fusion names, or 'all'")
    p.add_argument("--train", type=int, default=12288, help="training examples")
    p.add_argument("--test", type=int, default=1024, help="test examples")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--image-branch", default="convnet", choices=("cnn", "convnet"),
                   help="'cnn': one convolution; 'convnet': blocks of conv+BN+ReLU+pool")
    p.add_argument("--image-filters", type=int, default=16)
    p.add_argument("--image-blocks", type=int, default=4, help="convnet blocks")
    p.add_argument("--pooling", default="flatten", choices=("flatten", "avg", "max"),
                   help="image pooling; 'flatten' keeps where things are, which the "
                        "relational and count questions need (FiLM pools after modulating)")
    p.add_argument("--text-branch", default="lstm", choices=("lstm", "gru", "embedding"))
    p.add_argument("--fusion-dim", type=int, default=64)
    p.add_argument("--members", type=int, default=3, help="bagging members; 0 skips it")
    p.add_argument("--latency-runs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--resume", action="store_true",
                   help="keep the rows of --out/fusion.json (same settings required) and "
                        "train only the missing ones")
    p.add_argument("--plot-only", action="store_true",
                   help="redraw fusion.png from the fusion.json in --out (no training)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny budget (64 train, 32 test, 1 epoch, 3 latency runs)")
    args = p.parse_args(argv)
    if args.smoke:
        args.train, args.test, args.epochs, args.latency_runs = 64, 32, 1, 3
        args.members = min(args.members, 2)
    return args


# The settings a row depends on: `--resume` reuses rows only when these match.
MEASUREMENT = ("train", "test", "epochs", "batch_size", "learning_rate", "image_size",
               "image_branch", "image_filters", "image_blocks", "pooling", "text_branch",
               "fusion_dim", "members", "latency_runs", "seed")


def candidates(args, fusions=None):
    """(label, build dict or "bagging") for every model of the comparison."""
    fusions = fusions or args.fusions
    names = mmzoo.FUSIONS.names() if fusions == "all" else fusions.split(",")
    for name in names:
        mmzoo.FUSIONS.get(name)  # a clear error for a typo
    yield "image only", {"text_branch": None}
    yield "text only", {"image_branch": None}
    for name in names:
        fusion_options = mmzoo.FUSIONS.get(name).options
        options = {"fusion": name}
        if "fusion_dim" in fusion_options:
            options["fusion_dim"] = args.fusion_dim
        yield name, options
        if "decision_rule" in fusion_options:  # the seeds' mean, then the product rule
            yield f"{name} (product rule)", dict(options, decision_rule="product")
        if "film_blocks" in fusion_options:  # Perez et al.'s depth, positions, max-pooling
            yield (f"{name} (4 blocks, CoordConv, max-pool)",
                   dict(options, film_blocks=4, coord_channels=True, pooling="max"))
    if args.members:
        yield f"bagging ({args.members} x concat)", "bagging"


def base_options(args, info):
    options = dict(info.model_options(), image_branch=args.image_branch,
                   text_branch=args.text_branch, image_filters=args.image_filters,
                   pooling=args.pooling, learning_rate=args.learning_rate)
    if args.image_branch == "convnet":
        options["image_blocks"] = args.image_blocks
    if args.text_branch in ("lstm", "gru"):
        options.update(embedding_dim=32, text_units=64)
    else:
        options.update(embedding_dim=16)
    return options


def latency_ms(model, x, batch, runs):
    """Median wall time of one forward pass on `batch` examples (after warm-up)."""
    xb = {k: v[:batch] for k, v in x.items() if k in model.input}
    if len(next(iter(xb.values()))) < batch:  # a tiny test set: repeat it
        xb = {k: np.resize(v, (batch,) + v.shape[1:]) for k, v in xb.items()}
    model.predict_on_batch(xb)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.predict_on_batch(xb)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def accuracy(model, task, x, y):
    (p,) = model.predict(x, batch_size=256, verbose=0).values()
    if task == "binary":
        return float(np.mean((p[:, 0] > 0.5) == (y.reshape(-1) > 0.5)))
    return float(np.mean(p.argmax(-1) == y.reshape(-1)))


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch (the first one includes tracing)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def run_one(label, spec, task, options, data, args):
    (x, y), (xt, yt) = data
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    if spec == "bagging":
        model = ensembles.bagging(dict(options, task=task, fusion="concat"), x, y,
                                  n_members=args.members, epochs=args.epochs,
                                  batch_size=args.batch_size, seed=args.seed)
        # Whole wall time, tracing of every member included.
        images_per_s = args.members * args.epochs * len(y) / (time.perf_counter() - start)
    else:
        model = mmzoo.build_model(task, **{**options, **spec})
        own = {k: v for k, v in x.items() if k in model.input}
        timer = EpochTimer()
        model.fit(own, y, epochs=args.epochs, batch_size=args.batch_size, verbose=0,
                  callbacks=[timer])
        # Steady state: the first epoch (tracing) is left out when there are more.
        steady = timer.times[1:] or timer.times
        images_per_s = len(steady) * len(y) / sum(steady)
    own_test = {k: v for k, v in xt.items() if k in model.input}
    return {
        "model": label,
        "measured": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "accuracy": accuracy(model, task, own_test, yt),
        "params": int(model.count_params()),
        "train_images_per_s": images_per_s,
        "latency_ms_b1": latency_ms(model, own_test, 1, args.latency_runs),
        "latency_ms_b64": latency_ms(model, own_test, 64, args.latency_runs),
    }


def image_desc(args):
    if args.image_branch == "convnet":
        return f"{args.image_blocks} blocks from {args.image_filters} filters"
    return f"{args.image_filters} filters"


def markdown(results, args):
    lines = [
        "# Fusion benchmark (mmzoo-shapes)",
        "",
        f"{args.train} training / {args.test} test examples at {args.image_size} px, "
        f"{args.epochs} epochs, batch {args.batch_size}, Adam {args.learning_rate}; "
        f"image_branch={args.image_branch!r} ({image_desc(args)}, pooling={args.pooling!r}), "
        f"text_branch={args.text_branch!r}, fusion_dim={args.fusion_dim}. "
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Keras {keras.version()}.",
        "",
    ]
    for task_name, rows in results.items():
        best = max(r["accuracy"] for r in rows)
        lines += [f"## {task_name} ({TASKS[task_name]})", "",
                  "| model | test accuracy | parameters | train images/s | latency b=1 (ms) | latency b=64 (ms) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in rows:
            acc = f"{r['accuracy']:.3f}"
            acc = f"**{acc}**" if r["accuracy"] == best else acc
            lines.append(f"| {r['model']} | {acc} | {r['params']:,} | {r['train_images_per_s']:.0f} "
                         f"| {r['latency_ms_b1']:.1f} | {r['latency_ms_b64']:.1f} |")
        lines.append("")
    by_day = {}
    for task_name, rows in results.items():
        for r in rows:
            by_day.setdefault(r.get("measured", "an earlier day"), []).append(
                f"{task_name} {r['model']}")
    if len(by_day) > 1:
        usual = max(by_day, key=lambda day: len(by_day[day]))
        lines.append("Rows measured on different days (`--resume`), with the same settings: "
                     + "; ".join(f"{', '.join(rows)} on {day}" for day, rows
                                 in sorted(by_day.items()) if day != usual)
                     + f"; every other row on {usual}.")
        lines.append("")
    return "\n".join(lines)


def write_tables(results, args):
    with open(os.path.join(args.out, "fusion.md"), "w") as f:
        f.write(markdown(results, args))
    with open(os.path.join(args.out, "fusion.json"), "w") as f:
        json.dump({"settings": vars(args), "results": results}, f, indent=1)


def bar_chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["model"] for r in next(iter(results.values()))]
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(labels)), 4.5))
    for i, (task_name, rows) in enumerate(results.items()):
        acc = {r["model"]: r["accuracy"] for r in rows}
        xs = np.arange(len(labels)) + (i - (len(results) - 1) / 2) * width
        bars = ax.bar(xs, [acc.get(label, np.nan) for label in labels], width, label=task_name)
        single = [acc[m] for m in ("image only", "text only") if m in acc]
        if single:  # the bar every fusion has to clear
            ax.axhline(max(single), color=bars.patches[0].get_facecolor(), linestyle="--",
                       linewidth=1, label=f"{task_name}: better single modality")
    ax.set_xticks(np.arange(len(labels)), labels, rotation=35, ha="right")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("mmzoo-shapes: fusion strategies, same budget")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def previous_results(args):
    """The rows of `--out/fusion.json`, if its settings match this run's; else an error."""
    path = os.path.join(args.out, "fusion.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        earlier = json.load(f)
    differ = {k: (earlier["settings"].get(k), getattr(args, k)) for k in MEASUREMENT
              if earlier["settings"].get(k) != getattr(args, k)}
    if differ:
        raise SystemExit(f"--resume: {path} was measured with other settings, so its rows "
                         "cannot stand beside new ones: "
                         + ", ".join(f"{k}={old!r} there, {new!r} here"
                                     for k, (old, new) in differ.items())
                         + ". Use another --out, or the same settings.")
    return earlier["results"]


def ordered(rows, args):
    """Rows in the registry's order (baselines first, the ensemble last)."""
    order = [label for label, _ in candidates(args, fusions="all")]
    rank = {label: i for i, label in enumerate(order)}
    return sorted(rows, key=lambda r: (r["model"].startswith("bagging"),
                                       rank.get(r["model"], len(order))))


def main(argv=None):
    args = parse_args(argv)
    if args.plot_only:
        with open(os.path.join(args.out, "fusion.json")) as f:
            results = json.load(f)["results"]
        bar_chart(results, os.path.join(args.out, "fusion.png"))
        print(f"wrote {args.out}/fusion.png")
        return results
    tasks = args.tasks.split(",")
    for t in tasks:
        if t not in TASKS:
            raise SystemExit(f"Unknown task: --tasks must list {', '.join(TASKS)}. Received: {t!r}")
    os.makedirs(args.out, exist_ok=True)
    earlier = previous_results(args) if args.resume else {}
    results = dict(earlier)  # a resumed run keeps the tasks it does not run again
    for task_name in tasks:
        kept = {r["model"]: r for r in earlier.get(task_name, [])}
        plan = list(candidates(args))
        if kept and all(label in kept for label, _ in plan):
            results[task_name] = ordered(kept.values(), args)
            print(f"{task_name:9s} all {len(plan)} models already measured (--resume)")
            continue
        task = TASKS[task_name]
        x, y, info = mmzoo.data.shapes_arrays(task, args.train, image_size=args.image_size,
                                              seed=args.seed, split="train")
        xt, yt, _ = mmzoo.data.shapes_arrays(task, args.test, image_size=args.image_size,
                                             seed=args.seed, split="test")
        options = base_options(args, info)
        rows = list(kept.values())
        for label, spec in plan:
            if label in kept:
                print(f"{task_name:9s} {label:24s} measured {kept[label].get('measured', 'earlier')} "
                      "(--resume: kept)", flush=True)
                continue
            row = run_one(label, spec, task, options, ((x, y), (xt, yt)), args)
            rows.append(row)
            results[task_name] = ordered(rows, args) if args.resume else rows
            print(f"{task_name:9s} {label:24s} acc={row['accuracy']:.3f} "
                  f"params={row['params']:>9,} train={row['train_images_per_s']:7.0f} img/s "
                  f"b1={row['latency_ms_b1']:6.1f} ms b64={row['latency_ms_b64']:6.1f} ms",
                  flush=True)
            write_tables(results, args)  # after every model: a crash loses only the current one
    write_tables(results, args)
    bar_chart(results, os.path.join(args.out, "fusion.png"))
    print(f"wrote {args.out}/fusion.md, fusion.png, fusion.json")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
