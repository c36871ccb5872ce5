"""Relational accuracy of shapes_vqa entries, by kind of relation.

Usage (from the repository root):
    python bench/results/shapes_vqa_word_subsampling/relational.py ENTRY [ENTRY ...]

On the relational questions of 3,000 test scenes (seed 0, the test split's own),
the share answered right for each kind: "is the A to the left of / to the
right of / above / below the B?" (yes or no), "what shape is nearest (closest)
to the A?" and "what colour is the object nearest (closest) to the A?". A model
that has not learnt to compare positions along one axis answers that axis's
yes/no questions at chance (0.5).
"""
import collections
import sys

import numpy as np

import mmzoo
from mmzoo.data import shapes

data = shapes.generate_scenes(3000, split="test", image_size=32, seed=0)
keep = data["question_type"] == shapes.QUESTION_TYPES.index("relational")
questions = [str(q) for q in data["question"][keep]]
truth = [shapes.ANSWERS[a] for a in data["answer"][keep]]


def kind(question):
    if question.startswith("what shape"):
        return "nearest shape"
    if question.startswith("what colour"):
        return "nearest colour"
    return next(w for w in ("left", "right", "above", "below") if w in question.split())


KINDS = ("left", "right", "above", "below", "nearest shape", "nearest colour")
print("entry | " + " | ".join(KINDS) + " | relational")
for path in sys.argv[1:]:
    entry = mmzoo.load(path)
    predicted = entry.predict(images=list(data["image"][keep]), texts=questions, top_k=1,
                              batch_size=256)
    right = collections.defaultdict(list)
    for q, t, p in zip(questions, truth, predicted):
        right[kind(q)].append(p[0][0] == t)
    cells = [f"{np.mean(right[k]):.3f} ({len(right[k])})" for k in KINDS]
    every = [x for k in KINDS for x in right[k]]
    print(f"{path} | " + " | ".join(cells) + f" | {np.mean(every):.3f} ({len(every)})",
          flush=True)
