"""`mmzoo demo`: the main job, end to end on built-in data.

1. Loads the default zoo entries (verified, `safe_mode=True`): the VQA entry
   answers questions about freshly generated mmzoo-shapes test scenes and the
   captioner captions them (beam search); a picture of the scenes with the
   answers and captions is saved.
2. Exports the entry to a SavedModel (serving) and an int8 TFLite file
   (phones), each checked against Keras in the runtime a user would use.
3. Trains a small FiLM model (the zoo's VQA design) from scratch on fresh
   scenes for a few hundred steps, reports its accuracy against the
   majority-answer baseline with how many distinct answers it gives, saves
   it, and checks that the saved file reloads with `safe_mode=True` and
   gives the same answers. (The seeds' VGG16 document model does not learn
   within a minute on a CPU; its trained entry is `document_vqa`.)

Every check is printed as ok or FAILED, and the summary counts them.
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf

import mmzoo
from mmzoo import data
from mmzoo._folders import claim_folder
from mmzoo.registry import TASKS


DEFAULT_ENTRY = "mobile_vqa"
DEMO_KIND = "demo"
# What the output folder of an earlier demo (before the marker) holds.
_DEMO_FILES = ("demo_model.keras", "answers.png", "training_curve.png", "export")


def _is_legacy_demo_folder(path):
    names = {p.name for p in path.iterdir()}
    return bool(names) and names <= set(_DEMO_FILES)
DEFAULT_CAPTIONER = "shapes_captioner"


# The demo's small model: the zoo's VQA design (CoordConv convnet, GRU, FiLM
# blocks, max-pooling) at a size that learns within the demo's minute.
DEMO_MODEL = dict(image_branch="convnet", image_filters=16, image_blocks=2, coord_channels=True,
                  pooling="max", text_branch="gru", embedding_dim=32, text_units=64,
                  fusion="film", fusion_dim=32, film_blocks=2, film_output_dim=64,
                  hidden_units=[128])


def run_demo(out="mmzoo_runs/demo", steps=1500, batch_size=32, image_size=32,
             num_examples=1000, seed=0, entry=DEFAULT_ENTRY, export=True, verbose=1,
             captioner=DEFAULT_CAPTIONER):
    """Runs the demo and returns its metrics.

    Args:
        out: folder for the picture of answers, the exports,
            `demo_model.keras` and `training_curve.png`: new, empty or an
            earlier demo's (marked by `.mmzoo-output.json`); a folder of
            other files is refused, so the demo never overwrites them.
        steps: training steps (batches), each of fresh scenes.
        batch_size: examples per step.
        image_size: scene size in pixels (32, 64 or 128).
        num_examples: evaluation examples (the fixed validation split).
        seed: seed of the data and of the model's initialisation.
        entry: the zoo entry to load and export (`None` skips parts 1-2).
        export: whether to export the entry (part 2).
        verbose: 0 for silence, 1 for progress bars and the report.
        captioner: the captioning zoo entry that captions the same scenes in
            part 1 (`None` skips it).

    Returns:
        A dict of measured numbers (accuracies, losses, timings, paths, and
        `checks`: `{name: passed}` for every check the demo prints).
    """
    if steps < 1 or batch_size < 1 or num_examples < 1:
        raise ValueError(
            "The demo needs steps >= 1, batch_size >= 1 and examples >= 1. "
            f"Received: steps={steps}, batch_size={batch_size}, examples={num_examples}"
        )
    from mmzoo.data import pipeline, shapes

    say = print if verbose else (lambda *a, **k: None)
    out = str(claim_folder(out, DEMO_KIND, legacy=_is_legacy_demo_folder, argument="out",
                           what="the demo"))
    t0 = time.perf_counter()
    result = {"checks": {}}
    if entry is not None:
        result.update(_zoo_part(entry, out, seed, export, say, captioner))
        result["checks"].update(result.pop("zoo_checks", {}))

    keras.utils.set_random_seed(seed)
    # Fresh scenes for every step (the endless stream), a fixed split to evaluate on.
    _, _, info = data.shapes_arrays("vqa", 0, image_size=image_size, seed=seed)
    scenes = shapes.stream_scenes(steps * batch_size, image_size=image_size, seed=seed)
    x_train, y_train = pipeline.scene_rows(scenes, info, np.arange(steps * batch_size))
    x_test, y_test, test_info = data.shapes_arrays(
        "vqa", num_examples, image_size=image_size, seed=seed, split="validation")
    answers = list(info.label_names)
    say(f"\nTraining a small FiLM model from scratch: {steps} steps of {batch_size} fresh "
        f"scenes ({image_size}x{image_size}), evaluated on {num_examples} fixed validation "
        f"questions; {len(answers)} possible answers.")

    model = mmzoo.build_model("classification", **DEMO_MODEL, **info.model_options(),
                              learning_rate=2e-3, name="demo_model")
    if verbose:
        model.summary()
    before = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    stream = (tf.data.Dataset.from_tensor_slices(({"image": x_train["image"],
                                                   "text": x_train["text"]}, y_train))
              .batch(batch_size)
              .map(lambda x, y: ({**x, "image": tf.cast(x["image"], tf.float32)}, y))
              .prefetch(tf.data.AUTOTUNE))
    curve = _BatchCurve()
    t_train = time.perf_counter()
    model.fit(stream, epochs=1, shuffle=False, verbose=verbose, callbacks=[curve])
    train_seconds = time.perf_counter() - t_train
    after = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    probs = model.predict(x_test, verbose=0)["probabilities"]
    guesses = probs.argmax(-1)
    distinct = len(np.unique(guesses))
    # The majority answer of the training scenes, scored on the evaluation ones.
    majority = float(np.mean(y_test == np.bincount(y_train, minlength=len(answers)).argmax()))
    per_type = {name: float(np.mean(guesses[test_info.question_types == i]
                                    == y_test[test_info.question_types == i]))
                for i, name in enumerate(shapes.QUESTION_TYPES)
                if np.any(test_info.question_types == i)}
    learned = after["accuracy"] > majority + 0.05 and distinct > 2

    model_path = os.path.join(out, "demo_model.keras")
    model.save(model_path)
    reloaded = keras.saving.load_model(model_path, safe_mode=True)
    sample = {k: v[:8] for k, v in x_test.items()}
    same = np.allclose(reloaded.predict(sample, verbose=0)["probabilities"], probs[:8],
                       atol=1e-6)
    if not same:
        raise RuntimeError(f"The reloaded model at {model_path} gives different answers.")
    plot_path = _plot_curve(curve.losses, os.path.join(out, "training_curve.png"))

    say("\nA few evaluation questions:")
    for i in range(4):
        question = info.tokenizer.decode(x_test["text"][i])
        say(f"  Q: {question}?  A: {answers[guesses[i]]} ({probs[i, guesses[i]]:.0%})"
            f"  truth: {answers[int(y_test[i])]}")

    result["checks"]["trained model beats the majority answer"] = learned
    result.update({
        "train_steps": steps,
        "train_images_per_second": steps * batch_size / train_seconds,
        "eval_accuracy_before": before["accuracy"],
        "eval_accuracy_after": after["accuracy"],
        "eval_loss_before": before["loss"],
        "eval_loss_after": after["loss"],
        "eval_accuracy_per_type": per_type,
        "distinct_answers": distinct,
        "majority_answer_accuracy": majority,
        "parameters": model.count_params(),
        "model_path": model_path,
        "plot_path": plot_path,
        "seconds": time.perf_counter() - t0,
    })
    say("\nmmzoo demo summary")
    if entry is not None:
        say(f"  zoo entry        {entry}: {result['entry_correct']}/{result['entry_questions']} "
            f"questions right on new test scenes (card accuracy "
            f"{result['entry_card_accuracy']:.1%}); picture {result['answers_path']}")
        if "captioner" in result:
            say(f"  captioner        {result['captioner']}: card BLEU-4 "
                f"{result['captioner_card_bleu_4']:.3f}, e.g. \"{result['captions'][0]}\"")
        for name, line in result.get("exports", {}).items():
            say(f"  export           {name}: {line}")
    say(f"  model            demo_model (CoordConv convnet + GRU + FiLM x2 + max-pool), "
        f"{result['parameters']:,} parameters, trained from scratch")
    say(f"  training         {steps} steps of {batch_size} fresh scenes in {train_seconds:.1f} s "
        f"({result['train_images_per_second']:.0f} images/s)")
    say(f"  eval loss        {before['loss']:.3f} -> {after['loss']:.3f}")
    say(f"  eval accuracy    {before['accuracy']:.1%} -> {after['accuracy']:.1%} on "
        f"{num_examples} questions (majority answer: {majority:.1%}; "
        f"{distinct} of {len(answers)} answers given) "
        f"{'ok' if learned else 'FAILED: not clearly above the majority answer'}")
    say("  per type         " + ", ".join(f"{k} {v:.0%}" for k, v in per_type.items()))
    say(f"  saved            {model_path} (reloads with safe_mode=True, same answers)")
    say(f"  training curve   {plot_path}")
    failed = [name for name, ok in result["checks"].items() if not ok]
    say(f"  checks           {len(result['checks']) - len(failed)} of {len(result['checks'])} "
        "passed" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    say(f"  total time       {result['seconds']:.1f} s")
    return result


def _zoo_part(name, out, seed, export, say, captioner=None):
    """Parts 1 and 2: the zoo entries answer and caption new scenes, then one is exported."""
    from mmzoo.data import shapes

    entry = mmzoo.load(name)
    size = entry.preprocessor.image_size[0]
    say(f"Zoo entry {entry.name!r}: {entry.metadata.get('description', '')}")
    scenes = shapes.generate_scenes(8, split="test", image_size=size, seed=seed + 1000)
    questions = [str(q) for q in scenes["question"]]
    truths = [shapes.ANSWERS[int(a)] for a in scenes["answer"]]
    answers = entry.predict(images=scenes["image"], texts=questions, top_k=1)
    guesses = [(label, float(score)) for ((label, score),) in answers]
    say("\nThe entry answers questions about new test scenes:")
    for question, (label, score), truth in zip(questions, guesses, truths):
        mark = "right" if label == truth else f"wrong, truth: {truth}"
        say(f"  {question}  {label} ({score:.0%}, {mark})")
    captions = None
    if captioner is not None:
        writer = mmzoo.load(captioner)
        decoding = writer.metadata.get("recipe", {}).get("evaluation", {})
        beam_width = int(decoding.get("beam_width", 3))
        say(f"\nZoo entry {writer.name!r} captions the same scenes (beam search, width "
            f"{beam_width}):")
        captions = writer.predict(images=scenes["image"], method="beam", beam_width=beam_width,
                                  length_penalty=float(decoding.get("length_penalty", 1.0)))
        for caption, references in zip(captions, scenes["captions"]):
            say(f"  {caption}\n      a reference: {references[0]}")
    title = (f"{entry.name} answers questions about new scenes" if captions is None else
             f"{entry.name} answers questions about new scenes; {writer.name} captions "
             "them (italics)")
    picture = _plot_answers(scenes["image"], questions, guesses, truths,
                            os.path.join(out, "answers.png"), title, captions)
    card = entry.metadata.get("metrics", {})
    result = {
        "entry": entry.name,
        "entry_questions": len(questions),
        "entry_correct": sum(g[0] == t for g, t in zip(guesses, truths)),
        "entry_card_accuracy": float(card.get("accuracy", float("nan"))),
        "answers_path": picture,
    }
    if captions is not None:
        result.update(captioner=writer.name, captions=list(captions),
                      captioner_card_bleu_4=float(
                          writer.metadata.get("metrics", {}).get("bleu_4", float("nan"))))
    result["zoo_checks"] = {}
    if export:
        result["exports"] = _export_part(entry, out, seed, say, result["zoo_checks"])
    return result


def _export_part(entry, out, seed, say, checks):
    """Exports the entry for serving and for phones; returns one line per export."""
    folder = os.path.join(out, "export")
    lines = {}
    say("\nExporting the entry (conversion runs in a child process; int8 calibrates on "
        "the entry's own validation scenes, the default for zoo entries):")
    for label, path, kwargs in (
        ("SavedModel", os.path.join(folder, "saved_model"), {}),
        ("TFLite int8", os.path.join(folder, f"{entry.name}_int8.tflite"),
         {"format": "tflite", "quantization": "int8"}),
    ):
        # overwrite=True replaces only an earlier run's exports (mmzoo's own files).
        report = mmzoo.export(entry, path, parity="warn", overwrite=True, verbose=False,
                              **kwargs)
        say(str(report))
        checks[f"{label} parity"] = report.passed
        summary = "; ".join(_describe_check(c) for c in report.checks)
        size = os.path.getsize(path) if os.path.isfile(path) else report.size_bytes
        lines[label] = f"{size / 1e6:.2f} MB, {summary}"
        # Top-1 accuracy of the int8 file: for tasks decided by the top class.
        task = TASKS.of(entry)
        if kwargs.get("quantization") == "int8" and task is not None and \
                task.decision == "argmax":
            line, within = _int8_accuracy(entry, path)
            lines["int8 vs float"] = line
            checks["int8 within 1 point of float"] = within
    return lines


def _int8_accuracy(entry, path, num_examples=2000):
    """Test accuracy of the int8 file next to the Keras model's (the zoo's 1-point bar)."""
    from mmzoo.export.tflite import run_tflite

    x, y = entry.example_inputs(num_examples, split="test")
    y = np.asarray(y).reshape(-1)
    (keras_probs,) = entry.model.predict(x, batch_size=256, verbose=0).values()
    (int8_probs,) = run_tflite(path, x).values()
    keras_acc = float(np.mean(keras_probs.argmax(-1) == y))
    int8_acc = float(np.mean(int8_probs.argmax(-1) == y))
    agreement = float(np.mean(keras_probs.argmax(-1) == int8_probs.argmax(-1)))
    gap = 100 * (int8_acc - keras_acc)
    within = abs(gap) <= 1
    return (f"test accuracy on {len(y)} test questions: int8 {int8_acc:.1%}, Keras "
            f"{keras_acc:.1%} ({gap:+.1f} points, top-1 agreement {agreement:.1%}; "
            f"{'ok, within' if within else 'FAILED, NOT within'} the zoo's 1-point bar)",
            within)


def _describe_check(check):
    measured = (f"agreement {check.agreement:.1%}" if check.metric == "agreement"
                else f"max |diff| {check.max_abs_diff:.1e}")
    return f"{check.name} {measured} {'ok' if check.passed else 'FAILED'}"


def _plot_answers(images, questions, guesses, truths, path, title, captions=None):
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    rows = -(-len(images) // cols)
    height = 4.0 if captions is None else 5.0
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, height * rows), dpi=100,
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image, question, (label, score), truth) in enumerate(
            zip(axes.flat, images, questions, guesses, truths)):
        ax.imshow(image, interpolation="nearest")
        wrapped = "\n".join(textwrap.wrap(question, 30))
        ax.set_title(f"{wrapped}\n{label} ({score:.0%})" +
                     ("" if label == truth else f", truth: {truth}"),
                     fontsize=9, color="tab:green" if label == truth else "tab:red")
        if captions is not None:
            ax.text(0.5, -0.04, "\n".join(textwrap.wrap(captions[i], 34)), fontsize=8,
                    style="italic", ha="center", va="top", transform=ax.transAxes)
    fig.suptitle(f"mmzoo demo: {title}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


class _BatchCurve(keras.callbacks.Callback):
    """Records the training loss after every batch (for the curve plot)."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def _plot_curve(losses, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    running = np.asarray(losses)
    steps = np.arange(1, len(running) + 1)
    # Keras logs the running mean over the epoch; undo it to get each batch's loss.
    per_batch = steps * running - np.concatenate([[0.0], (steps * running)[:-1]])
    ax.plot(steps, per_batch, color="tab:blue", alpha=0.35, label="batch loss")
    ax.plot(steps, running, color="tab:blue", label="running mean")
    ax.legend()
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss")
    ax.set_title("mmzoo demo: a small FiLM model on mmzoo-shapes VQA")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
