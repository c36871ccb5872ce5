"""How many integrated-gradients steps a zoo entry's explanations need.

Integrated gradients (Sundararajan et al. 2017) approximate a path integral
by `steps` Riemann points; the attributions of the exact integral add up to
the score's change from the baseline (completeness). `Explanation.convergence_delta`
is the approximation's miss, and the paper's check is that it stays within
5% of that change.

For fresh test scenes of mmzoo-shapes, every question type, this explains the
entry's answers (a captioner's: every generated word) at each number of
steps and prints, per number: the median relative miss
`|convergence_delta| / |score - baseline_score|`, the share over 5%, the
largest miss, and seconds per scene. Answers whose score barely moves from
the baseline (under 0.01) are left out: there is nothing to attribute.

Usage:
    python bench/ig_convergence.py [shapes_vqa] [--scenes 200] [--seed 4343] \\
        [--steps 16,32,64,128,256]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("entry", nargs="?", default="shapes_vqa",
                        help="a zoo entry (name or folder) that reads images and text: "
                             "a VQA model or a captioner (default: %(default)s)")
    parser.add_argument("--scenes", type=int, default=200, help="fresh test scenes")
    parser.add_argument("--seed", type=int, default=4343, help="the scenes' seed")
    parser.add_argument("--steps", default="16,32,64,128,256",
                        help="comma-separated numbers of steps (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        steps = [int(s) for s in args.steps.split(",")]
        if not steps or min(steps) < 1:
            raise ValueError
    except ValueError:
        parser.error(f"--steps must be positive integers separated by commas. "
                     f"Received: {args.steps!r}")

    import numpy as np

    import mmzoo
    from mmzoo.data import shapes

    entry = mmzoo.load(args.entry)
    inputs = set(entry.model.input) if isinstance(entry.model.input, dict) else set()
    if inputs != {"image", "text"}:
        parser.error(f"{args.entry!r} reads {sorted(inputs)}: integrated gradients explain "
                     f"words, so the entry must read images and text")
    if entry.task not in ("classification", "captioning"):
        parser.error(f"{args.entry!r} is a {entry.task!r} entry: this measures the "
                     f"explanations of answers (classification) and captions (captioning)")
    captions = entry.task == "captioning"  # each generated word is explained
    size = int(entry.model.input["image"].shape[1])
    data = shapes.generate_scenes(args.scenes, split="test", image_size=size, seed=args.seed)
    images, texts = list(data["image"]), [str(q) for q in data["question"]]
    what = "caption words" if captions else "questions"
    print(f"{args.entry}: integrated gradients' miss on {len(texts)} test scenes' {what} "
          f"(seed {args.seed}); the paper's bound is 5% of the score's change")
    print(f"{'steps':>6} {'explained':>9} {'median miss':>11} {'share >5%':>9} {'largest':>8} "
          f"{'s/scene':>10}")
    for n in steps:
        start = time.perf_counter()
        if captions:
            explanations = [w for c in mmzoo.explain(entry, images=images, steps=n)
                            for w in c.words]
        else:
            explanations = mmzoo.explain(entry, images=images, texts=texts, steps=n)
        seconds = (time.perf_counter() - start) / len(texts)
        miss = np.array([abs(e.convergence_delta) / abs(e.score - e.baseline_score)
                         for e in explanations if abs(e.score - e.baseline_score) >= 0.01])
        print(f"{n:>6} {len(miss):>9} {np.median(miss):>11.3f} {np.mean(miss > 0.05):>9.3f} "
              f"{miss.max():>8.3f} {seconds:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
