"""Why did a multimodal model answer that? Grad-CAM, integrated gradients, modality shares.

`explain(model_or_entry, images=..., texts=...)` returns one `Explanation` per
example:

- `image_map`: Grad-CAM (Selvaraju et al., ICCV 2017) on the last feature
  map of the image's path (`image_layer="last"`): the feature map's channels
  weighted by the spatially averaged gradient of the explained score, ReLU,
  upsampled (bilinear) to the input image's pixels and normalised to sum to
  1; or, with `image_method="hirescam"`, HiResCAM (Draelos & Carin 2020),
  which weighs each position by its own gradient instead of the average.
  Grad-CAM reads the last convolutional feature map, where semantics and
  positions meet. In a model whose fusion transforms the image map itself
  (`film`, `cross_attention`: the fusion's `call(..., return_map=True)`),
  that is the fusion's last map, the one its readout pools, which has seen
  the question; elsewhere it is the image branch's last map.
  `image_layer="branch"` always takes the image branch's. For a branch that
  pools or flattens its map, the gradient reaches the map through that
  pooling (chain rule), so every image branch is covered.
- `token_scores`: integrated gradients (Sundararajan et al., ICML 2017) on
  the text embeddings, from a baseline to the real ones along a straight
  line (`steps` Riemann points, midpoint rule; padding keeps its own
  embedding, as it is not part of the text). The baseline
  (`text_baseline`) is the all-zero embedding, the paper's choice for text,
  or `"unknown"`: every word replaced by the out-of-vocabulary word's
  embedding, which a model trained with word dropout has learnt to read as
  "a word is missing here". One score per token,
  summing (up to the integration error) to the score's change from that
  baseline. `baseline_score` is the score there, and `convergence_delta`
  the integration error: the paper's check is that it stays within 5% of
  `score - baseline_score`, else raise `steps`.
- `audio_scores`: for a model that hears, occlusion over time: the score's
  drop when each `audio_window` seconds of the waveform are silenced (the
  model's own silence), one value per window, in seconds from the start.
- `modality_scores`: each modality's share of the score: how much the score
  drops when the modality is removed, through the model's `modality_mask`
  input when it has one, else by occlusion (each modality's declared
  `occlude`: the image replaced by its mean colour, the text by padding,
  zeros for a modality that declares none); negative drops count as 0,
  shares sum to 1.
  `fusion_weights` adds the learned weights of fusions that have them.

The explained score is the probability of the predicted answer (or of
`target`), the sigmoid's probability of the predicted side for binary models,
and the output for regression.

A captioning model (a generative task) is explained word by word: the
caption is generated, then each word's probability given the image and the
words before it (teacher forcing: the same numbers the decoder produced) gets
its own Grad-CAM map, integrated gradients over the words before it, and
modality shares (image against the caption so far). `explain` then returns
one `CaptionExplanation` per image, holding an `Explanation` per word.

Example:

```python
entry = mmzoo.load("shapes_vqa")
(e,) = mmzoo.explain(entry, images="scene.png", texts="what colour is the circle?")
e.answer, e.modality_scores, e.token_scores[:3]
e.plot("why.png")

(c,) = mmzoo.explain(mmzoo.load("shapes_captioner"), images="scene.png")
c.caption, [(w.answer, round(w.modality_scores["image"], 2)) for w in c.words]
c.plot("caption_why.png")  # one heat map per word
```
"""

import dataclasses
import sys
import types

import numpy as np

from mmzoo.modalities import branch_of
# The declared modalities, in model order (the modality mask's column order).
from mmzoo.registry import MODALITIES


@dataclasses.dataclass
class Explanation:
    """The explanation of one answer.

    Attributes:
        image: the model's input image, `(H, W, 3)` uint8 (for plotting).
        image_map: `(H, W)` float32 Grad-CAM map in the input image's pixel
            coordinates, non-negative, summing to 1 (uniform when the
            gradient is zero everywhere). `None` for a model without image.
        token_scores: `[(token, score), ...]` for the text's tokens (padding
            left out), integrated gradients. `None` for a model without text.
        modality_scores: `{modality: share}`, shares summing to 1.
        fusion_weights: `{modality: weight}` of the fusion, where it learns
            them (attention, gated, weighted, late, hybrid), else `None`.
        answer: the explained answer (label name, or class index as a string).
        score: the explained score (a probability, or the regression output).
        target: the explained class index.
        baseline_score: the explained score at integrated gradients' baseline
            (every token of the text embedded as zeros, or as the unknown
            word with `text_baseline="unknown"`), or `None` for a model
            without text.
        text: the text, as the tokenizer reads it (or `None`).
        image_method: how `image_map` was made (`"grad_cam"` or `"hirescam"`).
        image_layer: which map it was made on: `"fusion"` (the fusion's last
            map) or `"branch"` (the image branch's last map).
        audio_scores: `(windows,)` float32, the score's drop when each window
            of the waveform is silenced (occlusion), or `None` for a model
            without audio.
        audio_window: the windows' length in seconds.
    """

    image: np.ndarray
    image_map: np.ndarray
    token_scores: list
    modality_scores: dict
    fusion_weights: dict
    answer: str
    score: float
    target: int
    text: str = None
    image_method: str = "grad_cam"
    audio_scores: np.ndarray = None
    audio_window: float = None
    image_layer: str = "branch"
    baseline_score: float = None

    @property
    def convergence_delta(self):
        """Integrated gradients' integration error, in units of `score`.

        `sum(token_scores) - (score - baseline_score)`: zero for the exact
        integral (the completeness axiom of Sundararajan et al. 2017, who
        suggest raising `steps` until it is within 5% of
        `score - baseline_score`). `None` for a model without text.
        """
        if self.token_scores is None or self.baseline_score is None:
            return None
        return sum(s for _, s in self.token_scores) - (self.score - self.baseline_score)

    def converged(self, tolerance=0.05):
        """Whether integrated gradients had enough `steps` for this explanation.

        True when `|convergence_delta|` is within `tolerance` of the score's
        change from the baseline (Sundararajan et al. 2017 suggest 5%), or
        when the score barely moves from the baseline (under 0.01: there is
        next to nothing to attribute). `None` for a model without text.
        """
        if self.convergence_delta is None:
            return None
        change = abs(self.score - self.baseline_score)
        return change < 0.01 or abs(self.convergence_delta) <= tolerance * change

    def plot(self, path=None):
        """Image with the Grad-CAM overlay, the words coloured by score, the modality shares.

        Args:
            path: where to save the figure (PNG); `None` only returns it.

        Returns:
            The matplotlib `Figure`.
        """
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), dpi=100,
                                 gridspec_kw={"width_ratios": [1, 1.6, 0.9]})
        ax = axes[0]
        if self.image is not None:
            ax.imshow(self.image, interpolation="nearest")
            if self.image_map is not None:
                ax.imshow(self.image_map, cmap="jet", alpha=0.45, interpolation="bilinear")
            method = {"grad_cam": "Grad-CAM", "hirescam": "HiResCAM"}[self.image_method]
            where = {"fusion": "fusion's last map", "branch": "image branch's map"}.get(
                self.image_layer)
            ax.set_title(f"{method} ({where})" if where else method, fontsize=10)
        ax.axis("off")
        ax = axes[1]
        ax.axis("off")
        ax.set_title(f"answer: {self.answer} ({self.score:.0%})")
        if self.token_scores:
            scores = np.array([s for _, s in self.token_scores])
            top = max(np.abs(scores).max(), 1e-12)
            x, y = 0.0, 0.75
            cmap = plt.get_cmap("RdBu_r")
            for token, score in self.token_scores:
                width = 0.035 * (len(token) + 1)
                if x + width > 1.0:
                    x, y = 0.0, y - 0.18
                strength = score / top
                ax.text(x, y, token, fontsize=12, transform=ax.transAxes,
                        color="white" if abs(strength) > 0.6 else "black",
                        bbox={"facecolor": cmap(0.5 + 0.5 * strength), "edgecolor": "none",
                              "boxstyle": "round,pad=0.2"})
                x += width
            legend = "integrated gradients: red raises the answer, blue lowers it"
            if self.converged() is False:
                legend += (f"\n(not converged: the words add up {self.convergence_delta:+.3f} "
                           "off the score's change; raise steps)")
            ax.text(0.0, 0.1 if self.audio_scores is None else 0.4, legend,
                    fontsize=8, color="0.4" if self.converged() else "tab:red",
                    transform=ax.transAxes)
        if self.audio_scores is not None:
            inset = ax.inset_axes([0.0, -0.05 if self.token_scores else 0.25, 1.0, 0.3])
            times = (np.arange(len(self.audio_scores)) + 0.5) * self.audio_window
            inset.bar(times, self.audio_scores, width=0.9 * self.audio_window,
                      color=np.where(self.audio_scores >= 0, "tab:red", "tab:blue"))
            inset.axhline(0, color="0.5", linewidth=0.5)
            inset.set_xlabel("audio, seconds: score lost when silenced", fontsize=8)
            inset.tick_params(labelsize=7)
        ax = axes[2]
        names = list(self.modality_scores)
        ax.bar(names, [self.modality_scores[n] for n in names], color=["tab:orange", "tab:blue",
                                                                       "tab:green"][:len(names)])
        if self.fusion_weights:
            ax.plot(names, [self.fusion_weights.get(n, np.nan) for n in names], "kD",
                    label="fusion weight")
            ax.legend(fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title("modality share")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
            plt.close(fig)
        return fig


@dataclasses.dataclass
class CaptionExplanation:
    """The explanation of one generated caption, word by word.

    Attributes:
        image: the model's input image, `(H, W, 3)` uint8.
        caption: the generated caption (words joined by spaces).
        words: one `Explanation` per generated word, in order. Word `t`'s
            `answer` is the word, `score` its probability given the image and
            the words before it, `image_map` the Grad-CAM map of that
            probability, `token_scores` the integrated gradients of the
            words before it (the start token first), `modality_scores`
            `{"image": share, "text": share}` (text: the caption so far).
        image_method: how the maps were made (`"grad_cam"` or `"hirescam"`).
    """

    image: np.ndarray
    caption: str
    words: list
    image_method: str = "grad_cam"

    def plot(self, path=None, columns=6):
        """The image, then each word's heat map with its probability and image share.

        Args:
            path: where to save the figure (PNG); `None` only returns it.
            columns: panels per row.

        Returns:
            The matplotlib `Figure`.
        """
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        panels = 1 + len(self.words)
        rows = -(-panels // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(2.0 * columns, 2.3 * rows + 0.5),
                                 dpi=100, squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        axes[0, 0].imshow(self.image, interpolation="nearest")
        axes[0, 0].set_title("input", fontsize=9)
        for k, word in enumerate(self.words, start=1):
            ax = axes[k // columns, k % columns]
            ax.imshow(self.image, interpolation="nearest")
            ax.imshow(word.image_map, cmap="jet", alpha=0.45, interpolation="bilinear")
            ax.set_title(f"{word.answer!r} {word.score:.0%}\nimage share "
                         f"{word.modality_scores.get('image', 0.0):.0%}", fontsize=9)
        method = {"grad_cam": "Grad-CAM", "hirescam": "HiResCAM"}[self.image_method]
        fig.suptitle(f"{self.caption}  ({method} per word)", fontsize=10)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
            plt.close(fig)
        return fig


IMAGE_METHODS = ("grad_cam", "hirescam")
IMAGE_LAYERS = ("last", "branch")
# Integrated gradients' baselines for the text (`_baseline_table`), each with
# the words that name it in messages.
TEXT_BASELINES = {"zero": "the zero embedding", "unknown": "every word unknown"}

# Integrated gradients' default steps: 32 missed the 5% completeness bound on
# 49% of shapes_vqa's questions, 128 on 3% (bench/ig_convergence.py).
DEFAULT_STEPS = 128


def explain(model_or_entry, images=None, texts=None, *, target=None, steps=DEFAULT_STEPS,
            text_baseline="zero", tokenizer=None,
            image_method="grad_cam", image_layer="last", generation=None, audio_window=0.1,
            **raw):
    """Explains a model's answers: Grad-CAM, integrated gradients, modality shares.

    Args:
        model_or_entry: a zoo entry (`mmzoo.load(...)`: raw images and strings
            are accepted) or a Keras model built by `mmzoo.build_model` (then
            `images` are raw pixel arrays `(N, H, W, C)` and `texts` token ids
            `(N, L)`, or strings with `tokenizer`).
        images: image files, arrays or PIL images (entries), one or a list.
        texts: strings (entries, or models with `tokenizer`) or token ids.
        target: the class index to explain, one for all or one per example;
            default the model's answer.
        steps: integrated-gradients steps (>= 1). Each explanation's
            `convergence_delta` says whether they were enough (within 5% of
            `score - baseline_score`): on 200 `shapes_vqa` questions, 32
            steps missed that for 49% of them, 128 steps for 3%
            (`bench/ig_convergence.py`).
        text_baseline: where integrated gradients start: `"zero"`, the
            all-zero embedding (Sundararajan et al.'s baseline for text), or
            `"unknown"`, every word replaced by the out-of-vocabulary word's
            embedding (padding keeps its own either way). A model trained
            with word dropout (`training.word_dropout`, `word_subsampling`)
            has learnt the unknown word as "a word is missing here", while
            it never saw the zero embedding, which it may read as a
            question of its own and credit to words that carry no
            information. On `shapes_vqa` models trained with word
            dropout, the named attribute outranks every function word in
            0.68 to 0.83 of 40 colour and shape questions from zero (the
            shipped entry: 0.80), 0.93 to 0.98 from the unknown word (0.975),
            most misses on "what" gone; the entry trained on whole questions,
            which read the question type from "object", gave 0.43 and 0.48:
            that shortcut shows from both (README).
        tokenizer: a `mmzoo.data.Tokenizer` for a bare model given strings.
        image_method: `"grad_cam"` (Selvaraju et al. 2017: each channel
            weighted by its spatially averaged gradient) or `"hirescam"`
            (Draelos & Carin 2020: gradient times activation at each
            position, summed over channels). When the question changes which
            channels matter *where* (FiLM), averaging the gradient over the
            map blurs that away: on `shapes_vqa`, the HiResCAM peak lies on
            the object a colour or shape question names far more often
            on the image branch's map (0.97 against 0.36; on FiLM's
            last map both exceed 0.95).
        image_layer: `"last"`: the last feature map of the image's path,
            the fusion's own when it transforms the map (FiLM,
            cross-attention), else the image branch's; `"branch"`: the
            image branch's last feature map. On `shapes_vqa` the first
            puts the Grad-CAM peak on the object a colour or shape question
            names far more often (0.96 against 0.36 of 72 fresh questions):
            the branch's map has not seen the question.
        audio_window: for a model that hears, the occlusion window of
            `audio_scores`, in seconds (> 0).
        **raw: the raw inputs of other declared modalities, e.g. `audio=`
            (WAV paths, bytes or arrays for an entry; float32 waveforms
            `(N, samples)` for a bare model).
        generation: for a captioning model, the settings of the caption
            search (`method`, `beam_width`, `max_length`, `length_penalty`);
            default greedy search. Word `t` costs one Grad-CAM pass and
            `steps` integrated-gradients passes.

    Returns:
        A list of `Explanation`, one per example; for a captioning model, a
        list of `CaptionExplanation` (one per image, an `Explanation` per
        generated word).

    Raises:
        ValueError: a model whose task has no explanation (retrieval), bad
            `steps`, `text_baseline`, `target` or `generation`, or inputs the
            model cannot take.
    """
    import keras

    from mmzoo.registry import TASKS

    model = model_or_entry.model if _is_entry(model_or_entry) else model_or_entry
    # A model not built by mmzoo is explained as a classifier (its top class).
    task = TASKS.of(model) if isinstance(model, keras.Model) else None
    task = task or TASKS.get("classification")
    if not task.explainable:
        raise ValueError("explain() covers models with one answer per example (classification, "
                         "binary, multilabel, regression) and captioning models. Received: a "
                         f"{task.name!r} model")
    if task.generative and (texts is not None or target is not None):
        raise ValueError("A captioning model's text is the caption it generates: explain() "
                         "takes `images` only. Received: "
                         + ("texts" if texts is not None else f"target={target!r}"))
    if generation is not None and not task.generative:
        raise ValueError("`generation` settings are for captioning models. Received: "
                         f"generation={generation!r} for a {task.name!r} model")
    unknown = sorted(set(raw) - {m.argument for m in MODALITIES.all()})
    if unknown:
        raise TypeError(f"explain() got an unexpected keyword argument {unknown[0]!r}: the "
                        "raw-input keywords are "
                        f"{sorted(m.argument for m in MODALITIES.all())}. Received: {unknown[0]}")
    if not (isinstance(audio_window, (int, float)) and not isinstance(audio_window, bool)
            and audio_window > 0):
        raise ValueError("`audio_window` must be a positive number of seconds. Received: "
                         f"audio_window={audio_window!r}")
    model, inputs, tok, labels = _resolve(model_or_entry, images, texts, tokenizer,
                                          generated=("text",) if task.generative else (),
                                          raw=raw)
    if image_method not in IMAGE_METHODS:
        raise ValueError(f"`image_method` must be one of {IMAGE_METHODS}. "
                         f"Received: image_method={image_method!r}")
    if image_layer not in IMAGE_LAYERS:
        raise ValueError(f"`image_layer` must be one of {IMAGE_LAYERS}. "
                         f"Received: image_layer={image_layer!r}")
    if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 1):
        raise ValueError(f"`steps` must be a positive integer. Received: steps={steps!r}")
    if text_baseline not in TEXT_BASELINES:
        raise ValueError(f"`text_baseline` must be one of {tuple(TEXT_BASELINES)}. "
                         f"Received: text_baseline={text_baseline!r}")
    inputs = {k: np.asarray(v) for k, v in inputs.items()}
    if task.generative:
        return _explain_generated(task, model, inputs, tok, steps, image_method,
                                  dict(generation or {}), text_baseline)
    n = len(next(iter(inputs.values())))
    (output,) = keras.tree.flatten(model.predict(inputs, verbose=0))
    output = np.asarray(output, np.float32).reshape(n, -1)
    targets = _targets(task, output, target, n)
    score = _scorer(task, targets)
    scores = score(output)
    image_maps, layer = (_grad_cam(model, inputs, score, image_method, image_layer)
                         if "image" in inputs else (None, None))
    token_scores = baseline_scores = None
    if "text" in inputs:
        token_scores = _integrated_gradients(model, inputs, score, steps, text_baseline)
        baseline_scores = score(_baseline_output(model, inputs, text_baseline))
    audio_scores = (_audio_occlusion(model, inputs, score, scores, audio_window)
                    if "audio" in inputs else None)
    shares = _modality_shares(model, inputs, score, scores)
    fusion_weights = _fusion_weights(model, inputs)
    vocabulary = list(tok.vocabulary) if tok is not None and hasattr(tok, "vocabulary") else None
    results = []
    for i in range(n):
        tokens = None
        if token_scores is not None:
            ids = inputs["text"][i]
            words = _tokens(vocabulary, ids)
            tokens = [(w, float(s)) for w, s, t in zip(words, token_scores[i], ids) if t != 0]
        answer = task.answer(labels, targets[i])
        image = None
        if "image" in inputs:
            image = np.clip(inputs["image"][i], 0, 255).astype(np.uint8)
            if image.shape[-1] == 1:
                image = np.repeat(image, 3, axis=-1)
        results.append(Explanation(
            image=image, image_map=None if image_maps is None else image_maps[i],
            token_scores=tokens,
            modality_scores={m: float(v[i]) for m, v in shares.items()},
            fusion_weights=None if fusion_weights is None else {
                m: float(np.asarray(w).reshape(-1)[i if np.asarray(w).size > 1 else 0])
                for m, w in fusion_weights.items()},
            answer=answer, score=float(scores[i]), target=int(targets[i]),
            baseline_score=None if baseline_scores is None else float(baseline_scores[i]),
            text=None if tokens is None else " ".join(w for w, _ in tokens),
            image_method=image_method, image_layer=layer,
            audio_scores=None if audio_scores is None else audio_scores[i],
            audio_window=None if audio_scores is None else float(audio_window)))
    return results


# ----------------------------------------------------------------------------


def _is_entry(obj):
    return hasattr(obj, "model_inputs") and hasattr(obj, "model")


def _resolve(model_or_entry, images, texts, tokenizer, generated=(), raw=None):
    import keras

    raw = {k: v for k, v in (raw or {}).items() if v is not None}
    if _is_entry(model_or_entry):
        entry = model_or_entry
        # A captioner's text input is the caption it generates: images only.
        inputs = (entry.preprocessor(images=images) if generated
                  else entry.model_inputs(images, texts, **raw))
        labels = getattr(entry.preprocessor, "label_names", None)
        return entry.model, inputs, entry.tokenizer, labels
    model = model_or_entry
    if not isinstance(model, keras.Model):
        raise TypeError("`model_or_entry` must be a zoo entry (mmzoo.load) or a keras.Model. "
                        f"Received: {type(model).__name__}")
    inputs = {}
    if images is not None:
        images = np.asarray(images, np.float32)
        inputs["image"] = images[None] if images.ndim == 3 else images
    if texts is not None:
        if isinstance(texts, str) or (isinstance(texts, (list, tuple)) and texts
                                      and isinstance(texts[0], str)):
            if tokenizer is None:
                raise ValueError("Strings need a `tokenizer` when explaining a bare model. "
                                 "Received: tokenizer=None")
            texts = tokenizer.encode([texts] if isinstance(texts, str) else list(texts))
        texts = np.asarray(texts)
        inputs["text"] = texts[None] if texts.ndim == 1 else texts
    for argument, value in raw.items():  # e.g. audio: float32 waveforms (N, samples)
        (modality,) = [m for m in MODALITIES.all() if m.argument == argument]
        value = np.asarray(value, np.float32 if modality.dtype.startswith("float") else None)
        needed_rank = len(model.input[modality.name].shape) if isinstance(model.input, dict) \
            and modality.name in model.input else value.ndim
        inputs[modality.name] = value[None] if value.ndim == needed_rank - 1 else value
    needed = set(model.input) if isinstance(model.input, dict) else set()
    extra = sorted(set(inputs) - needed) if needed else []
    if extra:
        argument = MODALITIES.get(extra[0]).argument
        raise ValueError(f"The model reads {sorted(needed)}, not {' or '.join(extra)}: "
                         f"`{argument}` would be ignored. Received: {argument}")
    missing = sorted(needed - set(inputs) - {"modality_mask", *generated})
    if missing:
        raise ValueError(f"The model reads {sorted(needed)}; pass "
                         f"{' and '.join(m + 's' for m in missing)}. Received: none")
    if "modality_mask" in needed:
        n = len(next(iter(inputs.values())))
        inputs["modality_mask"] = np.ones((n, len(needed) - 1), np.float32)
    return model, inputs, tokenizer, None


def _targets(task, output, target, n):
    return task.explain_targets(output, target)


def _scorer(task, targets):
    """`score(output) -> (batch,)`, for NumPy arrays and tensors alike."""
    from keras import ops

    index = np.asarray(targets)

    def score(output):
        output = ops.reshape(ops.convert_to_tensor(output), (len(index), -1))
        return task.target_score(output, index)

    def numpy_score(output):
        return np.asarray(ops.convert_to_numpy(score(output)), np.float32)

    numpy_score.tensor = score
    return numpy_score


def _outer_output(layer):
    """The tensor a nested layer produces in the outer graph (it is called once)."""
    return layer._inbound_nodes[-1].output_tensors[0]


def _watch(model, layer):
    import keras

    return keras.Model(model.inputs, [_outer_output(layer), model.output])


def _map_fusion(model, branch):
    """The fusion layer fed the image branch's map that can return its own last map."""
    import inspect

    import keras

    from mmzoo.fusion.base import FusionLayer

    image = _outer_output(branch)
    for layer in model.layers:
        if not (isinstance(layer, FusionLayer)
                and "return_map" in inspect.signature(layer.call).parameters):
            continue
        node = layer._inbound_nodes[-1]
        if any(t is image for t in keras.tree.flatten(node.arguments.args)):
            return layer, node
    return None, None


def _fusion_map_and_gradient(model, fusion, node, x, score):
    """The fusion's last map and the score's gradient there, `(batch, h, w, c)` each."""
    import keras
    import tensorflow as tf

    features = list(node.arguments.args[0])
    mask = node.arguments.kwargs.get("modality_mask")
    probe = keras.Model(model.inputs, features + ([mask] if mask is not None else []))
    head = keras.Model(fusion.output, model.output)
    with tf.GradientTape() as tape:
        # The probe's outputs carry their Keras masks (token padding) into the call.
        got = list(probe(x, training=False))
        kwargs = {"modality_mask": got.pop()} if mask is not None else {}
        fused, fmap = fusion(got, return_map=True, **kwargs)
        value = score.tensor(keras.tree.flatten(head(fused, training=False))[0])
    return fmap, tape.gradient(value, fmap)


def _grad_cam(model, inputs, score, method="grad_cam", layer="last"):
    """`((batch, H, W) maps, "fusion" or "branch")`: Grad-CAM or HiResCAM."""
    import keras
    import tensorflow as tf

    branch = branch_of(model, "image")
    x = {k: tf.constant(v) for k, v in inputs.items()}
    fusion, node = _map_fusion(model, branch) if layer == "last" else (None, None)
    if fusion is not None:
        fmap, gmap = _fusion_map_and_gradient(model, fusion, node, x, score)
        return _cam(np.asarray(fmap), np.asarray(gmap), method, inputs), "fusion"
    probe = _watch(model, branch)
    with tf.GradientTape() as tape:
        features, output = probe(x, training=False)
        value = score.tensor(keras.tree.flatten(output)[0])
    grads = tape.gradient(value, features)
    if len(features.shape) == 4:
        fmap, gmap = features, grads
    else:
        # Pooled or flattened: reach the last map through the pooling (chain rule).
        last = next((layer for layer in reversed(branch.layers)
                     if len(layer.output.shape) == 4), None)
        if last is None:
            raise ValueError(f"The image branch {branch.name!r} has no feature map for "
                             "Grad-CAM.")
        inner = keras.Model(branch.inputs, [last.output, branch.output])
        with tf.GradientTape() as tape:
            fmap, pooled = inner(x["image"], training=False)
        gmap = tape.gradient(pooled, fmap, output_gradients=grads)
    return _cam(np.asarray(fmap), np.asarray(gmap), method, inputs), "branch"


def _cam(fmap, gmap, method, inputs):
    import tensorflow as tf

    weights = gmap.mean(axis=(1, 2), keepdims=True) if method == "grad_cam" else gmap
    cam = np.maximum((weights * fmap).sum(-1), 0.0)[..., None]
    height, width = inputs["image"].shape[1:3]
    cam = np.asarray(tf.image.resize(cam, (height, width), method="bilinear"))[..., 0]
    cam = np.maximum(cam, 0.0)
    total = cam.sum(axis=(1, 2), keepdims=True)
    uniform = np.full_like(cam, 1.0 / (height * width))
    return np.where(total > 0, cam / np.where(total > 0, total, 1.0), uniform).astype(np.float32)


def _embedding_layer(model):
    """`(embedding, branch)`: the Embedding layer the text goes through, and its `text_...`
    branch (`None` for a model without one, e.g. the caption decoder)."""
    import keras

    branch = next((layer for layer in model.layers if layer.name.startswith("text_")
                   and isinstance(layer, keras.Model)), None)
    layers = model.layers if branch is None else branch.layers
    embedding = next((layer for layer in layers
                      if isinstance(layer, keras.layers.Embedding)), None)
    if embedding is None:
        raise ValueError(f"Model {model.name!r} has no text branch and no Embedding "
                         "layer to attribute to." if branch is None else
                         f"The text branch {branch.name!r} has no Embedding layer to "
                         "attribute to.")
    return embedding, branch


def _text_embedding(model):
    """`(embedding, gradient)`: the layer embedding the text, and `gradient(x, score)`.

    `gradient` returns d score / d embedded tokens, `(batch, length, dim)`.
    The embedding is the one inside the `text_...` branch, or, for a model
    without a text branch (the caption decoder), its own `Embedding` layer.
    """
    import keras
    import tensorflow as tf

    embedding, branch = _embedding_layer(model)
    if branch is None:
        probe = keras.Model(model.inputs, [embedding.output, model.output])

        def gradient(x, score):
            with tf.GradientTape() as tape:
                embedded, output = probe(x, training=False)
                value = score.tensor(keras.tree.flatten(output)[0])
            return tape.gradient(value, embedded)

        return embedding, _compiled(gradient)
    probe = _watch(model, branch)
    inner = keras.Model(branch.inputs, [embedding.output, branch.output])

    def gradient(x, score):
        with tf.GradientTape() as tape:
            features, output = probe(x, training=False)
            value = score.tensor(keras.tree.flatten(output)[0])
        g_features = tape.gradient(value, features)
        with tf.GradientTape() as tape:
            embedded, encoded = inner(x["text"], training=False)
        return tape.gradient(encoded, embedded, output_gradients=g_features)

    return embedding, _compiled(gradient)


def _compiled(gradient):
    """`gradient(x, score)` as one TensorFlow graph, traced once for all the steps.

    Integrated gradients runs it once per step with the same shapes (only the
    embedding table's values change), so graph mode replaces `steps` eager
    passes through the model (a recurrent branch is slowest eagerly).
    """
    import tensorflow as tf

    traced = {}

    def run(x, score):
        if traced.get("score") is not score:  # `score` is Python: a graph per score
            traced.update(score=score, graph=tf.function(lambda x: gradient(x, score)))
        return np.asarray(traced["graph"](x))

    return run


def _baseline_table(original, text_baseline="zero"):
    """Integrated gradients' baseline embedding table: zeros, or every row the
    unknown word's (`text_baseline="unknown"`), but padding's row kept.

    Padding (id 0) is not part of the text, so it keeps its own embedding all
    along the path: a branch that does not mask it (a text CNN) would otherwise
    credit it with part of the score's change, which `token_scores` leave out.
    """
    from mmzoo.data.tokenizer import OOV, PAD

    if text_baseline == "unknown":
        baseline = np.repeat(original[OOV:OOV + 1], len(original), axis=0)
    else:
        baseline = np.zeros_like(original)
    baseline[PAD] = original[PAD]
    return baseline


def _baseline_output(model, inputs, text_baseline="zero"):
    """The model's output at integrated gradients' baseline (`_baseline_table`)."""
    import keras

    embedding, _ = _embedding_layer(model)
    table = embedding.embeddings
    original = np.asarray(table.numpy())
    try:
        table.assign(_baseline_table(original, text_baseline))
        (output,) = keras.tree.flatten(model.predict(inputs, verbose=0))
    finally:
        table.assign(original)
    return output


def _integrated_gradients(model, inputs, score, steps, text_baseline="zero"):
    import tensorflow as tf

    embedding, gradient = _text_embedding(model)
    x = {k: tf.constant(v) for k, v in inputs.items()}
    table = embedding.embeddings
    original = np.asarray(table.numpy())
    baseline = _baseline_table(original, text_baseline)
    total = None
    try:
        # The straight path from the baseline: moving the table by alpha moves
        # every token's embedding at once.
        for k in range(steps):
            alpha = (k + 0.5) / steps
            table.assign(baseline + alpha * (original - baseline))
            g = gradient(x, score)
            total = g if total is None else total + g
    finally:
        table.assign(original)
    ids = inputs["text"].astype(int)
    return ((original[ids] - baseline[ids]) * total / steps).sum(-1)


def _audio_occlusion(model, inputs, score, full, window_seconds):
    """`(batch, windows)`: the score's drop when each window of the waveform is silenced."""
    import keras

    from mmzoo.audio_io import model_sample_rate

    waves = inputs["audio"]
    n, samples = waves.shape[:2]
    window = max(1, int(round(window_seconds * model_sample_rate(model))))
    starts = list(range(0, samples, window))
    silent = MODALITIES.get("audio").remove(waves)
    drops = np.zeros((n, len(starts)), np.float32)
    for k, start in enumerate(starts):
        occluded = np.array(waves, copy=True)
        occluded[:, start:start + window] = silent[:, start:start + window]
        (out,) = keras.tree.flatten(model.predict({**inputs, "audio": occluded}, verbose=0))
        drops[:, k] = full - score(out)
    return drops


def _without(inputs, modality, model):
    changed = dict(inputs)
    if "modality_mask" in inputs:
        present = [m for m in MODALITIES if m in inputs]
        mask = np.array(inputs["modality_mask"], np.float32, copy=True)
        mask[:, present.index(modality)] = 0.0
        changed["modality_mask"] = mask
    else:
        changed[modality] = MODALITIES.get(modality).remove(inputs[modality])
    return changed


def _modality_shares(model, inputs, score, full):
    import keras

    present = [m for m in MODALITIES if m in inputs]
    if len(present) == 1:
        return {present[0]: np.ones(len(full))}
    drops = []
    for m in present:
        (out,) = keras.tree.flatten(model.predict(_without(inputs, m, model), verbose=0))
        drops.append(np.maximum(full - score(out), 0.0))
    drops = np.stack(drops, axis=0)
    total = drops.sum(axis=0)
    shares = np.where(total > 0, drops / np.where(total > 0, total, 1.0), 1.0 / len(present))
    return {m: shares[i] for i, m in enumerate(present)}


def _fusion_weights(model, inputs):
    from mmzoo.fusion import modality_weights

    try:
        return modality_weights(model, inputs)
    except (ValueError, AttributeError):
        return None


def _position_scorer(position, targets):
    """The probability of `targets` `(batch,)` at one position of next-token logits."""
    from keras import ops

    index = np.asarray(targets)

    def score(output):
        logits = ops.convert_to_tensor(output)[:, position, :]
        probs = ops.softmax(logits, axis=-1)
        return ops.sum(probs * ops.one_hot(ops.convert_to_tensor(index), probs.shape[-1]), axis=-1)

    def numpy_score(output):
        return np.asarray(ops.convert_to_numpy(score(output)), np.float32)

    numpy_score.tensor = score
    return numpy_score


def _explain_generated(task, model, inputs, tok, steps, image_method, generation,
                       text_baseline="zero"):
    """One `CaptionExplanation` per image: the caption generated, then each word explained."""
    import keras

    from mmzoo.data.tokenizer import START

    images = inputs["image"]
    n = len(images)
    captions = task.generate(model, images, tok, **generation)
    tokens = np.asarray(captions.tokens)
    lengths = np.asarray(captions.lengths)
    length = int(model.input["text"].shape[1])
    # Teacher forcing: position t reads the start token and the first t words
    # and predicts word t + 1 (the decoder's own numbers).
    prefix = np.zeros((n, length), np.int32)
    prefix[:, 0] = START
    shown = min(length - 1, tokens.shape[1])
    prefix[:, 1:1 + shown] = tokens[:, :shown]
    x = {"image": images.astype(np.float32), "text": prefix}
    (output,) = keras.tree.flatten(model.predict(x, verbose=0))
    # Shares: the image replaced by its mean colour (its declared occlusion),
    # the caption so far by integrated gradients' baseline (padding would mask
    # the whole decoder, the image's path included).
    (no_image,) = keras.tree.flatten(model.predict(
        {**x, "image": MODALITIES.get("image").remove(x["image"])}, verbose=0))
    no_text = _baseline_output(model, x, text_baseline)
    vocabulary = list(tok.vocabulary) if tok is not None and hasattr(tok, "vocabulary") else None
    words = [[] for _ in range(n)]
    steps_to_explain = int(min(lengths.max(initial=0), length))
    for t in range(steps_to_explain):
        score = _position_scorer(t, tokens[:, t])
        full = score(output)
        maps, _ = _grad_cam(model, x, score, image_method)  # a decoder has no map fusion
        token_scores = _integrated_gradients(model, x, score, steps, text_baseline)
        baseline = score(no_text)
        drops = np.maximum(np.stack([full - score(no_image), full - baseline]), 0.0)
        total = drops.sum(axis=0)
        shares = np.where(total > 0, drops / np.where(total > 0, total, 1.0), 0.5)
        for i in range(n):
            if t >= lengths[i]:
                continue
            read = _tokens(vocabulary, prefix[i, :t + 1])
            (word,) = _tokens(vocabulary, tokens[i, t:t + 1])
            words[i].append(Explanation(
                image=None, image_map=maps[i],
                token_scores=[(w, float(v)) for w, v in zip(read, token_scores[i, :t + 1])],
                modality_scores={"image": float(shares[0, i]), "text": float(shares[1, i])},
                fusion_weights=None, answer=word, score=float(full[i]),
                target=int(tokens[i, t]), baseline_score=float(baseline[i]),
                text=" ".join(read), image_method=image_method))
    results = []
    for i in range(n):
        image = np.clip(images[i], 0, 255).astype(np.uint8)
        if image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        for word in words[i]:
            word.image = image
        results.append(CaptionExplanation(
            image=image, caption=" ".join(w.answer for w in words[i]), words=words[i],
            image_method=image_method))
    return results


def _tokens(vocabulary, ids):
    if vocabulary is not None:
        return [vocabulary[i] if 0 <= i < len(vocabulary) else f"<{i}>" for i in ids]
    return [f"<{int(i)}>" for i in ids]


class _CallableModule(types.ModuleType):
    """This module, callable as `explain()`: `import mmzoo.explain` (or `from
    mmzoo.explain import ...`) binds `mmzoo.explain` to the module, and
    `mmzoo.explain(...)` must still explain."""

    def __call__(self, *args, **kwargs):
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
