"""`mmzoo list | info | predict | evaluate`: the command-line face of the zoo.

Each command is a pair `(add_arguments, run)` plus a help line, wired into
`mmzoo/cli.py`'s `COMMANDS`. NAME is an entry name, an entry folder or a URL.
`list` and `info` read only the entries' files (no TensorFlow: they answer
at once); the others load the model.

Examples:

```
mmzoo list 'vqa_*'
mmzoo info vqa_cnn_lstm_32px
mmzoo predict vqa_cnn_lstm_32px --image scene.png --text "what colour is the circle?"
mmzoo predict vqa_cnn_lstm_32px --image a.png --image b.png --text "..." --json
mmzoo evaluate vqa_cnn_lstm_32px
mmzoo explain shapes_vqa --image scene.png --text "what colour is the circle?" --out why.png
```
"""

import json
import sys

LIST_HELP = "list the zoo entries (saved_models/ and the MMZOO_HOME cache)"
INFO_HELP = "print a zoo entry's model card (after checking its files)"
PREDICT_HELP = "predict on image files and texts with a zoo entry"
EVALUATE_HELP = ("re-measure a zoo entry's metrics and compare them with its card, within "
                 "the range near ties allow on another CPU (exit status 1 if not reproduced)")
EXPLAIN_HELP = ("explain a zoo entry's answer (or each word of a caption): Grad-CAM map, "
                "word attributions and modality shares, drawn into one figure")


def _add_entry(parser):
    parser.add_argument("name", metavar="NAME", help="entry name, entry folder or URL")
    parser.add_argument("--sha256", default=None,
                        help="expected sha256 of the archive, when NAME is a URL")


def _load(args):
    from mmzoo.zoo.registry import load

    return load(args.name, sha256=args.sha256)


# -- list -----------------------------------------------------------------------


def add_list(parser):
    parser.add_argument("pattern", nargs="?", default=None, metavar="PATTERN",
                        help="shell-style wildcard, e.g. 'vqa_*' (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run_list(args):
    from mmzoo.zoo.folder import format_size, read_metadata
    from mmzoo.zoo.registry import entry_folders, list_models, search_paths

    names = list_models(args.pattern)
    folders = entry_folders()
    rows = []
    for name in names:
        try:  # listing reads metadata only; `info` and `load` check the files
            meta = read_metadata(folders[name])
            size = sum(f["size"] for f in meta["files"].values())
            rows.append({"name": name, "task": meta.get("task"), "size": size,
                         "path": str(folders[name]),
                         "description": meta.get("description") or ""})
        except (OSError, ValueError) as e:
            rows.append({"name": name, "task": None, "size": None,
                         "path": str(folders[name]), "description": f"(unreadable: {e})"})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        where = ", ".join(str(p) for p in search_paths())
        what = f"matching {args.pattern!r} " if args.pattern else ""
        print(f"No zoo entries {what}found (searched {where}).", file=sys.stderr)
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        size = format_size(r["size"]) if r["size"] is not None else "?"
        print(f"{r['name']:<{width}}  {str(r['task']):<14}  {size:>9}  {r['description']}")


# -- info -----------------------------------------------------------------------


def add_info(parser):
    _add_entry(parser)
    parser.add_argument("--json", action="store_true", help="print metadata.json instead")


def run_info(args):
    from pathlib import Path

    from mmzoo.zoo.folder import format_size, read_card, verify_entry
    from mmzoo.zoo.registry import locate

    where = locate(args.name, sha256=args.sha256)
    if isinstance(where, Path):  # a name or a folder: its files are enough
        folder, metadata = where, verify_entry(where)
        card = read_card(folder, metadata.get("name"))
    else:  # a URL or an archive: downloaded, extracted and loaded first
        entry = _load(args)
        folder, metadata, card = entry.path, entry.metadata, entry.card
    if args.json:
        print(json.dumps(metadata, indent=2, ensure_ascii=False))
        return
    size = sum(f["size"] for f in metadata["files"].values())
    print(card.rstrip())
    print()
    print(f"Verified: {len(metadata['files'])} files ({format_size(size)}), sha256 "
          f"match metadata.json. Folder: {folder}")


# -- predict --------------------------------------------------------------------


def add_predict(parser):
    _add_entry(parser)
    parser.add_argument("--image", action="append", default=None, metavar="PATH",
                        help="an image file; repeat for several")
    parser.add_argument("--text", action="append", default=None, metavar="TEXT",
                        help="a text (question, caption); repeat for several, or give one "
                             "for all images")
    parser.add_argument("--audio", action="append", default=None, metavar="PATH",
                        help="an audio file (WAV, FLAC or OGG; any sample rate and length) "
                             "for an entry that hears; repeat for several")
    parser.add_argument("--top-k", type=int, default=3, metavar="K",
                        help="classification: labels per example (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _describe(result, task):
    """The lines printed for one result: the task says how it reads."""
    from mmzoo.registry import TASKS

    return TASKS.get(task).describe(result)


def _spread(items, n):
    """One label per result: a single --image / --text applies to every result."""
    if not items:
        return [None] * n
    return items * n if len(items) == 1 else items


def run_predict(args):
    if not args.image and not args.text and not args.audio:
        raise ValueError("Pass at least one --image PATH, --text TEXT or --audio PATH. "
                         "Received: none")
    if args.top_k < 1:
        raise ValueError(f"--top-k must be a positive integer. Received: --top-k={args.top_k}")
    entry = _load(args)
    images, texts, audio = args.image, args.text, args.audio
    extra = {"audio": audio} if audio else {}
    results = entry.predict(images=images, texts=texts if texts else None, top_k=args.top_k,
                            **extra)
    n = len(results)
    images, texts, audio = _spread(images, n), _spread(texts, n), _spread(audio, n)
    if args.json:
        rows = [{"image": i, "text": t, **({"audio": a} if args.audio else {}), "result": r}
                for i, t, a, r in zip(images, texts, audio, results)]
        print(json.dumps({"entry": entry.name, "task": entry.task, "predictions": rows},
                         indent=2, ensure_ascii=False))
        return
    for image, text, sound, result in zip(images, texts, audio, results):
        head = " | ".join(x for x in (image, None if text is None else repr(text), sound) if x)
        print(head)
        print("\n".join(_describe(result, entry.task)))


# -- evaluate -------------------------------------------------------------------


def add_evaluate(parser):
    _add_entry(parser)
    parser.add_argument("--examples", type=int, default=None, metavar="N",
                        help="evaluation examples (default: as many as the card's)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="examples per model call")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run_evaluate(args):
    from mmzoo.zoo.card import format_metric
    from mmzoo.zoo.evaluation import card_differences, compare_metrics, near_tie

    if args.examples is not None and args.examples < 1:
        raise ValueError(f"--examples must be a positive integer. Received: "
                         f"--examples={args.examples}")
    entry = _load(args)
    measured, ranges = entry.evaluate(num_examples=args.examples, batch_size=args.batch_size,
                                      ranges=True)
    card = entry.metadata.get("metrics")
    rows = compare_metrics(card, measured)
    # The card is a claim about the examples it was measured on: compare only those.
    differences = None if args.examples else card_differences(card, measured, ranges)
    if args.json:
        print(json.dumps({"entry": entry.name, "card": card, "measured": measured,
                          "ranges": {k: v for k, v in ranges.items() if k != "near_ties"},
                          "near_ties": ranges.get("near_ties"),
                          "reproduced": None if differences is None else not differences},
                         indent=2))
        return
    width = max([len("metric")] + [len(name) for name, _, _ in rows])
    print(f"{entry.name}: card vs measured on mmzoo-shapes"
          + (f" ({args.examples} examples)" if args.examples else ""))
    print(f"{'metric':<{width}}  {'card':>10}  {'measured':>10}  {'difference':>10}"
          + ("  near-tie range" if "near_ties" in ranges else ""))
    for name, was, now in rows:
        diff = "-"
        if isinstance(was, int) and isinstance(now, int):
            diff = f"{now - was:+d}"
        elif isinstance(was, (int, float)) and isinstance(now, (int, float)):
            diff = f"{now - was:+.4f}"
        span = ranges.get(name)
        span = f"  {span[0]:.4f} - {span[1]:.4f}" if span else ""
        print(f"{name:<{width}}  {format_metric(was, '-'):>10}  {format_metric(now, '-'):>10}"
              f"  {diff:>10}{span}")
    if "near_ties" in ranges:
        gap, dtype = near_tie(entry.model)
        print(f"Near ties: {ranges['near_ties']} of {measured['num_examples']} answers are "
              f"right or wrong by less than {gap:g} (the model computes in {dtype}), so "
              "another CPU, rounding differently, may answer them the other way; each "
              "range is what they allow.")
    if differences:
        print("Not reproduced: " + "; ".join(
            f"{key} {value:.4f} on the card, {low:.4f} - {high:.4f} measured"
            for key, value, low, high in differences))
        return 1
    elif differences is not None:
        print("Reproduced: every number on the card lies in its range"
              if "near_ties" in ranges else "Reproduced: every number on the card, to 2e-4")


# -- explain --------------------------------------------------------------------


def add_explain(parser):
    from mmzoo.explain import DEFAULT_STEPS, TEXT_BASELINES

    _add_entry(parser)
    parser.add_argument("--image", required=True, help="an image file")
    parser.add_argument("--text", default=None,
                        help="the question or caption (none for a captioner: it explains "
                             "the caption it generates)")
    parser.add_argument("--out", required=True, help="the figure to write (PNG)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help="integrated-gradients steps (default: %(default)s)")
    parser.add_argument("--text-baseline", choices=tuple(TEXT_BASELINES), default="zero",
                        help="where integrated gradients start: the all-zero embedding, or "
                             "every word the unknown word, which a model trained with word "
                             "dropout reads as a missing word (default: %(default)s)")
    parser.add_argument("--image-method", choices=("grad_cam", "hirescam"), default="grad_cam",
                        help="the image map: Grad-CAM or HiResCAM (default: %(default)s)")
    parser.add_argument("--image-layer", choices=("last", "branch"), default="last",
                        help="the feature map it is made on: the last one of the image's "
                             "path (the fusion's own for FiLM and cross-attention) or the "
                             "image branch's (default: %(default)s)")


def _more_steps(steps):
    """The integrated-gradients steps to suggest after `steps` fell short: the default, or double."""
    from mmzoo.explain import DEFAULT_STEPS

    return DEFAULT_STEPS if steps < DEFAULT_STEPS else 2 * steps


def run_explain(args):
    from mmzoo.explain import TEXT_BASELINES, explain

    (why,) = explain(_load(args), images=args.image, texts=args.text, steps=args.steps,
                     text_baseline=args.text_baseline, image_method=args.image_method,
                     image_layer=args.image_layer)
    start = TEXT_BASELINES[args.text_baseline]
    why.plot(args.out)
    if hasattr(why, "words"):  # a caption: one line per generated word
        print(f"caption    {why.caption}")
        for word in why.words:
            print(f"  {word.answer:<12} {word.score:6.1%}   image {word.modality_scores['image']:4.0%}"
                  f"   text {word.modality_scores['text']:4.0%}")
        off = [w.answer for w in why.words if w.converged() is False]
        if off:
            print(f"note       the scores of the words before {', '.join(map(repr, off))} miss "
                  f"their probability's change from {start} by more than 5%: "
                  f"raise --steps (now {args.steps}, try {_more_steps(args.steps)})")
        print(f"figure     {args.out}")
        return
    print(f"answer     {why.answer} ({why.score:.1%})")
    print("modality   " + ", ".join(f"{m} {v:.0%}" for m, v in why.modality_scores.items()))
    if why.token_scores:
        print("words      " + " ".join(f"{w}({s:+.3f})" for w, s in why.token_scores))
        if not why.converged():  # Sundararajan et al.'s check
            change = why.score - why.baseline_score
            print(f"note       the word scores add up to {change + why.convergence_delta:+.3f}, "
                  f"not {change:+.3f} (the score's change from {start}): more "
                  f"than 5% off, raise --steps (now {args.steps}, try {_more_steps(args.steps)})")
    print(f"figure     {args.out}")


COMMANDS = {
    "list": (add_list, run_list, LIST_HELP),
    "info": (add_info, run_info, INFO_HELP),
    "predict": (add_predict, run_predict, PREDICT_HELP),
    "evaluate": (add_evaluate, run_evaluate, EVALUATE_HELP),
    "explain": (add_explain, run_explain, EXPLAIN_HELP),
}
