"""The explain test's word ranking from both integrated-gradients baselines.

Usage: python baselines.py ENTRY [ENTRY ...]

On `tests/test_explain.py`'s 40 colour and shape questions (120 test scenes,
seed 4343, 16 steps, as the test), how often the named attribute outscores
every function word ("what", "is", "the", "of", "a", "an", "object"), with
integrated gradients from the zero embedding (`text_baseline="zero"`, the
default) and from every word unknown (`"unknown"`), and which function word
won where it did not.
"""
import collections
import sys

import numpy as np

import mmzoo
from mmzoo.data import shapes

data = shapes.generate_scenes(120, split="test", image_size=32, seed=4343)
keep = np.isin(data["question_type"], [0, 1])  # colour and shape questions
images, questions = list(data["image"][keep]), [str(q) for q in data["question"][keep]]
attributes = set(shapes.COLOURS) | set(shapes.SHAPES)
FUNCTION = {"what", "is", "the", "of", "a", "an", "object"}
print("entry | baseline | questions | attribute first | misses (function word that won)")
for path in sys.argv[1:]:
    entry = mmzoo.load(path)
    for baseline in ("zero", "unknown"):
        wins, misses = [], collections.Counter()
        for e in mmzoo.explain(entry, images=images, texts=questions, steps=16,
                               text_baseline=baseline):
            s = {w: abs(v) for w, v in e.token_scores}
            named = max(s[w] for w in s if w in attributes)
            top, word = max((s[w], w) for w in s if w in FUNCTION)
            wins.append(named > top)
            if named <= top:
                misses[word] += 1
        print(f"{path} | {baseline} | {len(wins)} | {np.mean(wins):.3f} | {dict(misses)}",
              flush=True)
