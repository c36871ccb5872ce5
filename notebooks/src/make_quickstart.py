"""Writes notebooks/quickstart.ipynb (run: python notebooks/src/make_quickstart.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

from notebook_io import write

cells = [
    new_markdown_cell(
        "# mmzoo quickstart\n\n"
        "Build a multimodal (image + text) model with one call, train it briefly on "
        "generated *mmzoo-shapes* scenes, plot the training curve and answer questions "
        "about images.\n\n"
        "Every scene shows a few coloured shapes; every example asks a question about "
        "it (*what colour is the circle?*, *how many squares are there?*). Neither the "
        "picture nor the question alone gives the answer — that is what the fusion is for."
    ),
    new_code_cell(
        "# Settings (the test suite shrinks these).\n"
        "EPOCHS = 8\n"
        "NUM_TRAIN = 2000\n"
        "IMAGE_SIZE = 32",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        "import keras\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n\n"
        "import mmzoo\n\n"
        "keras.utils.set_random_seed(0)"
    ),
    new_markdown_cell(
        "## Data\n\n"
        "`mmzoo.data.shapes_arrays` generates scenes in memory: `x` is a dict keyed by "
        "modality (`\"image\"`: raw pixels 0..255, `\"text\"`: token ids), `y` the answer "
        "ids, and `info` carries the tokenizer and the answer names."
    ),
    new_code_cell(
        "num_test = NUM_TRAIN // 4\n"
        "x, y, info = mmzoo.data.shapes_arrays(\n"
        "    \"classification\", NUM_TRAIN + num_test, image_size=IMAGE_SIZE, seed=0)\n"
        "x_train = {k: v[:NUM_TRAIN] for k, v in x.items()}\n"
        "x_test = {k: v[NUM_TRAIN:] for k, v in x.items()}\n"
        "y_train, y_test = y[:NUM_TRAIN], y[NUM_TRAIN:]\n"
        "answers = list(info.label_names)\n"
        "print({k: v.shape for k, v in x.items()}, len(answers), \"answers\")"
    ),
    new_markdown_cell(
        "## Build\n\n"
        "A small CNN image branch and an LSTM text branch, concatenated, then a softmax "
        "over the answers. Swap `image_branch=\"vgg16\"` for the seeds' document model."
    ),
    new_code_cell(
        "model = mmzoo.build_model(\n"
        "    \"classification\",\n"
        "    image_branch=\"cnn\", image_filters=32, pooling=\"max\",\n"
        "    text_branch=\"lstm\", text_units=64,\n"
        "    fusion=\"concat\", hidden_units=128,\n"
        "    image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),\n"
        "    vocab_size=info.vocab_size, sequence_length=info.sequence_length,\n"
        "    num_classes=len(answers),\n"
        ")\n"
        "model.summary()"
    ),
    new_markdown_cell("## Train"),
    new_code_cell(
        "history = model.fit(x_train, y_train, validation_data=(x_test, y_test),\n"
        "                    epochs=EPOCHS, batch_size=32, verbose=2)"
    ),
    new_code_cell(
        "fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))\n"
        "for ax, metric in zip(axes, [\"loss\", \"accuracy\"]):\n"
        "    ax.plot(history.history[metric], label=\"train\")\n"
        "    ax.plot(history.history[f\"val_{metric}\"], label=\"validation\")\n"
        "    ax.set_xlabel(\"epoch\"); ax.set_title(metric); ax.legend(); ax.grid(alpha=0.3)\n"
        "plt.show()\n"
        "majority = np.mean(y_test == np.bincount(y_train).argmax())\n"
        "print(f\"validation accuracy {history.history['val_accuracy'][-1]:.1%} \"\n"
        "      f\"(majority answer: {majority:.1%})\")"
    ),
    new_markdown_cell("## Predict"),
    new_code_cell(
        "import textwrap\n"
        "probs = model.predict({k: v[:6] for k, v in x_test.items()}, verbose=0)[\"probabilities\"]\n"
        "fig, axes = plt.subplots(1, 6, figsize=(15, 3.8))\n"
        "for i, ax in enumerate(axes):\n"
        "    ax.imshow(x_test[\"image\"][i].astype(\"uint8\"))\n"
        "    ax.axis(\"off\")\n"
        "    question = info.tokenizer.decode(x_test[\"text\"][i])\n"
        "    guess = answers[probs[i].argmax()]\n"
        "    title = \"\\n\".join(textwrap.wrap(question + \"?\", 24))\n"
        "    ax.set_title(f\"{title}\\n→ {guess} (truth: {answers[y_test[i]]})\", fontsize=8)\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "## Save and reload\n\n"
        "Saved models reload with `safe_mode=True` once `mmzoo` is imported, and "
        "`build_options` rebuilds the same architecture."
    ),
    new_code_cell(
        "import os, tempfile\n"
        "path = os.path.join(tempfile.mkdtemp(), \"quickstart.keras\")\n"
        "model.save(path)\n"
        "reloaded = keras.saving.load_model(path, safe_mode=True)\n"
        "np.testing.assert_allclose(reloaded.predict(x_test, verbose=0)[\"probabilities\"],\n"
        "                           model.predict(x_test, verbose=0)[\"probabilities\"], atol=1e-6)\n"
        "print(reloaded.build_options)"
    ),
]

write(cells, "quickstart.ipynb")
