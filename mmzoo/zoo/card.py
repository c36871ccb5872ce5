"""Model cards: the `README.md` of a zoo entry, generated from its metadata."""

import json

from mmzoo.registry import MODALITIES, TASKS
from mmzoo.zoo.folder import format_size

#: The training curve an entry may carry (`save_entry(extra_files=...)`).
TRAINING_CURVE = "training_curve.png"


def flatten_metrics(metrics, prefix=""):
    """`{"a": 1, "per_type": {"b": 2}}` -> `{"a": 1, "per_type/b": 2}`."""
    flat = {}
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def _architecture(meta):
    arch = meta.get("architecture") or {}
    parts = []
    for key, label in (*((m.branch_option, m.name) for m in MODALITIES.all()),
                       ("fusion", "fusion"), ("decoder", "decoder")):
        if arch.get(key):
            parts.append(f"{label} `{arch[key]}`")
    return ", ".join(parts) or f"`{meta.get('model_class')}`"


def _python(value):
    if isinstance(value, list):
        return repr(tuple(_plain(v) for v in value))
    return repr(value)


def _plain(value):
    return tuple(_plain(v) for v in value) if isinstance(value, list) else value


def _build_call(meta):
    arch = dict(meta["architecture"])
    task = arch.pop("task", meta["task"])
    lines = ["mmzoo.build_model(", f"    {task!r},"]
    lines += [f"    {k}={_python(v)}," for k, v in arch.items()]
    return "\n".join(lines + [")"])


def _dataset(meta):
    data = meta.get("dataset")
    if not data:
        return "not recorded"
    if data.get("name") == "mmzoo_shapes":
        version = f" {data['version']}" if data.get("version") else ""
        text = (f"mmzoo-shapes{version}, {data.get('image_size')} px, "
                f"seed {data.get('seed')}, {data.get('num_test')} test examples")
        if data.get("text_field"):
            text += f", text: {data['text_field']}"
        if data.get("audio_samples"):  # a spoken problem (mmzoo.data.problems)
            text += (f", problem: {data.get('problem')} ({data['audio_samples']} audio samples "
                     "at 16 kHz; training voices in training, every voice in validation and test)")
        return text
    return ", ".join(f"{k}={v}" for k, v in data.items())


def format_metric(value, missing="n/a"):
    """A metric as the card and `mmzoo evaluate` print it (floats to 4 decimals)."""
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def model_card(meta):
    """The model card (Markdown) of an entry's metadata.

    Args:
        meta: the entry's metadata dict (as in `metadata.json`).

    Returns:
        The card text.
    """
    files = meta.get("files", {})
    total = sum(f["size"] for f in files.values())
    params = meta.get("parameters", {})
    versions = meta.get("versions", {})
    name = meta["name"]
    lines = [f"# {name}", ""]
    if meta.get("description"):
        lines += [meta["description"], ""]
    lines += [
        "| | |",
        "|---|---|",
        f"| Task | `{meta['task']}` |",
        f"| Architecture | {_architecture(meta)} |",
        f"| Parameters | {params.get('total', 0):,} ({params.get('trainable', 0):,} trainable) |",
        f"| Size | {format_size(total)} |",
        f"| Dataset | {_dataset(meta)} |",
        f"| Created | {meta.get('created', '?')} |",
        "| Versions | " + ", ".join(f"{k} {v}" for k, v in versions.items()) + " |",
    ]
    if meta.get("license"):
        lines.append(f"| License | {meta['license']} |")
    lines += ["", "## Metrics (test split)", ""]
    metrics = flatten_metrics(meta.get("metrics"))
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {format_metric(v)} |" for k, v in metrics.items()]
        lines += ["", f"Re-measure them with `mmzoo evaluate {name}`."]
    else:
        lines.append("No metrics recorded.")
    images = 'images="scene.png"'
    # The task says what its entries read and return (an unknown one: both).
    task = TASKS.get(meta["task"]) if meta["task"] in TASKS else None
    reads_text = task is None or task.reads_text
    hears = "audio" in (meta.get("inputs") or {})
    if hears:  # a spoken entry may read no text at all
        reads_text = "text" in meta["inputs"]
    if reads_text:
        args = f"{images}, {(task and task.example_text) or 'texts=...'}"
    else:
        args = images
    if hears:
        args += ', audio="question.wav"'
    lines += [
        "", "## Usage", "", "```python", "import mmzoo", "",
        f'entry = mmzoo.load("{name}")',
        f"entry.predict({args})  # {task.result_description if task else ''}",
        "```", "",
    ]
    if not hears:  # `mmzoo predict` takes no audio yet
        lines += ["```", f"mmzoo predict {name} --image scene.png"
                  + (' --text "..."' if reads_text else ""), "```", ""]
    shape = ((meta.get("inputs") or {}).get("image") or {}).get("shape")
    if shape:
        lines += [f"Images may be files, PIL images or arrays of any size, dtype and channels: "
                  f"they are converted and resized to {shape[1]}x{shape[2]}x{shape[3]}.", ""]
    if (meta.get("dataset") or {}).get("name") == "mmzoo_shapes":
        lines += ["## Limitations", "",
                  "Trained on synthetic mmzoo-shapes scenes (flat coloured shapes on a plain "
                  "background) and the generator's small vocabulary only. A photo, or a "
                  "question in other words, gets an answer that means nothing; `predict` "
                  "warns (`UnfamiliarInputWarning`) when an image's statistics or a text's "
                  "words fall outside what the entry was trained on.", ""]
    if meta.get("recipe"):
        lines += ["## Training recipe", "", "```json",
                  json.dumps(meta["recipe"], indent=2, ensure_ascii=False), "```", ""]
    if TRAINING_CURVE in files:
        lines += ["## Training curve", "", f"![training curve]({TRAINING_CURVE})", ""]
    if meta.get("training"):
        seconds = meta["training"].get("seconds")
        cpus = (meta["training"].get("machine") or {}).get("cpus")
        gpus = (meta["training"].get("machine") or {}).get("gpus")
        if isinstance(seconds, (int, float)):
            where = f" on {cpus} CPU cores" if cpus else ""
            where += f" and {gpus} GPUs" if gpus else ""
            lines += [f"Trained in {seconds / 60:.1f} minutes{where} (measured).", ""]
        start = meta["training"].get("warm_start")
        if isinstance(start, dict) and start.get("total_weights"):
            share = start.get("copied_weights", 0) / start["total_weights"]
            fresh = ", ".join(start.get("fresh") or ()) or "none"
            frozen = " and kept them fixed" if start.get("frozen") else ""
            digest = start.get("source_sha256")
            which = f" (SHA-256 `{digest[:12]}…`)" if digest else ""
            lines += [f"Started from `{start.get('source')}`'s weights{which} ({share:.1%} of "
                      f"the weights; freshly initialised layers: {fresh}){frozen}.", ""]
        distilled = meta["training"].get("distillation")
        if isinstance(distilled, dict) and distilled.get("history"):
            last = {k: v[-1] for k, v in distilled["history"].items() if v}
            scores = ", ".join(f"{k} {v:.4g}" for k, v in last.items())
            planned = (meta.get("recipe") or {}).get("training") or {}
            kind = ("feature distillation" if planned.get("distill_from")
                    and planned.get("distill_from") == planned.get("distill_to")
                    else "cross-modal distillation")
            lines += [f"First, its `{distilled.get('student')}` branch learned the features "
                      f"`{distilled.get('teacher')}` gives the same rows ({kind}, "
                      f"{distilled.get('epochs')} epochs, "
                      f"{distilled.get('seconds', 0) / 60:.1f} minutes of the training "
                      f"time; last epoch: {scores}).", ""]
        # Scalars and small dicts only; long records (history) stay in metadata.json.
        items = [(k, v) for k, v in meta["training"].items() if not isinstance(v, list)
                 and not (isinstance(v, dict) and any(isinstance(x, (list, dict))
                                                      for x in v.values()))]
        if items:
            lines += ["## Training", ""]
            for k, v in items:
                if isinstance(v, dict):
                    v = ", ".join(f"{a} {b}" for a, b in v.items())
                lines.append(f"- {k}: {v}")
            lines.append("")
    if meta.get("architecture"):
        lines += ["## Architecture", "", "This builds the same architecture (untrained):", "",
                  "```python", _build_call(meta), "```", ""]
    if meta.get("notes"):
        lines += ["## Notes", "", str(meta["notes"]), ""]
    lines += ["## Files", "", "| file | size | sha256 |", "|---|---|---|"]
    lines += [f"| {rel} | {format_size(info['size'])} | `{info['sha256'][:16]}…` |"
              for rel, info in sorted(files.items())]
    lines += ["", "`mmzoo.load` checks every file against `metadata.json` and loads the model "
              "with `safe_mode=True`.", ""]
    return "\n".join(lines)
