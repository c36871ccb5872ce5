"""The mmzoo-shapes scene generator: pure Python and NumPy, no TFDS.

A scene holds 1-6 coloured geometric objects. Each scene comes with five
reference captions, one question with its answer (balanced per question type,
so the question alone never gives the answer away), one caption/is-true pair
whose false captions differ from the scene in exactly one attribute or
relation, the multi-hot set of attributes present and the object count.

Scenes are drawn answer-first: the question type and its answer are sampled
uniformly, then a scene is built that makes the answer true. Scene `i` of a
seed depends only on `(seed, i)`, so any range of scenes can be regenerated on
its own. Splits are assigned by a hash of the scene's coarse layout (objects
with their colour, shape, size and 3x3 cell), so no layout appears in two
splits.

Example:

```python
from mmzoo.data import shapes
data = shapes.generate_scenes(8, split="train", image_size=64, seed=0)
data["image"].shape      # (8, 64, 64, 3) uint8
data["question"][0], shapes.ANSWERS[data["answer"][0]]
```
"""

import collections
import dataclasses
import hashlib
import math
import random

import numpy as np

from mmzoo.data import render
from mmzoo.data.render import RADIUS

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
SHAPE_PLURALS = ("circles", "squares", "triangles", "diamonds", "crosses")
SIZES = ("small", "large")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")
QUESTION_TYPES = ("colour", "shape", "count", "existence", "relational")
ANSWERS = COLOURS + SHAPES + NUMBER_WORDS + ("yes", "no")
ATTRIBUTES = COLOURS + SHAPES + SIZES + tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)
PERTURBATIONS = ("none", "colour", "shape", "size", "count", "relation", "position")
REGIONS = ("top left", "top", "top right", "left", "center", "right",
           "bottom left", "bottom", "bottom right")
REGION_PHRASES = ("at the top left", "at the top", "at the top right", "on the left",
                  "in the center", "on the right", "at the bottom left", "at the bottom",
                  "at the bottom right")
SPLITS = ("train", "validation", "test")
IMAGE_SIZES = (32, 64, 128)
MAX_OBJECTS = 6
NUM_CAPTIONS = 5

# Answer ids of each group, for answer-first sampling.
_COLOUR_ANSWER = {c: ANSWERS.index(c) for c in COLOURS}
_YES, _NO = ANSWERS.index("yes"), ANSWERS.index("no")

# Geometry, in fractions of the image side (RADIUS, from the renderer: small
# and large objects); the gap keeps anti-aliased edges from touching.
_EXTENT = 1.3  # bounding-circle radius / RADIUS (triangle corners reach 1.37)
_GAP = 0.03
_BORDER = 0.01
# A relation ("left of", "nearest") is only asked or captioned when it holds by
# this margin, and a false caption only when its opposite holds by it.
_REL_MARGIN = 0.1
_MIN_DIST2 = [[(_EXTENT * (RADIUS[a] + RADIUS[b]) + _GAP) ** 2 for b in (0, 1)] for a in (0, 1)]
_NEAREST_RATIO = 0.8
_REGION_TOLERANCE = 0.05
# Split buckets out of 20: 16 train, 2 validation, 2 test.
_SPLIT_BUCKETS = {"train": range(0, 16), "validation": range(16, 18), "test": range(18, 20)}
_RELATIONS = ("left", "right", "above", "below")
_RELATION_PHRASES = {"left": "to the left of", "right": "to the right of",
                     "above": "above", "below": "below"}
_OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}


@dataclasses.dataclass
class ShapeObject:
    """One object of a scene (ids index `SHAPES`, `COLOURS`, `SIZES`)."""

    shape: int
    colour: int
    size: int
    x: float  # centre, 0 (left) .. 1 (right)
    y: float  # centre, 0 (top) .. 1 (bottom)

    @property
    def radius(self):
        return RADIUS[self.size]

    @property
    def region(self):
        """Cell of the 3x3 grid (row-major from the top left, see `REGIONS`)."""
        return _region_of(self.x, self.y)


@dataclasses.dataclass
class Scene:
    """A generated scene: objects, rendering parameters and all texts."""

    scene_id: int
    objects: list
    question: str
    answer: int
    question_type: int
    captions: list = dataclasses.field(default_factory=list)
    match_caption: str = ""
    match_label: int = 1
    match_perturbation: int = 0
    # Both sides of the matching pair: the true caption, its one-edit false
    # version and that edit's `PERTURBATIONS` id (`match_caption` is one of them).
    match_true: str = ""
    match_false: str = ""
    match_false_perturbation: int = 0
    background: tuple = (128.0, 0.0, 0.0)  # level, gradient along x, along y
    clutter: list = dataclasses.field(default_factory=list)  # (x0, y0, x1, y1, grey)
    noise_index: int = 0
    colour_jitter: list = dataclasses.field(default_factory=list)

    @property
    def count(self):
        return len(self.objects)

    def attributes(self):
        """Multi-hot `uint8` vector over `ATTRIBUTES`."""
        hot = np.zeros(len(ATTRIBUTES), np.uint8)
        for o in self.objects:
            hot[o.colour] = 1
            hot[len(COLOURS) + o.shape] = 1
            hot[len(COLOURS) + len(SHAPES) + o.size] = 1
            hot[len(COLOURS) + len(SHAPES) + len(SIZES) + o.colour * len(SHAPES) + o.shape] = 1
        return hot

    def layout_key(self):
        """The coarse layout that decides the split (order-free)."""
        return tuple(sorted((o.colour, o.shape, o.size, o.region) for o in self.objects))


def _region_of(x, y):
    return min(int(y * 3), 2) * 3 + min(int(x * 3), 2)


def _plausible_regions(o):
    """Regions a viewer could name for `o` (more than one near a border)."""
    t = _REGION_TOLERANCE
    cols = {min(max(int(v * 3), 0), 2) for v in (o.x - t, o.x, o.x + t)}
    rows = {min(max(int(v * 3), 0), 2) for v in (o.y - t, o.y, o.y + t)}
    return {r * 3 + c for r in rows for c in cols}


def _a(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def _number(n):
    return NUMBER_WORDS[n]


def _plural(n, singular, plural):
    return f"{_number(n)} {singular if n == 1 else plural}"


def _join(items):
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _relation_amount(a, b, relation):
    """How far `a` is `relation` of `b` (negative: the opposite holds)."""
    if relation == "left":
        return b.x - a.x
    if relation == "right":
        return a.x - b.x
    if relation == "above":
        return b.y - a.y
    return a.y - b.y


# ----------------------------------------------------------------------------
# Layout


def _sample_layout(rng, n):
    """Places `n` non-overlapping objects of random sizes, in random order.

    Shapes and colours are left at 0; the question builders assign them.
    """
    for _ in range(1000):
        # Large objects first: they are the hard ones to fit.
        sizes = sorted((rng.randrange(2) for _ in range(n)), reverse=True)
        placed = []  # (x, y, size)
        for size in sizes:
            lo = _EXTENT * RADIUS[size] + _BORDER
            span = 1.0 - 2.0 * lo
            min_d2 = _MIN_DIST2[size]
            for _ in range(40):
                x, y = lo + span * rng.random(), lo + span * rng.random()
                for px, py, ps in placed:
                    if (x - px) * (x - px) + (y - py) * (y - py) < min_d2[ps]:
                        break
                else:
                    placed.append((x, y, size))
                    break
            else:
                break
        if len(placed) == n:
            rng.shuffle(placed)  # the builders use objs[0]: keep it unbiased
            return [ShapeObject(0, 0, size, x, y) for x, y, size in placed]
    raise RuntimeError(f"Could not place {n} objects.")  # pragma: no cover


def _random_attributes(rng, obj, forbidden):
    """Gives `obj` a random shape and colour whose (colour, shape) or
    (colour, shape, size) keys avoid `forbidden` predicates."""
    for _ in range(100):
        obj.shape, obj.colour = rng.randrange(len(SHAPES)), rng.randrange(len(COLOURS))
        if not any(f(obj) for f in forbidden):
            return
    raise RuntimeError("Could not satisfy the scene constraints.")  # pragma: no cover


# ----------------------------------------------------------------------------
# Questions: each builder returns (objects, question, answer id).


def _q_colour(rng):
    answer = rng.randrange(len(COLOURS))
    shape = rng.randrange(len(SHAPES))
    with_size = rng.random() < 0.4
    objs = _sample_layout(rng, rng.randint(1, MAX_OBJECTS))
    ref = objs[0]
    ref.shape, ref.colour = shape, answer
    if with_size:
        forbidden = [lambda o: o.shape == shape and o.size == ref.size]
    else:
        forbidden = [lambda o: o.shape == shape]
    for o in objs[1:]:
        _random_attributes(rng, o, forbidden)
    target = f"{SIZES[ref.size]} {SHAPES[shape]}" if with_size else SHAPES[shape]
    template = rng.choice(("what colour is the {}?", "what is the colour of the {}?"))
    return objs, template.format(target), _COLOUR_ANSWER[COLOURS[answer]]


def _q_shape(rng):
    answer = rng.randrange(len(SHAPES))
    colour = rng.randrange(len(COLOURS))
    with_size = rng.random() < 0.4
    objs = _sample_layout(rng, rng.randint(1, MAX_OBJECTS))
    ref = objs[0]
    ref.shape, ref.colour = answer, colour
    if with_size:
        forbidden = [lambda o: o.colour == colour and o.size == ref.size]
    else:
        forbidden = [lambda o: o.colour == colour]
    for o in objs[1:]:
        _random_attributes(rng, o, forbidden)
    target = f"{SIZES[ref.size]} {COLOURS[colour]}" if with_size else COLOURS[colour]
    template = rng.choice(("what shape is the {} object?", "what is the shape of the {} object?"))
    return objs, template.format(target), len(COLOURS) + answer


def _q_count(rng):
    kind = rng.randrange(4)  # total, colour, shape, colour + shape
    if kind == 0:
        k = rng.randint(1, MAX_OBJECTS)
        objs = _sample_layout(rng, k)
        for o in objs:
            _random_attributes(rng, o, [])
        return objs, "how many objects are there?", len(COLOURS) + len(SHAPES) + k
    k = rng.randint(0, 4)
    objs = _sample_layout(rng, rng.randint(max(k, 1), MAX_OBJECTS))
    colour, shape = rng.randrange(len(COLOURS)), rng.randrange(len(SHAPES))
    if kind == 1:
        question = f"how many {COLOURS[colour]} objects are there?"
    elif kind == 2:
        question = f"how many {SHAPE_PLURALS[shape]} are there?"
    else:
        question = f"how many {COLOURS[colour]} {SHAPE_PLURALS[shape]} are there?"

    def match(o):
        return (kind == 2 or o.colour == colour) and (kind == 1 or o.shape == shape)

    for o in objs[:k]:
        _random_attributes(rng, o, [])
        o.colour = colour if kind != 2 else o.colour
        o.shape = shape if kind != 1 else o.shape
    for o in objs[k:]:
        _random_attributes(rng, o, [match])
    rng.shuffle(objs)
    return objs, question, len(COLOURS) + len(SHAPES) + k


def _q_existence(rng):
    answer = rng.random() < 0.5
    colour, shape = rng.randrange(len(COLOURS)), rng.randrange(len(SHAPES))
    with_size = rng.random() < 0.3
    objs = _sample_layout(rng, rng.randint(1, MAX_OBJECTS))
    # The size named in the question is uniform either way: the referent's
    # (random) size for "yes", a fair coin for "no".
    size = objs[0].size if answer else rng.randrange(2)

    def match(o):
        return o.colour == colour and o.shape == shape and (not with_size or o.size == size)

    if answer:
        objs[0].colour, objs[0].shape = colour, shape
        for o in objs[1:]:
            _random_attributes(rng, o, [])
    else:
        hard = []
        if rng.random() < 0.7:
            # Hard negatives: the colour and the shape are there, on other
            # objects (or the right colour and shape in the other size).
            hard = [(colour, (shape + rng.randrange(1, len(SHAPES))) % len(SHAPES)),
                    ((colour + rng.randrange(1, len(COLOURS))) % len(COLOURS), shape)]
            if with_size and objs[0].size != size and rng.random() < 0.5:
                hard[0] = (colour, shape)
        hard = hard[: len(objs)]
        for o, (c, s) in zip(objs, hard):
            o.colour, o.shape = c, s
        for o in objs[len(hard):]:
            _random_attributes(rng, o, [match])
    rng.shuffle(objs)
    target_words = (f"{SIZES[size]} " if with_size else "") + COLOURS[colour]
    if rng.random() < 0.5:
        question = f"is there {_a(target_words)} {SHAPES[shape]}?"
    else:
        question = f"are there any {target_words} {SHAPE_PLURALS[shape]}?"
    return objs, question, _YES if answer else _NO


def _q_relational(rng):
    kind = rng.randrange(3)  # nearest shape, nearest colour, spatial yes/no
    while True:
        objs = _sample_layout(rng, rng.randint(2, MAX_OBJECTS))
        if kind < 2:
            ref = objs[0]
            dist = sorted(((o.x - ref.x) ** 2 + (o.y - ref.y) ** 2, i)
                          for i, o in enumerate(objs[1:], 1))
            if len(dist) > 1 and math.sqrt(dist[0][0]) > _NEAREST_RATIO * math.sqrt(dist[1][0]):
                continue
            target = objs[dist[0][1]]
            ref.colour, ref.shape = rng.randrange(len(COLOURS)), rng.randrange(len(SHAPES))
            ref_key = (ref.colour, ref.shape)
            if kind == 0:
                answer = rng.randrange(len(SHAPES))
                target.shape = answer
                target.colour = rng.randrange(len(COLOURS))
                while (target.colour, target.shape) == ref_key:
                    target.colour = rng.randrange(len(COLOURS))
                answer_id = len(COLOURS) + answer
            else:
                answer = rng.randrange(len(COLOURS))
                target.colour = answer
                target.shape = rng.randrange(len(SHAPES))
                while (target.colour, target.shape) == ref_key:
                    target.shape = rng.randrange(len(SHAPES))
                answer_id = answer
            forbidden = [lambda o: (o.colour, o.shape) == ref_key]
            for o in objs:
                if o is not ref and o is not target:
                    _random_attributes(rng, o, forbidden)
            ref_words = f"{COLOURS[ref.colour]} {SHAPES[ref.shape]}"
            if kind == 0:
                question = rng.choice(("what shape is nearest to the {}?",
                                       "what shape is closest to the {}?")).format(ref_words)
            else:
                question = rng.choice(("what colour is the object nearest to the {}?",
                                       "what colour is the object closest to the {}?")
                                      ).format(ref_words)
            rng.shuffle(objs)
            return objs, question, answer_id
        relation = rng.choice(_RELATIONS)
        answer = rng.random() < 0.5
        pairs = [(a, b) for a in objs for b in objs
                 if _relation_amount(a, b, relation) >= _REL_MARGIN]
        if not pairs:
            continue
        a, b = rng.choice(pairs)  # `a` is `relation` of `b`
        if not answer:
            a, b = b, a
        a.colour, a.shape = rng.randrange(len(COLOURS)), rng.randrange(len(SHAPES))
        b.colour, b.shape = rng.randrange(len(COLOURS)), rng.randrange(len(SHAPES))
        while (b.colour, b.shape) == (a.colour, a.shape):
            b.shape = rng.randrange(len(SHAPES))
        keys = {(a.colour, a.shape), (b.colour, b.shape)}
        forbidden = [lambda o: (o.colour, o.shape) in keys]
        for o in objs:
            if o is not a and o is not b:
                _random_attributes(rng, o, forbidden)
        question = "is the {} {} {} the {} {}?".format(
            COLOURS[a.colour], SHAPES[a.shape], _RELATION_PHRASES[relation],
            COLOURS[b.colour], SHAPES[b.shape])
        return objs, question, _YES if answer else _NO


_QUESTION_BUILDERS = (_q_colour, _q_shape, _q_count, _q_existence, _q_relational)


# ----------------------------------------------------------------------------
# Captions. A caption is a structured claim `(kind, payload)`; `caption_text`
# renders it and `caption_truth` evaluates it against the objects, so false
# (hard-negative) captions are checked to be false, not assumed.


def _caption_enumerate(rng, objs):
    items = [(o.size, o.colour, o.shape) for o in sorted(objs, key=lambda o: o.x)]
    return ("enumerate", items)


def _caption_groups(rng, objs):
    groups = collections.Counter((o.colour, o.shape) for o in objs)
    items = list(groups.items())
    rng.shuffle(items)
    return ("groups", items)


def _caption_colours(rng, objs):
    groups = collections.Counter(o.colour for o in objs)
    items = list(groups.items())
    rng.shuffle(items)
    return ("colours", items)


def _caption_relation(rng, objs):
    counts = collections.Counter((o.colour, o.shape) for o in objs)
    unique = [o for o in objs if counts[(o.colour, o.shape)] == 1]
    options = [(a, b) for a in unique for b in unique if a is not b]
    rng.shuffle(options)
    for a, b in options:  # the first pair with a clear relation, at random
        relations = [rel for rel in _RELATIONS if _relation_amount(a, b, rel) >= _REL_MARGIN]
        if relations:
            rel = rng.choice(relations)
            return ("relation", ((a.colour, a.shape), rel, (b.colour, b.shape)))
    return None


def _caption_positions(rng, objs):
    chosen = rng.sample(objs, min(len(objs), 3))
    return ("positions", [(o.size, o.colour, o.shape, o.region) for o in chosen])


_CAPTION_BUILDERS = (_caption_enumerate, _caption_groups, _caption_relation,
                     _caption_positions, _caption_colours)


def caption_text(caption):
    """Renders a structured caption as an English sentence."""
    kind, payload = caption
    if kind == "enumerate":
        words = [_a(f"{SIZES[z]} {COLOURS[c]} {SHAPES[s]}") for z, c, s in payload]
        return f"{_plural(len(payload), 'shape', 'shapes')}: {_join(words)}."
    if kind == "groups":
        words = [f"{_number(k)} {COLOURS[c]} {SHAPES[s] if k == 1 else SHAPE_PLURALS[s]}"
                 for (c, s), k in payload]
        return f"{_join(words)}."
    if kind == "colours":
        words = [f"{_number(k)} {COLOURS[c]} {'shape' if k == 1 else 'shapes'}"
                 for c, k in payload]
        return f"{_join(words)}."
    if kind == "relation":
        (ca, sa), rel, (cb, sb) = payload
        return (f"{_a(COLOURS[ca])} {SHAPES[sa]} {_RELATION_PHRASES[rel]} "
                f"{_a(COLOURS[cb])} {SHAPES[sb]}.")
    if kind == "positions":
        words = [_a(f"{SIZES[z]} {COLOURS[c]} {SHAPES[s]} {REGION_PHRASES[r]}")
                 for z, c, s, r in payload]
        return f"{_join(words)}."
    raise ValueError(f"Unknown caption kind. Received: kind={kind!r}")


def caption_truth(caption, objs):
    """`True` if the caption clearly holds, `False` if it clearly does not,
    `None` when a viewer could argue either way."""
    kind, payload = caption
    if kind == "enumerate":
        return (collections.Counter(payload)
                == collections.Counter((o.size, o.colour, o.shape) for o in objs))
    if kind == "groups":
        return dict(payload) == collections.Counter((o.colour, o.shape) for o in objs)
    if kind == "colours":
        return dict(payload) == collections.Counter(o.colour for o in objs)
    if kind == "relation":
        (ca, sa), rel, (cb, sb) = payload
        amounts = [_relation_amount(a, b, rel) for a in objs for b in objs
                   if a is not b and (a.colour, a.shape) == (ca, sa)
                   and (b.colour, b.shape) == (cb, sb)]
        if any(v >= _REL_MARGIN for v in amounts):
            return True
        if all(v <= -_REL_MARGIN for v in amounts):
            return False
        return None
    if kind == "positions":
        truth = True
        for z, c, s, r in payload:
            matching = [o for o in objs if (o.size, o.colour, o.shape) == (z, c, s)]
            if any(o.region == r for o in matching):
                continue
            if any(r in _plausible_regions(o) for o in matching):
                truth = None
            else:
                return False
        return truth
    raise ValueError(f"Unknown caption kind. Received: kind={kind!r}")


def _perturb(rng, caption, objs):
    """Changes one attribute or relation of a true caption so that it is
    clearly false; returns `(caption, perturbation id)` or `None`."""
    kind, payload = caption
    kinds = {"enumerate": ("colour", "shape", "size"),
             "groups": ("colour", "shape", "count"),
             "colours": ("colour", "count"),
             "relation": ("relation", "colour", "shape"),
             "positions": ("position", "colour", "shape", "size")}[kind]
    for _ in range(20):
        what = rng.choice(kinds)
        items = list(payload) if kind != "relation" else None
        if kind == "relation":
            (ca, sa), rel, (cb, sb) = payload
            if what == "relation":
                rel = _OPPOSITE[rel]
            elif rng.random() < 0.5:
                ca, sa = _change(rng, what, ca, sa)
            else:
                cb, sb = _change(rng, what, cb, sb)
            if (ca, sa) == (cb, sb):
                continue
            new = (kind, ((ca, sa), rel, (cb, sb)))
        elif kind in ("groups", "colours"):
            i = rng.randrange(len(items))
            key, k = items[i]
            if what == "count":
                k += rng.choice((-1, 1))
                total = sum(n for _, n in items) - items[i][1] + k
                if k < 1 or total > MAX_OBJECTS:
                    continue
            elif kind == "colours":
                key = _change(rng, "colour", key, 0)[0]
            else:
                key = _change(rng, what, *key)
            if key != items[i][0] and any(key == other for other, _ in items):
                continue  # a true caption never lists a group twice
            items[i] = (key, k)
            new = (kind, items)
        else:
            i = rng.randrange(len(items))
            item = list(items[i])
            if what == "size":
                item[0] = 1 - item[0]
            elif what == "position":
                item[3] = (item[3] + rng.randrange(1, len(REGIONS))) % len(REGIONS)
            else:
                item[1], item[2] = _change(rng, what, item[1], item[2])
            items[i] = tuple(item)
            new = (kind, items)
        if caption_truth(new, objs) is False:
            return new, PERTURBATIONS.index(what)
    return None


def _change(rng, what, colour, shape):
    if what == "colour":
        return (colour + rng.randrange(1, len(COLOURS))) % len(COLOURS), shape
    return colour, (shape + rng.randrange(1, len(SHAPES))) % len(SHAPES)


def _captions(rng, objs):
    refs = []
    for build in _CAPTION_BUILDERS:
        caption = build(rng, objs)
        if caption is None:  # no clear relation: describe by groups instead
            caption = _caption_groups(rng, objs)
        refs.append(caption)
    return refs


def _matching_pair(rng, objs):
    # The caption kind is drawn before the label and kept only if it can be
    # falsified, so the kind says nothing about the label.
    label = rng.random() < 0.5
    while True:
        caption = rng.choice(_CAPTION_BUILDERS)(rng, objs)
        if caption is None:
            continue
        false = _perturb(rng, caption, objs)
        if false is None:
            continue
        true_text, false_text = caption_text(caption), caption_text(false[0])
        pair = (true_text, false_text, false[1])
        if label:
            return (true_text, 1, 0), pair
        return (false_text, 0, false[1]), pair


# ----------------------------------------------------------------------------
# Scenes and splits


# seed -> split id of each stream position built so far: after one pass (say
# over train) the other splits skip the positions they do not own for free.
_SPLIT_MEMO = {}


def _scene_rng(seed, index):
    # String seeds hash with SHA-512: stable across runs, platforms and Python.
    return random.Random(f"mmzoo-shapes:{seed}:{index}")


def split_of(layout_key, seed=0):
    """The split (`"train"`, `"validation"` or `"test"`) a layout belongs to."""
    digest = hashlib.blake2b(repr((seed, layout_key)).encode(), digest_size=8).digest()
    bucket = int.from_bytes(digest, "little") % 20
    for split, buckets in _SPLIT_BUCKETS.items():
        if bucket in buckets:
            return split
    raise AssertionError(bucket)  # pragma: no cover


def sample_scene(seed, index, split=None):
    """Builds scene `index` of the stream for `seed` (without its image).

    Args:
        seed: the dataset seed.
        index: position in the stream; also the scene's `scene_id`.
        split: if given, return `None` unless the scene belongs to it.

    Returns:
        A `Scene`, or `None` when `split` is given and differs.
    """
    rng = _scene_rng(seed, index)
    qtype = rng.randrange(len(QUESTION_TYPES))
    objs, question, answer = _QUESTION_BUILDERS[qtype](rng)
    scene = Scene(index, objs, question, answer, qtype)
    scene_split = split_of(scene.layout_key(), seed)
    memo = _SPLIT_MEMO.setdefault(seed, bytearray())
    if index == len(memo):
        memo.append(SPLITS.index(scene_split))
    if split is not None and scene_split != split:
        return None
    scene.captions = [caption_text(c) for c in _captions(rng, objs)]
    sampled, pair = _matching_pair(rng, objs)
    scene.match_caption, scene.match_label, scene.match_perturbation = sampled
    scene.match_true, scene.match_false, scene.match_false_perturbation = pair
    scene.background = (rng.uniform(90.0, 170.0), rng.uniform(-25.0, 25.0),
                        rng.uniform(-25.0, 25.0))
    scene.clutter = []
    for _ in range(rng.randint(0, 3)):
        x0, y0 = rng.random(), rng.random()
        angle, length = rng.uniform(0, math.pi), rng.uniform(0.08, 0.25)
        scene.clutter.append((x0, y0, x0 + length * math.cos(angle),
                              y0 + length * math.sin(angle), rng.uniform(40.0, 220.0)))
    scene.noise_index = rng.randrange(render.NOISE_BANK_SIZE)
    scene.colour_jitter = [[rng.uniform(-12.0, 12.0) for _ in range(3)] for _ in objs]
    return scene


def iter_scenes(split="train", seed=0, start=0):
    """Yields the scenes of `split` forever, in stream order.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        seed: the dataset seed.
        start: skip this many scenes of the split first.
    """
    _check_split(split)
    want = SPLITS.index(split)
    memo = _SPLIT_MEMO.setdefault(seed, bytearray())
    index, seen = 0, 0
    while True:
        if index < len(memo) and memo[index] != want:
            index += 1  # known to be another split's: skip without building
            continue
        if seen < start and index < len(memo):
            index, seen = index + 1, seen + 1  # ours, but before `start`
            continue
        scene = sample_scene(seed, index, split)
        index += 1
        if scene is None:
            continue
        if seen >= start:
            yield scene
        seen += 1


# Stream scene `k` of a seed is drawn from raw scene indices STREAM_OFFSET +
# k * STREAM_ATTEMPTS + attempt, attempt = 0, 1, ...: far above the indices of
# the fixed splits, and addressable without walking the stream (so a resumed
# run jumps straight to its batch). A draw belongs to the split with
# probability 0.8 (train), so 64 attempts never all fail in practice.
STREAM_OFFSET = 2**40
STREAM_ATTEMPTS = 64


def stream_scene(seed, k, split="train"):
    """Scene `k` of the endless stream of fresh scenes of `split` (training data that never runs out).

    Scene `k` depends only on `(seed, k)`, so any range of the stream can be
    regenerated on its own, in any order. Its layout belongs to `split` by the
    same hash as the fixed splits, so a training stream never shares a layout
    with the validation or test split of the same seed. Its scenes are not
    those of `iter_scenes` (the fixed splits).

    Args:
        seed: the dataset seed.
        k: position in the stream, >= 0.
        split: the split whose layouts to draw (normally `"train"`).

    Returns:
        A `Scene` (`scene_id` is its raw index, >= `STREAM_OFFSET`).
    """
    _check_split(split)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
        raise ValueError(f"`k` must be a non-negative integer. Received: k={k!r}")
    base = STREAM_OFFSET + int(k) * STREAM_ATTEMPTS
    for attempt in range(STREAM_ATTEMPTS):
        scene = sample_scene(seed, base + attempt, split)
        if scene is not None:
            return scene
    raise RuntimeError(f"No {split} scene in {STREAM_ATTEMPTS} draws for stream scene {k} "
                       f"of seed {seed}.")  # pragma: no cover  (probability < 1e-6 per scene)


def stream_scenes(count, split="train", image_size=64, seed=0, start=0):
    """`count` scenes of the endless stream from position `start`, rendered.

    Returns:
        A dict of arrays as `generate_scenes` returns.
    """
    _check_image_size(image_size)
    scenes = [stream_scene(seed, k, split) for k in range(start, start + count)]
    return scenes_to_arrays(scenes, render.render_scenes(scenes, image_size))


def iter_scene_batches(num_scenes, split="train", image_size=64, seed=0, start=0,
                       batch_size=256):
    """Yields `generate_scenes`-style dicts of up to `batch_size` scenes each,
    `num_scenes` in all, rendering batch by batch (bounded memory)."""
    if (not isinstance(num_scenes, (int, np.integer)) or isinstance(num_scenes, bool)
            or num_scenes < 0):
        raise ValueError(f"`num_scenes` must be a non-negative integer. Received: "
                         f"num_scenes={num_scenes!r}")
    _check_image_size(image_size)
    stream = iter_scenes(split, seed, start)
    done = 0
    while done < num_scenes:
        chunk = [next(stream) for _ in range(min(batch_size, num_scenes - done))]
        done += len(chunk)
        yield scenes_to_arrays(chunk, render.render_scenes(chunk, image_size))


def generate_scenes(num_scenes, split="train", image_size=64, seed=0, start=0,
                    progress=False, batch_size=256):
    """Generates scenes with their images, in memory.

    Args:
        num_scenes: how many scenes.
        split: `"train"`, `"validation"` or `"test"`; splits never share a
            layout.
        image_size: side of the square RGB images in pixels, >= 16.
        seed: the dataset seed; the same arguments give the same bytes.
        start: index of the first scene within the split.
        progress: show a progress bar.
        batch_size: scenes rendered together (speed only; never the result).

    Returns:
        A dict of NumPy arrays, one row per scene: `image` (uint8, (N, S, S, 3)),
        `scene_id` (int64), `captions` (object, (N, 5)), `question`, `answer`,
        `question_type`, `match_caption`, `match_label`, `match_perturbation`,
        `match_true`, `match_false`, `match_false_perturbation` (both sides of
        the matching pair, for training on minimal pairs),
        `attributes` (uint8 multi-hot over `ATTRIBUTES`), `count`; and
        `scenes`, the list of `Scene` objects (the scene graphs).

    Example:

    ```python
    data = generate_scenes(4, image_size=32)
    data["image"].shape  # (4, 32, 32, 3)
    ```
    """
    parts = []
    bar = _progress(num_scenes, f"mmzoo-shapes {split}") if progress else None
    for part in iter_scene_batches(num_scenes, split, image_size, seed, start, batch_size):
        parts.append(part)
        if bar is not None:
            bar.update(len(part["scenes"]))
    if bar is not None:
        bar.close()
    if not parts:
        return scenes_to_arrays([], np.zeros((0, image_size, image_size, 3), np.uint8))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "scenes"}
    out["scenes"] = [sc for p in parts for sc in p["scenes"]]
    return out


def scenes_to_arrays(scenes, images):
    """Packs scenes (and their rendered images) into a dict of arrays."""
    n = len(scenes)
    captions = np.empty((n, NUM_CAPTIONS), object)
    for i, s in enumerate(scenes):
        captions[i] = s.captions
    return {
        "image": images,
        "scene_id": np.array([s.scene_id for s in scenes], np.int64),
        "captions": captions,
        "question": np.array([s.question for s in scenes], object),
        "answer": np.array([s.answer for s in scenes], np.int64),
        "question_type": np.array([s.question_type for s in scenes], np.int64),
        "match_caption": np.array([s.match_caption for s in scenes], object),
        "match_label": np.array([s.match_label for s in scenes], np.int64),
        "match_perturbation": np.array([s.match_perturbation for s in scenes], np.int64),
        "match_true": np.array([s.match_true for s in scenes], object),
        "match_false": np.array([s.match_false for s in scenes], object),
        "match_false_perturbation": np.array([s.match_false_perturbation for s in scenes],
                                             np.int64),
        "attributes": (np.stack([s.attributes() for s in scenes]) if n else
                       np.zeros((0, len(ATTRIBUTES)), np.uint8)),
        "count": np.array([s.count for s in scenes], np.int64),
        "scenes": scenes,
    }


def _progress(total, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=" scenes")


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")


def _check_image_size(image_size):
    if not isinstance(image_size, (int, np.integer)) or isinstance(image_size, bool) \
            or image_size < 16:
        raise ValueError("`image_size` must be an integer >= 16 (32, 64 and 128 are the "
                         f"standard sizes). Received: image_size={image_size!r}")


def vocabulary():
    """Every word the generator can write, sorted (for a fixed tokenizer)."""
    words = set()
    for text in (
        COLOURS + SHAPES + SHAPE_PLURALS + SIZES + NUMBER_WORDS + ANSWERS + REGION_PHRASES
        + tuple(_RELATION_PHRASES.values())
        + ("what colour is the", "what is the colour of the", "what shape is the object",
           "what is the shape of the", "how many objects are there",
           "is there a", "are there any", "what shape is nearest to the",
           "what shape is closest to the", "what colour is the object nearest to the",
           "closest", "is the", "shape shapes a an and")
    ):
        words.update(text.split())
    return sorted(words)
