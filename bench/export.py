"""What does each export format cost and keep? Size, batch-1 latency, agreement.

For the document model (VGG16 + LSTM, 64x64 images) and a small mobile model
(one convolution + LSTM), trained briefly on mmzoo-shapes VQA, exports a
float32 SavedModel and the four TFLite variants (float32, float16,
dynamic_range, int8) with `mmzoo.export`, then measures in this process:

- size on disk (the SavedModel folder, or the `.tflite` file);
- batch-1 latency, median over `--runs` calls, the formats interleaved in
  rounds so that a busy machine slows them alike: `tf.saved_model.load`'s
  `serving_default`, and the `ai_edge_litert` interpreter;
- on held-back test examples, run here with the same runtimes: test accuracy,
  agreement with the Keras model's top-1 answer (on all examples, and on the
  decisive ones, where Keras's top-1 probability leads the runner-up by >= 0.1:
  a near-tie flips under any rounding) and the max |diff| of the
  probabilities;
- ratios against the float32 SavedModel measured in the same run, and the int8
  goals: <= 0.27x the float32 size, >= 2x faster than float32 TFLite.

Writes `export.md` and `export.json` to `--out`.

VGG16 is randomly initialised and frozen (these machines cannot download the
ImageNet weights); sizes and latencies do not depend on the weights' values.

Usage:

```
python bench/export.py                          # both models (a few minutes)
python bench/export.py --smoke --out /tmp/b     # tiny budget: checks that it runs
python bench/export.py --models mobile --runs 200 --threads 2
```
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras  # noqa: E402
import mmzoo  # noqa: E402
import mmzoo.data  # noqa: E402
import mmzoo.export  # noqa: E402

MODELS = {
    "document": dict(image_branch="vgg16", text_branch="lstm", pooling="flatten",
                     image_trainable=False, embedding_dim=32, text_units=64),
    "mobile": dict(image_branch="cnn", text_branch="lstm", image_filters=16,
                   pooling="flatten", embedding_dim=16, text_units=32),
}
VARIANTS = [("saved_model", "float32")] + [("tflite", q) for q in mmzoo.export.QUANTIZATIONS]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="document,mobile", help="comma-separated: "
                   + ", ".join(MODELS) + ", or entry:NAME for a shipped zoo entry "
                   "(e.g. entry:mobile_vqa, exported with its default calibration)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--train", type=int, default=1024, help="training examples")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--calibration", type=int, default=200,
                   help="int8 calibration examples (from the training split)")
    p.add_argument("--test", type=int, default=200,
                   help="held-back test examples for the agreement check")
    p.add_argument("--runs", type=int, default=60, help="timed batch-1 calls per format")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for TensorFlow and LiteRT alike")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--smoke", action="store_true",
                   help="tiny budget (64 train, 1 epoch, 20 calibration, 20 test, 5 runs)")
    args = p.parse_args(argv)
    if args.smoke:
        args.train, args.epochs, args.calibration, args.test, args.runs = 64, 1, 20, 20, 5
    return args


def train(name, args):
    """The model, trained briefly, and its data.

    Returns:
        `(model, calibration inputs, test inputs, test labels, tokenizer,
        Keras test accuracy)`.
    """
    x, y, info = mmzoo.data.shapes_arrays("classification", args.train + args.calibration,
                                          image_size=args.image_size, seed=args.seed)
    xt, yt, _ = mmzoo.data.shapes_arrays("classification", args.test,
                                         image_size=args.image_size, seed=args.seed,
                                         split="test")
    keras.utils.set_random_seed(args.seed)
    model = mmzoo.build_model("classification", name=f"{name}_model",
                              **info.model_options(), **MODELS[name])
    fit = {k: v[: args.train] for k, v in x.items()}
    start = time.perf_counter()
    model.fit(fit, y[: args.train], epochs=args.epochs, batch_size=32, verbose=0)
    seconds = time.perf_counter() - start
    (p,) = model.predict(xt, verbose=0).values()
    accuracy = float(np.mean(p.argmax(-1) == yt))
    calibration = {k: v[args.train:] for k, v in x.items()}
    print(f"{name}: {model.count_params():,} parameters, trained {seconds:.0f}s, "
          f"test accuracy {accuracy:.3f}", flush=True)
    return model, calibration, xt, yt, info.tokenizer, accuracy


def zoo_entry(name, args):
    """A shipped entry with the data its export uses by default.

    Calibration: the 1,000 validation examples `mmzoo.export` takes for an entry
    (`ZooEntry.example_inputs`); test: `--test` examples of its test split.

    Returns:
        `(entry's model, calibration inputs, test inputs, test labels, tokenizer)`.
    """
    entry = mmzoo.load(name.removeprefix("entry:"))
    calibration, _ = entry.example_inputs(1000, "validation")
    test, labels = entry.example_inputs(args.test, "test")
    print(f"{name}: {entry.model.count_params():,} parameters, card accuracy "
          f"{entry.metadata['metrics'].get('accuracy')}", flush=True)
    return entry.model, calibration, test, np.asarray(labels).reshape(-1), entry.tokenizer


def export_all(name, model, calibration, test, tokenizer, folder):
    """Every variant of `model`; returns `{(format, quantization): (path, report)}`."""
    exported = {}
    for fmt, quantization in VARIANTS:
        file_name = name if fmt == "saved_model" else f"{name}_{quantization}.tflite"
        path = os.path.join(folder, file_name)
        report = mmzoo.export.export(
            model, path, format=fmt,
            quantization=None if fmt == "saved_model" else quantization,
            tokenizer=tokenizer, representative_data=calibration, parity_data=test,
            parity="warn", verbose=False,
        )
        check = report.checks[0]
        print(f"  {fmt:11s} {quantization:13s} {report.size_bytes / 1e6:8.2f} MB  "
              f"agreement {check.agreement:.3f}  max|diff| {check.max_abs_diff:.2e}  "
              f"{'ok' if report.passed else 'FAILED'} ({report.seconds:.0f}s)", flush=True)
        exported[(fmt, quantization)] = (path, report)
    return exported


DECISIVE_MARGIN = 0.1


def evaluate(exported, test, labels, reference, threads):
    """Runs every export on the test set; returns `{key: figures}`."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    ref = reference.argmax(-1)
    top2 = np.sort(reference, -1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) >= DECISIVE_MARGIN
    figures = {}
    for key, (path, _) in exported.items():
        if key[0] == "saved_model":
            fn = tf.saved_model.load(path).signatures["serving_default"]
            (out,) = fn(**{k: tf.constant(v) for k, v in test.items()}).values()
            out = out.numpy()
        else:
            runner = Interpreter(model_path=path, num_threads=threads).get_signature_runner()
            n = len(labels)
            out = np.concatenate([next(iter(runner(**{k: v[i:i + 1] for k, v in test.items()})
                                            .values())) for i in range(n)])
        top1 = out.argmax(-1)
        figures[key] = {
            "accuracy": float(np.mean(top1 == labels)),
            "agreement": float(np.mean(top1 == ref)),
            "decisive_agreement": float(np.mean(top1[decisive] == ref[decisive])),
            "decisive_examples": int(decisive.sum()),
            "max_abs_diff": float(np.abs(out - reference).max()),
        }
    return figures


def runners(exported, example, threads):
    """`{(format, quantization): zero-argument callable}` running one example."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    calls = {}
    for key, (path, _) in exported.items():
        if key[0] == "saved_model":
            fn = tf.saved_model.load(path).signatures["serving_default"]
            inputs = {k: tf.constant(v) for k, v in example.items()}
            calls[key] = lambda fn=fn, inputs=inputs: fn(**inputs)
        else:
            runner = Interpreter(model_path=path, num_threads=threads).get_signature_runner()
            calls[key] = lambda runner=runner: runner(**example)
    return calls


def latencies_ms(calls, runs, rounds=10):
    """Median ms per call, the callables interleaved in `rounds` rounds."""
    for call in calls.values():  # warm-up (first-call allocation, XNNPACK packing)
        for _ in range(3):
            call()
    times = {key: [] for key in calls}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for key, call in calls.items():
            for _ in range(per_round):
                start = time.perf_counter()
                call()
                times[key].append(time.perf_counter() - start)
    return {key: 1000 * statistics.median(t) for key, t in times.items()}


def rows_for(name, exported, latency, figures):
    base_size = exported[("saved_model", "float32")][1].size_bytes
    base_ms = latency[("saved_model", "float32")]
    tfl_size = exported[("tflite", "float32")][1].size_bytes
    tfl_ms = latency[("tflite", "float32")]
    rows = []
    for key, (_, report) in exported.items():
        rows.append({
            "model": name, "format": key[0], "quantization": key[1],
            "size_bytes": report.size_bytes, "size_vs_saved_model": report.size_bytes / base_size,
            "size_vs_tflite_float32": report.size_bytes / tfl_size,
            "latency_ms_b1": latency[key], "latency_vs_saved_model": latency[key] / base_ms,
            "speedup_vs_tflite_float32": tfl_ms / latency[key],
            **figures[key],
            "export_check_passed": report.passed,
        })
    return rows


def markdown(rows, args):
    trained = [n for n in args.models.split(",") if not n.startswith("entry:")]
    entries = [n for n in args.models.split(",") if n.startswith("entry:")]
    setting = (f"Trained here ({', '.join(trained)}): mmzoo-shapes VQA, "
               f"{args.image_size}x{args.image_size} images, {args.train} training examples x "
               f"{args.epochs} epochs; int8 calibrated on {args.calibration} training "
               "examples. " if trained else "")
    if entries:
        setting += (f"Zoo entries ({', '.join(entries)}): as shipped, at their own image "
                    "size, int8 calibrated as `mmzoo.export` does for an entry (1,000 "
                    "validation examples of its dataset). ")
    lines = [
        "# Export benchmark: size, batch-1 latency, agreement",
        "",
        setting + "Accuracy and agreement with Keras's "
        f"top-1 answer on {args.test} held-back test examples; 'decisive' counts only "
        f"examples where Keras's top-1 probability leads by >= {DECISIVE_MARGIN}. "
        f"Latency: median of {args.runs} batch-1 "
        f"calls per format, formats interleaved, {args.threads} thread(s) for TensorFlow "
        f"and LiteRT. Ratios are against the float32 SavedModel of the same run. "
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(shared), TensorFlow {_version('tensorflow')}, ai-edge-litert "
        f"{_version('ai-edge-litert')}.",
        "",
        "| model | format | size | size vs SavedModel | latency b=1 | latency vs SavedModel "
        "| speed-up vs TFLite f32 | test accuracy | top-1 agreement | agreement, decisive "
        "| max abs diff | export check |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        fmt = "SavedModel" if r["format"] == "saved_model" else f"TFLite {r['quantization']}"
        lines.append(
            f"| {r['model']} | {fmt} | {r['size_bytes'] / 1e6:.2f} MB "
            f"| {r['size_vs_saved_model']:.3f}x | {r['latency_ms_b1']:.2f} ms "
            f"| {r['latency_vs_saved_model']:.2f}x | {r['speedup_vs_tflite_float32']:.2f}x "
            f"| {r['accuracy']:.3f} | {r['agreement']:.1%} "
            f"| {r['decisive_agreement']:.1%} of {r['decisive_examples']} "
            f"| {r['max_abs_diff']:.1e} | {'passed' if r['export_check_passed'] else 'FAILED'} |")
    lines += ["", "int8 goals: <= 0.27x the float32 size, >= 2x faster than float32 "
              "TFLite at batch 1.", ""]

    def met(ok):
        return "met" if ok else "NOT met"

    for r in rows:
        if r["quantization"] == "int8":
            lines.append(
                f"- {r['model']}: size {r['size_vs_saved_model']:.3f}x the float32 "
                f"SavedModel ({met(r['size_vs_saved_model'] <= 0.27)}), "
                f"{r['size_vs_tflite_float32']:.4f}x the float32 TFLite file "
                f"({met(r['size_vs_tflite_float32'] <= 0.27)}); speed-up "
                f"{r['speedup_vs_tflite_float32']:.2f}x "
                f"({met(r['speedup_vs_tflite_float32'] >= 2)})")
    return "\n".join(lines) + "\n"


def _version(package):
    from importlib.metadata import version

    return version(package)


def main(argv=None):
    args = parse_args(argv)
    names = args.models.split(",")
    for n in names:
        if n not in MODELS and not n.startswith("entry:"):
            raise SystemExit(f"Unknown model: --models must list {', '.join(MODELS)} or "
                             f"entry:NAME (a zoo entry). Received: {n!r}")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="mmzoo-bench-export-")
    rows = []
    try:
        for name in names:
            if name.startswith("entry:"):
                model, calibration, test, labels, tokenizer = zoo_entry(name, args)
            else:
                model, calibration, test, labels, tokenizer, accuracy = train(name, args)
            exported = export_all(name.removeprefix("entry:"), model, calibration, test,
                                  tokenizer, folder)
            example = {k: v[:1] for k, v in test.items()}
            reference = next(iter(model.predict(test, verbose=0).values()))
            figures = evaluate(exported, test, labels, reference, args.threads)
            latency = latencies_ms(runners(exported, example, args.threads), args.runs)
            rows += rows_for(name, exported, latency, figures)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text = markdown(rows, args)
    with open(os.path.join(args.out, "export.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "export.json"), "w") as f:
        json.dump({"settings": vars(args), "rows": rows}, f, indent=1)
    print(text)
    print(f"wrote {args.out}/export.md, export.json")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
