"""Dev checks of a shapes_vqa candidate: paraphrases (seed 777) and word ranking (seed 9191).

Usage: python check.py ENTRY [scenes=330] [seed=9191] [integrated-gradients steps=16]

The word ranking is also split by whether the question's naming words are needed:
they are when another object of the scene differs from the named one in the
attribute asked for; otherwise every object gives the same answer, so a model
that answers right may ignore the named attribute, and a faithful attribution
then gives it little.
"""
import sys
import numpy as np
import mmzoo
from mmzoo.data import shapes

entry = mmzoo.load(sys.argv[1])
data = shapes.generate_scenes(1500, split="test", image_size=32, seed=777)
keep = data["question_type"] == shapes.QUESTION_TYPES.index("shape")
qs = [str(q) for q in data["question"][keep]]
answers = [shapes.ANSWERS[a] for a in data["answer"][keep]]
for word in ("object", "thing", "one"):
    asked = [q.replace(" object?", f" {word}?") for q in qs]
    p = entry.predict(images=list(data["image"][keep]), texts=asked, top_k=1, batch_size=256)
    print(word, round(np.mean([x[0][0] == a for x, a in zip(p, answers)]), 3), flush=True)

data = shapes.generate_scenes(int(sys.argv[2]) if len(sys.argv) > 2 else 330, split="test",
                              image_size=32, seed=int(sys.argv[3]) if len(sys.argv) > 3 else 9191)
keep = np.isin(data["question_type"], [0, 1])
images, questions = data["image"][keep], [str(q) for q in data["question"][keep]]
scenes = [s for s, k in zip(data["scenes"], keep) if k]
asked = [shapes.QUESTION_TYPES[t] for t in data["question_type"][keep]]  # colour or shape
needed = [any(getattr(o, a) != getattr(s.objects[0], a) for o in s.objects[1:])
          for s, a in zip(scenes, asked)]
ex = mmzoo.explain(entry, images=list(images), texts=questions,
                   steps=int(sys.argv[4]) if len(sys.argv) > 4 else 16)  # the explain test's 16
attributes = set(shapes.COLOURS) | set(shapes.SHAPES)
FUNCTION = {"what", "is", "the", "of", "a", "an", "object"}
import collections
for name, words in (("strict", FUNCTION), ("closed", FUNCTION - {"object"})):
    wins, misses = [], collections.Counter()
    for e in ex:
        s = {w: abs(v) for w, v in e.token_scores}
        named = max(s[w] for w in s if w in attributes)
        fw = max((s[w], w) for w in s if w in words)
        wins.append(named > fw[0])
        if named <= fw[0]:
            misses[fw[1]] += 1
    print(name, len(wins), round(np.mean(wins), 3), dict(misses), flush=True)
    for flag, label in ((True, "needed"), (False, "not needed")):
        part = [w for w, n in zip(wins, needed) if n == flag]
        print(f"  {name}, naming words {label}: {len(part)} questions, "
              f"{round(np.mean(part), 3) if part else '-'}", flush=True)
