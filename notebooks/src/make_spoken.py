"""Writes notebooks/spoken_shapes.ipynb (run: python notebooks/src/make_spoken.py [--execute])."""

from nbformat.v4 import new_code_cell, new_markdown_cell

from notebook_io import write

cells = [
    new_markdown_cell(
        "# Spoken mmzoo-shapes: see and hear the data\n\n"
        "mmzoo-shapes can read its questions aloud (`mmzoo.data.speech`, synthesised "
        "locally with espeak-ng: `apt-get install espeak-ng`). Each example varies the "
        "voice (12 espeak-ng voices, 8 for training and 4 held out), the speaking rate "
        "and pitch, the level, the onset and the background noise, so that a model "
        "cannot key on one voice. This notebook shows scenes with their spoken "
        "questions: the waveform, the log-mel spectrogram an audio branch computes "
        "inside its graph, and a player for each; then the same question in every "
        "voice."
    ),
    new_code_cell(
        "# Settings (the test suite shrinks these).\n"
        "NUM_SCENES = 4\n"
        "SEED = 0",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        "import keras\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "from IPython.display import Audio, display\n\n"
        "import mmzoo\n"
        "from mmzoo.branches.audio import LogMelSpectrogram\n"
        "from mmzoo.data import shapes, speech\n\n"
        "RATE = 16000\n"
        "print(speech.espeak_version())\n"
        "print('training voices:', ', '.join(speech.voice_names('train')))\n"
        "print('held-out voices:', ', '.join(speech.voice_names('held_out')))"
    ),
    new_markdown_cell(
        "## Scenes and their spoken questions\n\n"
        "`speech.spoken_questions(data, split, voices=...)` speaks each scene's question: "
        "float32 waveforms at 16 kHz, 3 s long (48,000 samples), and the voice of each. "
        "The test split may use every voice; training uses the training voices only."
    ),
    new_code_cell(
        "data = shapes.generate_scenes(NUM_SCENES, split=\"test\", image_size=64, seed=SEED)\n"
        "audio, voice = speech.spoken_questions(data, split=\"test\", seed=SEED, voices=\"all\")\n"
        "print(audio.shape, audio.dtype)\n"
        "for q, v in zip(data[\"question\"], voice):\n"
        "    print(f\"{speech.VOICE_NAMES[v]:<10} {q}\")"
    ),
    new_markdown_cell(
        "The log-mel spectrogram is the first layer of every audio branch "
        "(`LogMelSpectrogram`: 25 ms windows every 10 ms, 40 mel bands, log, each band "
        "standardised over the utterance), so saved and exported models take the raw "
        "samples. Here it runs on its own, with the normalisation off to show the levels."
    ),
    new_code_cell(
        "front_end = LogMelSpectrogram(sample_rate=RATE, num_mel_bins=40, normalization=None)\n"
        "mels = keras.ops.convert_to_numpy(front_end(audio))\n"
        "print(\"log-mel:\", mels.shape, \"(examples, frames, bands)\")\n"
        "fig, axes = plt.subplots(NUM_SCENES, 3, figsize=(12, 2.4 * NUM_SCENES),\n"
        "                         gridspec_kw={\"width_ratios\": [1, 2.2, 2.2]})\n"
        "t = np.arange(audio.shape[1]) / RATE\n"
        "for i, row in enumerate(np.atleast_2d(axes)):\n"
        "    row[0].imshow(data[\"image\"][i]); row[0].axis(\"off\")\n"
        "    row[1].plot(t, audio[i], linewidth=0.4)\n"
        "    row[1].set_title(f\"{speech.VOICE_NAMES[voice[i]]}: {data['question'][i]}\", fontsize=9)\n"
        "    row[1].set_xlim(0, t[-1]); row[1].set_ylim(-1, 1)\n"
        "    row[2].imshow(mels[i].T, origin=\"lower\", aspect=\"auto\",\n"
        "                  extent=(0, mels.shape[1] * 0.01, 0, mels.shape[2]))\n"
        "    row[2].set_ylabel(\"mel band\")\n"
        "row[1].set_xlabel(\"seconds\"); row[2].set_xlabel(\"seconds\")\n"
        "fig.tight_layout()\n"
        "plt.show()"
    ),
    new_markdown_cell("Listen (the players appear in Jupyter; the rendered notebook keeps them):"),
    new_code_cell(
        "for i in range(NUM_SCENES):\n"
        "    print(f\"{speech.VOICE_NAMES[voice[i]]}: {data['question'][i]}\")\n"
        "    display(Audio(audio[i], rate=RATE))"
    ),
    new_markdown_cell(
        "## One question, every voice\n\n"
        "`speech.synthesize` speaks any text with one voice, rate and pitch, without "
        "noise. The voices differ in accent, pitch, speed and timbre; the held-out ones "
        "(marked) are never heard in training, so a model's card can say how it does "
        "on speakers it has never met."
    ),
    new_code_cell(
        "question = \"is the red circle to the left of the blue square?\"\n"
        "names = speech.voice_names(\"all\")\n"
        "held_out = set(speech.voice_names(\"held_out\"))\n"
        "fig, axes = plt.subplots(len(names) // 4, 4, figsize=(12, 1.8 * len(names) // 4),\n"
        "                         sharex=True, sharey=True)\n"
        "for name, ax in zip(names, axes.ravel()):\n"
        "    wave = speech.synthesize(question, voice=name)\n"
        "    ax.plot(np.arange(len(wave)) / RATE, wave, linewidth=0.3)\n"
        "    ax.set_title(f\"{name} ({len(wave) / RATE:.2f} s)\" + (\"  held out\" if name in held_out else \"\"),\n"
        "                 fontsize=9)\n"
        "fig.suptitle(question)\n"
        "fig.tight_layout()\n"
        "plt.show()\n"
        "display(Audio(speech.synthesize(question, voice=names[0]), rate=RATE))"
    ),
    new_markdown_cell(
        "## Answering spoken questions\n\n"
        "`shapes_spoken_vqa` is `shapes_vqa` that hears: the same image branch, FiLM "
        "blocks and head, conditioned by an audio branch (`\"crnn\"`: 1-D convolutions "
        "over the log-mel frames, then a GRU) that learned to give, from the spoken "
        "question, the features `shapes_vqa`'s text branch gives the written one "
        "(cross-modal distillation, `mmzoo.training.distill`). Its card reports accuracy "
        "per voice, measured on 5,000 test questions spoken by all 12 voices; the four "
        "held-out voices were never heard in training."
    ),
    new_code_cell(
        "entry = mmzoo.load(\"shapes_spoken_vqa\")\n"
        "m = entry.metadata[\"metrics\"]\n"
        "print(f\"test accuracy {m['accuracy']:.3f}: training voices \"\n"
        "      f\"{m['accuracy_train_voices']:.3f}, held-out voices \"\n"
        "      f\"{m['accuracy_held_out_voices']:.3f} ({m['num_examples']:,} questions)\")\n"
        "values = [m[f\"accuracy_voice_{name}\"] for name in names]\n"
        "fig, ax = plt.subplots(figsize=(11, 3))\n"
        "ax.bar(names, values, color=[\"tab:orange\" if n in held_out else \"tab:blue\"\n"
        "                             for n in names])\n"
        "ax.set_ylim(max(0.0, min(values) - 0.05), 1.0)\n"
        "ax.set_ylabel(\"accuracy\")\n"
        "ax.set_title(\"shapes_spoken_vqa per voice (orange: held out of training)\")\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "Fresh test scenes, each question spoken by a held-out voice and written to a WAV "
        "file at 22.05 kHz: `entry.predict` reads the files, resamples them to 16 kHz, "
        "pads them to 3 s and answers."
    ),
    new_code_cell(
        "import pathlib\n"
        "import tempfile\n\n"
        "import soundfile\n\n"
        "ask = shapes.generate_scenes(NUM_SCENES, split=\"test\", image_size=32, seed=SEED + 100)\n"
        "folder = pathlib.Path(tempfile.mkdtemp())\n"
        "wavs = []\n"
        "for i, question in enumerate(ask[\"question\"]):\n"
        "    voice_name = speech.voice_names(\"held_out\")[i % len(speech.HELD_OUT_VOICES)]\n"
        "    path = folder / f\"question_{i}.wav\"\n"
        "    soundfile.write(path, speech.synthesize(str(question), voice=voice_name,\n"
        "                                            sample_rate=22050), 22050)\n"
        "    wavs.append((str(path), voice_name))\n"
        "answers = entry.predict(images=ask[\"image\"], audio=[p for p, _ in wavs])\n"
        "fig, axes = plt.subplots(1, NUM_SCENES, figsize=(3.2 * NUM_SCENES, 3.6))\n"
        "for i, ax in enumerate(np.atleast_1d(axes)):\n"
        "    label, score = answers[i][0]\n"
        "    truth = shapes.ANSWERS[ask[\"answer\"][i]]\n"
        "    ax.imshow(ask[\"image\"][i]); ax.axis(\"off\")\n"
        "    ax.set_title(f\"{wavs[i][1]}: {ask['question'][i]}\\n-> {label} ({score:.2f}), \"\n"
        "                 f\"truth {truth}\", fontsize=8, wrap=True)\n"
        "    print(f\"{wavs[i][1]:<9} {ask['question'][i]} -> {label} ({score:.2f}); truth {truth}\")\n"
        "fig.tight_layout()\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "Ask your own: any question the scenes' templates can say, in any voice. The "
        "answer is one of the 20 the model knows; the three best are shown."
    ),
    new_code_cell(
        "question = \"is there a red circle?\"\n"
        "wave = speech.synthesize(question, voice=\"us_croak\")\n"
        "display(Audio(wave, rate=RATE))\n"
        "for label, score in entry.predict(images=ask[\"image\"][:1], audio=[wave], top_k=3)[0]:\n"
        "    print(f\"{label:<8} {score:.3f}\")"
    ),
    new_markdown_cell(
        "## Training a model that hears\n\n"
        "A model that hears is an ordinary `build_model` call with an `audio_branch` "
        "(`\"cnn\"`, `\"gru\"` or `\"crnn\"`, over the log-mel frames above). A recipe "
        "with `[dataset] problem = \"spoken_vqa\"` trains one on fresh spoken scenes "
        "(training voices only) and reports accuracy per question type and per voice, "
        "held-out voices included: `mmzoo train recipes/tiny_spoken_vqa.toml` is the "
        "smallest, `recipes/shapes_spoken_vqa.toml` the zoo entry's (it starts from "
        "`shapes_vqa` and distils its question encoder into the audio branch)."
    ),
]

if __name__ == "__main__":
    write(cells, "spoken_shapes.ipynb")
