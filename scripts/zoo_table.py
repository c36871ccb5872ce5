"""The README's zoo table, written from the shipped entries' metadata (nothing typed in).

For every entry: task, parameters, size on disk, the test metrics of its card
(per question type for VQA, per voice set for spoken VQA, per kind of false caption for matching, BLEU and
CIDEr-D for captioning) and its measured training time on the recorded machine.

Usage:
    python scripts/zoo_table.py            # prints the markdown table
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

TYPES = ("colour", "shape", "count", "existence", "relational")


def _metrics(task, m):
    def f(key):
        return f"{m[key]:.3f}" if isinstance(m.get(key), (int, float)) else "n/a"

    voices = (f"; voices: training {f('accuracy_train_voices')}, held out "
              f"{f('accuracy_held_out_voices')}") if "accuracy_held_out_voices" in m else ""
    if task == "classification":
        return (f"accuracy {f('accuracy')} (" +
                ", ".join(f"{t} {f('accuracy_' + t)}" for t in TYPES) + voices + ")")
    if task == "binary":
        kinds = sorted(k for k in m if k.startswith("accuracy_perturbation_"))
        return (f"accuracy {f('accuracy')}, AUC {f('auc')} (" +
                ", ".join(f"{k.removeprefix('accuracy_perturbation_')} {f(k)}" for k in kinds)
                + ")")
    if task == "captioning":
        return f"BLEU-4 {f('bleu_4')}, BLEU-1 {f('bleu_1')}, CIDEr-D {f('cider_d')}"
    return ", ".join(f"{k} {f(k)}" for k in m if k != "num_examples")


def zoo_table():
    import mmzoo
    from mmzoo.zoo.entry import format_size

    lines = ["| entry | task | parameters | size | test metrics (examples) | training |",
             "|---|---|---:|---:|---|---|"]
    for name in mmzoo.list_models():
        meta = mmzoo.load(name).metadata
        size = sum(f["size"] for f in meta["files"].values())
        training = meta.get("training") or {}
        machine = training.get("machine") or {}
        minutes = (f"{training['seconds'] / 60:.0f} min on {machine.get('cpus', '?')} CPU cores"
                   if isinstance(training.get("seconds"), (int, float)) else "not recorded")
        start = training.get("warm_start") or {}
        if start.get("source"):  # the time is this run's; the source's is in its own row
            minutes += f", from `{start['source']}`" + (" (frozen)" if start.get("frozen") else "")
        metrics = meta.get("metrics") or {}
        lines.append(
            f"| `{name}` | {meta['task']} | {meta['parameters']['total']:,} | "
            f"{format_size(size)} | {_metrics(meta['task'], metrics)} "
            f"({metrics.get('num_examples', '?')}) | {minutes} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(zoo_table())
