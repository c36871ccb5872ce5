"""Writes notebooks/mobile_export.ipynb (run: python notebooks/src/make_mobile_export.py).

With `--execute` the notebook is also run at its full settings (2-3 minutes on 2
CPU cores) and saved with its outputs; TensorFlow's C++ start-up log lines
(oneDNN, CUDA and CPU-feature notices, which no environment variable silences
in TF 2.21) are dropped from the saved stderr outputs.
"""

import os
import re
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell(
        "# From a zoo entry to a phone: TFLite export, quantization and the raw-input app\n\n"
        "Take the shipped `mobile_vqa` entry (a three-block convnet + LSTM VQA model with "
        "FiLM fusion, 32x32 images), export it to TFLite in all four variants "
        "(float32, float16, dynamic-range, int8), and measure what each costs and keeps: "
        "file size, batch-1 latency in the LiteRT interpreter a phone runs, agreement "
        "with the Keras model and accuracy on the test split. Then run the `.tflite` file "
        "the way a phone app would: from a raw PNG and a typed question, with nothing "
        "but the interpreter and the two side files the export writes. Last, the same "
        "entry as a SavedModel whose `serve_raw` endpoint takes image bytes and strings.\n\n"
        "Everything is written to a temporary folder; nothing in the repository changes."
    ),
    new_code_cell(
        "# Settings (the test suite shrinks these). The full settings run in 2-3 minutes\n"
        "# on 2 CPU cores.\n"
        "NUM_CALIBRATION = 1000  # validation examples: the export calibrates int8 on half,\n"
        "                        # and checks agreement on the other half\n"
        "NUM_TEST = 2000         # test examples for accuracy (2000 = the card's test set)\n"
        "LATENCY_RUNS = 300      # timed batch-1 calls per variant (the median is reported)\n"
        "SCENE_INDICES = (6, 2)  # test scenes the \"phone app\" answers a question about\n"
        "RAW_IMAGE_SIZE = 96     # the raw picture is bigger than the model's 32x32 input\n"
        "OUT = None              # output folder; None: a new temporary folder",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        "import json\n"
        "import os\n"
        "import statistics\n"
        "import tempfile\n"
        "import time\n"
        "import warnings\n\n"
        "os.environ.setdefault(\"TF_CPP_MIN_LOG_LEVEL\", \"2\")  # quieter TensorFlow logs\n\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "import tensorflow as tf\n"
        "from ai_edge_litert.interpreter import Interpreter  # the runtime a phone app has\n"
        "from PIL import Image\n\n"
        "import mmzoo\n\n"
        "tf.get_logger().setLevel(\"ERROR\")  # no \"Assets written to ...\" lines\n"
        "out = OUT or tempfile.mkdtemp(prefix=\"mmzoo_mobile_\")\n"
        "os.makedirs(out, exist_ok=True)\n"
        "print(\"writing into\", out)"
    ),
    new_markdown_cell(
        "## 1. The entry\n\n"
        "`mmzoo.load` verifies every file's sha256 before anything is read. The card's "
        "metrics (`entry.metadata[\"metrics\"]`) were measured on the first 2,000 "
        "examples of the mmzoo-shapes test split. The model is small and briefly trained: "
        "it answers colour and counting questions better than chance, but has not "
        "learned shapes or yes/no questions (its probabilities there are close to "
        "uniform), so many of its answers are close calls. That matters for "
        "quantization below."
    ),
    new_code_cell(
        "entry = mmzoo.load(\"mobile_vqa\")\n"
        "pre = entry.preprocessor\n"
        "print(entry)\n"
        "print(entry.metadata[\"description\"])\n"
        "print(pre)\n"
        "card = entry.metadata[\"metrics\"]\n"
        "print(f\"{entry.metadata['parameters']['total']:,} parameters; card: test accuracy \"\n"
        "      f\"{card['accuracy']:.1%} on {card['num_examples']} examples\")\n"
        "print(\"by question type:\", \", \".join(\n"
        "    f\"{k[len('accuracy_'):]} {v:.0%}\" for k, v in card.items() if k.startswith(\"accuracy_\")))"
    ),
    new_markdown_cell(
        "## 2. Calibration and test data\n\n"
        "int8 quantization needs real example inputs to calibrate activation ranges. "
        "We take them from the **validation** split (as `mmzoo demo` does), encoded "
        "with the entry's own tokenizer and sequence length; `mmzoo.export` calibrates "
        "on every other example and holds the rest back for its agreement check. "
        "Accuracy is measured on the **test** split with the dataset seed recorded in "
        "the entry, so with `NUM_TEST = 2000` the Keras figure must equal the card's."
    ),
    new_code_cell(
        "dataset = entry.metadata[\"dataset\"]  # the data the card was measured on\n"
        "image_size = pre.image_size[0]\n\n"
        "def shapes(split, n):\n"
        "    return mmzoo.data.shapes_arrays(\n"
        "        entry.task, n, image_size=image_size, split=split, seed=dataset[\"seed\"],\n"
        "        tokenizer=pre.tokenizer, sequence_length=pre.sequence_length)\n\n"
        "x_calib, _, _ = shapes(\"validation\", NUM_CALIBRATION)\n"
        "x_test, y_test, _ = shapes(\"test\", NUM_TEST)\n"
        "print(\"calibration:\", {k: v.shape for k, v in x_calib.items()})\n"
        "print(\"test:       \", {k: v.shape for k, v in x_test.items()}, \"labels\", y_test.shape)"
    ),
    new_markdown_cell(
        "## 3. Export the four TFLite variants\n\n"
        "One call per variant. Each conversion runs in a child process (a converter crash "
        "becomes an `ExportError`), the file holds builtin ops only (no Flex ops: the "
        "LSTM is unrolled over the 16 tokens), and the export loads the result in "
        "`ai_edge_litert` and compares it with the Keras model on held-back examples.\n\n"
        "We pass `parity=\"warn\"`: by default a variant that misses its gate (float32 "
        "max |diff| <= 1e-5, float16 <= 1e-2, quantized top-1 agreement >= 99%) is not "
        "written at all. **This model's quantized variants miss the 99% agreement gate.** "
        "The reason is the model rather than the converter: for half of the "
        "questions its top two answers are within a few hundredths of each other — on "
        "shape and yes/no questions its probabilities are nearly uniform — so any "
        "rounding reorders them. Whether that matters is a question of *accuracy*, "
        "which section 4 measures instead of assuming."
    ),
    new_code_cell(
        "VARIANTS = (\"float32\", \"float16\", \"dynamic_range\", \"int8\")\n"
        "paths, reports = {}, {}\n"
        "for q in VARIANTS:\n"
        "    paths[q] = os.path.join(out, f\"mobile_vqa_{q}.tflite\")\n"
        "    with warnings.catch_warnings():\n"
        "        warnings.simplefilter(\"ignore\")  # a missed gate is printed below instead\n"
        "        reports[q] = mmzoo.export(entry, paths[q], format=\"tflite\", quantization=q,\n"
        "                                  representative_data=x_calib, parity=\"warn\",\n"
        "                                  overwrite=True, verbose=False)\n"
        "    check = reports[q].check(\"litert\")\n"
        "    print(f\"{q:<14} {reports[q].size_bytes / 1e6:6.3f} MB  \"\n"
        "          f\"{check.describe().split(None, 1)[1]}\")"
    ),
    new_markdown_cell(
        "The full report of the int8 variant: its signature (float32 image and int32 "
        "token ids in, probabilities out: the int8 model quantizes on entry and "
        "dequantizes on exit), the operators, the parity figures and the files "
        "written — the model plus `<stem>.vocab.txt` and `<stem>.preprocessing.json`."
    ),
    new_code_cell("print(reports[\"int8\"])"),
    new_markdown_cell(
        "## 4. Size, latency, agreement and accuracy\n\n"
        "Every variant answers the same `NUM_TEST` test questions one at a time "
        "(batch 1, one thread, through the `serving_default` signature runner). "
        "Latency is the median of `LATENCY_RUNS` calls per variant, interleaved so that "
        "a busy machine slows all of them alike. *Agreement* is top-1 agreement with the "
        "Keras model on the test questions; *clear cases* restricts it to the questions "
        "where the Keras model's top answer leads the runner-up by more than 0.1."
    ),
    new_code_cell(
        "keras_probs = entry.model.predict(x_test, batch_size=256, verbose=0)[\"probabilities\"]\n"
        "keras_pred = keras_probs.argmax(1)\n"
        "keras_acc = float(np.mean(keras_pred == y_test))\n"
        "top2 = np.sort(keras_probs, axis=1)[:, -2:]\n"
        "clear = (top2[:, 1] - top2[:, 0]) > 0.1\n"
        "print(f\"Keras float32: test accuracy {keras_acc:.2%} on {NUM_TEST} examples \"\n"
        "      f\"(card: {card['accuracy']:.2%} on {card['num_examples']})\")\n"
        "print(f\"median gap between the top two answers: {np.median(top2[:, 1] - top2[:, 0]):.3f}; \"\n"
        "      f\"clear cases (gap > 0.1): {clear.mean():.0%} of the test questions\")\n\n"
        "runners = {q: Interpreter(model_path=paths[q], num_threads=1)\n"
        "           .get_signature_runner(\"serving_default\") for q in VARIANTS}\n"
        "preds = {}\n"
        "for q, run in runners.items():\n"
        "    preds[q] = np.array([\n"
        "        run(image=x_test[\"image\"][i:i + 1], text=x_test[\"text\"][i:i + 1])\n"
        "        [\"probabilities\"][0].argmax() for i in range(NUM_TEST)])\n\n"
        "one = {\"image\": x_test[\"image\"][:1], \"text\": x_test[\"text\"][:1]}\n"
        "times = {q: [] for q in VARIANTS}\n"
        "for _ in range(LATENCY_RUNS):\n"
        "    for q in VARIANTS:\n"
        "        start = time.perf_counter()\n"
        "        runners[q](**one)\n"
        "        times[q].append(time.perf_counter() - start)\n\n"
        "rows = {}\n"
        "for q in VARIANTS:\n"
        "    agree = preds[q] == keras_pred\n"
        "    rows[q] = dict(size_mb=os.path.getsize(paths[q]) / 1e6,\n"
        "                   latency_ms=statistics.median(times[q]) * 1e3,\n"
        "                   agreement=float(agree.mean()),\n"
        "                   agreement_clear=float(agree[clear].mean()) if clear.any() else float(\"nan\"),\n"
        "                   accuracy=float(np.mean(preds[q] == y_test)))\n"
        "keras_mb = os.path.getsize(entry.path / \"model.keras\") / 1e6\n\n"
        "print()\n"
        "print(\"| model | size | batch-1 latency | agreement with Keras | clear cases | test accuracy |\")\n"
        "print(\"|---|---:|---:|---:|---:|---:|\")\n"
        "print(f\"| Keras float32 (model.keras) | {keras_mb:.3f} MB | - | - | - | {keras_acc:.2%} |\")\n"
        "for q, r in rows.items():\n"
        "    print(f\"| TFLite {q} | {r['size_mb']:.3f} MB | {r['latency_ms']:.3f} ms | \"\n"
        "          f\"{r['agreement']:.1%} | {r['agreement_clear']:.1%} | {r['accuracy']:.2%} |\")"
    ),
    new_markdown_cell(
        "Reading the table: the quantized files change many *answers* but few *right* "
        "answers. The flips happen among near-ties — mostly questions the model is "
        "guessing on, where one guess is as good as another — while on clear cases "
        "(the float model's top answer ahead by more than 0.1) the variants agree far "
        "more often. So agreement is the wrong yardstick for this model, and accuracy "
        "on the test split is the right one.\n\n"
        "**The bar for a phone model** (from the issue that asked for this export): the "
        "int8 file under 5 MB, and its test accuracy within 1 point of the float "
        "model's. Measured, not assumed — at 2,000 test examples one point is 20 "
        "questions, so a small sample can swing either way."
    ),
    new_code_cell(
        "int8 = rows[\"int8\"]\n"
        "drop = (keras_acc - int8[\"accuracy\"]) * 100  # percentage points lost (negative: gained)\n"
        "size_ok = int8[\"size_mb\"] < 5.0\n"
        "accuracy_ok = drop <= 1.0\n"
        "print(f\"int8 file: {int8['size_mb']:.3f} MB (< 5 MB: {'yes' if size_ok else 'NO'})\")\n"
        "print(f\"int8 test accuracy {int8['accuracy']:.2%} vs Keras float {keras_acc:.2%}: \"\n"
        "      f\"{-drop:+.2f} points (within 1 point: {'yes' if accuracy_ok else 'NO'})\")\n"
        "print(f\"int8 agreement with Keras: {int8['agreement']:.1%} overall, \"\n"
        "      f\"{int8['agreement_clear']:.1%} on clear cases\")\n"
        "print(\"the bar\", \"holds\" if size_ok and accuracy_ok else \"does NOT hold\",\n"
        "      f\"on these {NUM_TEST} test examples\")"
    ),
    new_code_cell(
        "names = [q.replace(\"_\", \"\\n\") for q in VARIANTS]\n"
        "colors = [\"tab:blue\", \"tab:cyan\", \"tab:orange\", \"tab:red\"]\n"
        "panels = [\n"
        "    (\"file size (MB)\", [rows[q][\"size_mb\"] for q in VARIANTS], \"{:.2f}\"),\n"
        "    (\"batch-1 latency (ms, median)\", [rows[q][\"latency_ms\"] for q in VARIANTS], \"{:.3f}\"),\n"
        "    (\"top-1 agreement with Keras (%)\\n(black: where Keras's top-2 gap > 0.1)\",\n"
        "     [100 * rows[q][\"agreement\"] for q in VARIANTS], \"{:.1f}\"),\n"
        "    (f\"test accuracy minus Keras float32 ({keras_acc:.1%}),\\n\"\n"
        "     f\"percentage points, {NUM_TEST} test examples\",\n"
        "     [100 * (rows[q][\"accuracy\"] - keras_acc) for q in VARIANTS], \"{:+.2f}\"),\n"
        "]\n"
        "fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))\n"
        "for ax, (title, values, fmt) in zip(axes, panels):\n"
        "    bars = ax.bar(names, values, color=colors)\n"
        "    ax.bar_label(bars, [fmt.format(v) for v in values], fontsize=9, padding=2)\n"
        "    ax.set_title(title, fontsize=10)\n"
        "    ax.margins(y=0.15)\n"
        "    ax.grid(axis=\"y\", alpha=0.3)\n"
        "axes[2].scatter(names, [100 * rows[q][\"agreement_clear\"] for q in VARIANTS],\n"
        "                color=\"black\", marker=\"_\", s=500, linewidths=2, zorder=3)\n"
        "axes[2].set_ylim(0, 112)\n"
        "limit = max(1.5, *(abs(v) for v in panels[3][1])) * 1.4\n"
        "axes[3].set_ylim(-limit, limit)\n"
        "axes[3].axhline(0, color=\"black\", linewidth=0.8)\n"
        "axes[3].axhspan(-1, limit, color=\"tab:green\", alpha=0.08)\n"
        "axes[3].axhline(-1, color=\"tab:green\", linestyle=\"--\", linewidth=1)\n"
        "axes[3].text(3.45, -1, \"bar: -1 point \", color=\"tab:green\", fontsize=8,\n"
        "             ha=\"right\", va=\"bottom\")\n"
        "fig.suptitle(\"mobile_vqa as TFLite: what each variant costs and keeps \"\n"
        "             \"(ai_edge_litert, 1 thread)\")\n"
        "fig.tight_layout()\n"
        "fig.savefig(os.path.join(out, \"mobile_export.png\"), dpi=100)\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "## 5. Running the `.tflite` file as a phone app would\n\n"
        "A phone app has the interpreter, the `.tflite` file and its two side files — "
        "no Python tokenizer, no TensorFlow. `<stem>.preprocessing.json` says what each "
        "input must be (shape, dtype, pixel range 0..255, the bilinear antialiased "
        "resize; for text the normalisation rules, sequence length and padding id), and "
        "`<stem>.vocab.txt` holds the vocabulary (line number = token id). Below, the "
        "tokenizer is written from the JSON alone, the image is decoded and resized "
        "with PIL (what an app's image library does), and the result is compared with "
        "`entry.predict` on the same PNG and question. The answer names are in the "
        "JSON too (`label_names`, one per output column), since the export was given "
        "the zoo entry."
    ),
    new_code_cell(
        "stem = paths[\"int8\"][: -len(\".tflite\")]\n"
        "with open(stem + \".preprocessing.json\", encoding=\"utf-8\") as f:\n"
        "    config = json.load(f)\n"
        "with open(stem + \".vocab.txt\", encoding=\"utf-8\") as f:\n"
        "    vocabulary = f.read().split(\"\\n\")[:-1]\n"
        "text_config = config[\"inputs\"][\"text\"]\n"
        "rules = text_config[\"tokenizer\"]\n"
        "print(\"inputs:\", {k: (v[\"shape\"], v[\"dtype\"]) for k, v in config[\"inputs\"].items()},\n"
        "      \"outputs:\", config[\"outputs\"])\n"
        "print(\"image:\", config[\"inputs\"][\"image\"][\"resize\"], config[\"inputs\"][\"image\"][\"value_range\"])\n"
        "print(f\"vocabulary: {len(vocabulary)} tokens, e.g. {vocabulary[:8]}\")\n"
        "print(\"tokenizer steps:\", *rules[\"steps\"], sep=\"\\n  \")"
    ),
    new_code_cell(
        "# The tokenizer, from the JSON rules alone.\n"
        "lowercase = {}\n"
        "for first, last, step, delta in rules[\"lowercase_map\"]:\n"
        "    for cp in range(first, last + 1, step):\n"
        "        lowercase[cp] = cp + delta\n"
        "separators = [tuple(r) for r in rules[\"separator_ranges\"]]\n"
        "word_ids = {word: i for i, word in enumerate(vocabulary)}\n\n"
        "def phone_tokenize(text):\n"
        "    chars = []\n"
        "    for ch in text:  # a Python str is already decoded UTF-8\n"
        "        cp = lowercase.get(ord(ch), ord(ch))\n"
        "        chars.append(\" \" if any(lo <= cp <= hi for lo, hi in separators) else chr(cp))\n"
        "    ids = [word_ids.get(w, rules[\"out_of_vocabulary_id\"]) for w in \"\".join(chars).split(\" \") if w]\n"
        "    length = text_config[\"sequence_length\"]\n"
        "    ids = ids[:length] + [text_config[\"padding_id\"]] * max(0, length - len(ids))\n"
        "    return np.array([ids], np.int32)\n\n"
        "def phone_image(path):\n"
        "    image_config = config[\"inputs\"][\"image\"]\n"
        "    height, width = image_config[\"resize\"][\"to\"]\n"
        "    image = Image.open(path).convert(\"RGB\")\n"
        "    if image.size != (width, height):\n"
        "        # PIL's bilinear filter widens with the scale factor when shrinking:\n"
        "        # an antialiased bilinear resize, as the JSON asks.\n"
        "        image = image.resize((width, height), Image.BILINEAR)\n"
        "    return np.asarray(image, np.float32)[None]  # 0..255, NHWC, batch 1\n\n"
        "# Raw scene pictures (bigger than the model's input) and typed questions.\n"
        "examples = []\n"
        "for index in SCENE_INDICES:\n"
        "    scene = mmzoo.data.generate_scenes(1, split=\"test\", image_size=RAW_IMAGE_SIZE,\n"
        "                                       start=index)\n"
        "    png_path = os.path.join(out, f\"scene_{index}.png\")\n"
        "    Image.fromarray(scene[\"image\"][0]).save(png_path)\n"
        "    question = str(scene[\"question\"][0])\n"
        "    typed = question[0].upper() + question[1:].replace(\"?\", \" ??\")  # as a user types\n"
        "    examples.append(dict(png=png_path, text=typed,\n"
        "                         truth=pre.label_names[int(scene[\"answer\"][0])],\n"
        "                         ids=phone_tokenize(typed), pixels=phone_image(png_path)))\n\n"
        "fig, axes = plt.subplots(1, 2 * len(examples), figsize=(5 * len(examples), 2.8), squeeze=False)\n"
        "for n, ex in enumerate(examples):\n"
        "    reference = pre(images=ex[\"png\"])[\"image\"]  # the entry's own resize (TF)\n"
        "    print(f\"{os.path.basename(ex['png'])}: {ex['text']!r} (true answer: {ex['truth']})\")\n"
        "    print(\"  token ids:\", ex[\"ids\"][0].tolist())\n"
        "    print(\"  same ids as the Python tokenizer:\",\n"
        "          bool(np.array_equal(ex[\"ids\"][0], pre.tokenizer.encode(ex[\"text\"]))))\n"
        "    print(f\"  pixels vs the entry's resize: max |diff| \"\n"
        "          f\"{np.abs(ex['pixels'] - reference).max():.2f} of 255\")\n"
        "    raw = np.asarray(Image.open(ex[\"png\"]))\n"
        "    for ax, img, title in [(axes[0, 2 * n], raw, f\"raw PNG {raw.shape[1]}x{raw.shape[0]}\"),\n"
        "                           (axes[0, 2 * n + 1], ex[\"pixels\"][0].astype(np.uint8),\n"
        "                            f\"model input {image_size}x{image_size}\")]:\n"
        "        ax.imshow(img, interpolation=\"nearest\")\n"
        "        ax.set_title(title, fontsize=8)\n"
        "        ax.axis(\"off\")\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "Now the app's part: one interpreter per file, the signature runner named in the "
        "JSON, batch 1. Answers of the four variants next to `entry.predict` (Keras, "
        "TensorFlow preprocessing) on the same PNG and typed question: the first "
        "question is one the model is sure about, the second a near-tie between shapes "
        "(a question type it has not learned), where the quantized variants' "
        "probabilities move by a few hundredths and their order can change."
    ),
    new_code_cell(
        "labels = config[\"label_names\"]  # from the side file, as an app reads them\n"
        "assert labels == list(pre.label_names)\n\n"
        "def top(probs, k=3):\n"
        "    order = np.argsort(probs)[::-1][:k]\n"
        "    return \", \".join(f\"{labels[i]} {probs[i]:.2f}\" for i in order)\n\n"
        "phone_runners = {q: Interpreter(model_path=paths[q], num_threads=1)\n"
        "                 .get_signature_runner(config[\"signature\"]) for q in VARIANTS}\n"
        "for ex in examples:\n"
        "    print(f\"{ex['text']!r} (true answer: {ex['truth']})\")\n"
        "    for q, runner in phone_runners.items():\n"
        "        probs = runner(image=ex[\"pixels\"], text=ex[\"ids\"])[\"probabilities\"][0]\n"
        "        print(f\"  TFLite {q:<14} answers: {top(probs)}\")\n"
        "    keras_answer = entry.predict(images=ex[\"png\"], texts=ex[\"text\"], top_k=3)[0]\n"
        "    print(f\"  {'entry.predict':<21} answers: \"\n"
        "          + \", \".join(f\"{label} {score:.2f}\" for label, score in keras_answer))"
    ),
    new_markdown_cell(
        "## 6. The same entry as a SavedModel, raw inputs included\n\n"
        "For a server, `mmzoo.export(entry, folder)` writes a SavedModel. Because the "
        "entry carries its tokenizer, it gets a second endpoint, `serve_raw`, which "
        "takes encoded image files and strings and does the decoding, resizing and "
        "tokenization inside the graph (checked at export against the Python path)."
    ),
    new_code_cell(
        "saved_model_path = os.path.join(out, \"saved_model\")\n"
        "sm_report = mmzoo.export(entry, saved_model_path, overwrite=True, verbose=False)\n"
        "print(sm_report)\n"
        "loaded = tf.saved_model.load(saved_model_path)\n"
        "print(\"endpoints:\", sorted(loaded.signatures))\n"
        "if \"serve_raw\" in loaded.signatures:\n"
        "    png_bytes = []\n"
        "    for ex in examples:\n"
        "        with open(ex[\"png\"], \"rb\") as f:\n"
        "            png_bytes.append(f.read())\n"
        "    raw = loaded.signatures[\"serve_raw\"](\n"
        "        image=tf.constant(png_bytes), text=tf.constant([ex[\"text\"] for ex in examples]))\n"
        "    for ex, probs in zip(examples, raw[\"probabilities\"].numpy()):\n"
        "        print(f\"SavedModel serve_raw, {ex['text']!r}: {top(probs)}\")\n"
        "else:\n"
        "    print(\"no serve_raw endpoint:\", sm_report.notes)"
    ),
    new_markdown_cell(
        "## Where to go from here\n\n"
        "- `mmzoo export mobile_vqa phone/model.tflite --quantization int8 --data calib.npz` "
        "(an `.npz` with `image` and `text` arrays) does section 3 from the command line; `python bench/export.py` compares the formats for a "
        "bigger document model as well.\n"
        "- A better-trained model has fewer near-ties, and then its int8 variant passes "
        "the default 99% agreement gate with `parity=\"raise\"`.\n"
        "- On Android or iOS, load the `.tflite` file with the LiteRT runtime, port "
        "`phone_tokenize` and `phone_image` above, and ship the vocabulary and the "
        "preprocessing JSON (with the answer names) with the app."
    ),
]

nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
})
path = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mobile_export.ipynb"))

# TensorFlow's C++ log lines ("I0000 00:00:... port.cc:153] ...") and their
# continuation, written to the kernel's stderr when TensorFlow starts.
_TF_LOG = re.compile(
    r"^([IWE]\d{4} \S+ +\d+ \S+:\d+\]|WARNING: All log messages before absl|"
    r"To enable the following instructions|INFO: Created TensorFlow Lite)")


def _execute(nb):
    from nbclient import NotebookClient

    # The "python3" kernel starts `python` from PATH: make that this interpreter.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                lines = [line for line in output["text"].splitlines(keepends=True)
                         if line.strip() and not _TF_LOG.match(line)]
                if not lines:
                    continue
                output["text"] = "".join(lines)
            kept.append(output)
        cell["outputs"] = kept
    return nb


if "--execute" in sys.argv[1:]:
    nb = _execute(nb)
nbformat.write(nb, path)
print("wrote", path, "(executed)" if "--execute" in sys.argv[1:] else "")
