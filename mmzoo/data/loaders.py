"""Loaders for users' own data: image folders with a CSV, COCO captions and
Flickr8k captions, as `(inputs, labels)` datasets like `shapes_dataset`'s.

Every row is checked in Python before a `tf.data.Dataset` is built: the image
file must exist and decode (fully, so truncated files are caught), texts must
not be empty, labels must be in the declared set. A bad row is a `DataError`
naming the file and the row; with `on_error="skip"` bad rows are left out and
counted in one warning. Nothing is dropped silently.

Example:

```python
# photos/labels.csv:
#   image,text,label
#   cat1.jpg,a cat on a sofa,cat
ds, info = mmzoo.data.image_folder_dataset(
    "photos/labels.csv", task="classification", image_size=64, with_info=True)
model = mmzoo.build_model("classification", **info.model_options())
model.fit(ds, epochs=3)
```
"""

import csv
import json
import math
import os
import warnings

import numpy as np

from mmzoo.data.pipeline import TaskInfo
from mmzoo.data.problems import LABEL_FORMATS
from mmzoo.data.tokenizer import END, PAD, Tokenizer
from mmzoo.registry import TASKS

#: The tasks a user's data set can feed: every registered task (a live view);
#: its `label_format` says how a label column is read.
LOADER_TASKS = TASKS
ON_ERROR = ("raise", "skip")
# Formats tf.io.decode_image reads.
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "BMP")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


class DataError(ValueError):
    """A row of a user's data set is invalid (the message says which)."""


class _Problems:
    """Collects row errors: raises at once, or counts them for one warning."""

    def __init__(self, on_error, source):
        if on_error not in ON_ERROR:
            raise ValueError(f"`on_error` must be one of {ON_ERROR}. Received: "
                             f"on_error={on_error!r}")
        self.on_error, self.source, self.messages = on_error, source, []

    def report(self, where, message):
        text = f"{self.source}, {where}: {message}"
        if self.on_error == "raise":
            raise DataError(text + ' (pass on_error="skip" to leave such rows out)')
        self.messages.append(text)

    def finish(self, kept, total):
        if self.messages:
            shown = "\n  ".join(self.messages[:5])
            more = f"\n  ... and {len(self.messages) - 5} more" if len(self.messages) > 5 else ""
            warnings.warn(f"Skipped {len(self.messages)} of {total} rows of {self.source} "
                          f"(on_error='skip'):\n  {shown}{more}", stacklevel=3)
        if kept == 0:
            raise DataError(f"{self.source}: no valid rows"
                            + (f" ({len(self.messages)} skipped)." if self.messages else "."))


def _check_image(path, cache, size_hint):
    """`None` if `path` is an image TF can decode, else what is wrong."""
    if path in cache:
        return cache[path]
    from PIL import Image

    problem = None
    if not os.path.isfile(path):
        problem = f"image file {path!r} does not exist"
    else:
        try:
            with Image.open(path) as im:
                if im.format not in IMAGE_FORMATS:
                    problem = (f"image file {path!r} is {im.format}; supported formats are "
                               f"{IMAGE_FORMATS}")
                else:
                    # draft() decodes JPEGs at a reduced scale: still every byte
                    # is read (truncation is caught), several times faster.
                    im.draft("RGB", (size_hint, size_hint))
                    im.load()
        except Exception as e:  # PIL raises many types for bad files
            problem = f"image file {path!r} cannot be decoded ({type(e).__name__}: {e})"
    cache[path] = problem
    return problem


def _image_size(image_size):
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (int(image_size), int(image_size))
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                       for v in image_size)):
        raise ValueError("`image_size` must be a positive integer or (height, width). "
                         f"Received: image_size={image_size!r}")
    return tuple(int(v) for v in image_size)


def _check_path(name, value, optional=False):
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise TypeError(f"`{name}` must be a file or folder path (str or os.PathLike)"
                        f"{' or None' if optional else ''}. Received: {name}={value!r}")
    return os.path.expanduser(os.fspath(value))


def _check_options(image_size, sequence_length, max_tokens, batch_size, shuffle, seed, cache,
                   drop_remainder, with_info):
    """Checks the loader options every loader shares, before any file is read."""
    _image_size(image_size)

    def bad(name, value, allowed):
        raise ValueError(f"`{name}` must be {allowed}. Received: {name}={value!r}")

    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if sequence_length is not None and not (is_int(sequence_length) and sequence_length > 0):
        bad("sequence_length", sequence_length, "a positive integer")
    if max_tokens is not None and not is_int(max_tokens):
        bad("max_tokens", max_tokens, "None or an integer")
    if batch_size is not None and not (is_int(batch_size) and batch_size > 0):
        bad("batch_size", batch_size, "a positive integer, or None for an unbatched dataset")
    if seed is not None and not is_int(seed):
        bad("seed", seed, "an integer or None")
    for name, value in (("shuffle", shuffle), ("drop_remainder", drop_remainder),
                        ("with_info", with_info)):
        if not isinstance(value, (bool, np.bool_)):
            bad(name, value, "True or False")
    if not (isinstance(cache, (bool, np.bool_, str, os.PathLike))
            and (isinstance(cache, (bool, np.bool_)) or os.fspath(cache))):
        bad("cache", cache, "True (in memory), False, or the path of a cache file")


def _check_task(task):
    """The task object; its `label_format` must be one a CSV column can hold."""
    task = TASKS.get(task)
    if task.label_format not in _LABEL_FORMATS:
        raise ValueError(f"task={task.name!r} has labels of format {task.label_format!r}, "
                         f"which a data set's label column cannot hold (one of "
                         f"{_LABEL_FORMATS}). Received: task={task.name!r}")
    return task


# Label formats a user's data set holds: all of them.
_LABEL_FORMATS = LABEL_FORMATS
_NAMED = ("index", "multi_hot")


def _tokenizer(tokenizer, texts, sequence_length, max_tokens):
    if tokenizer is None:
        return Tokenizer.from_texts(texts, max_tokens=max_tokens,
                                    sequence_length=sequence_length)
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = Tokenizer.load(tokenizer)
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError("`tokenizer` must be a mmzoo.data.Tokenizer, a path to a saved one, "
                        f"or None. Received: tokenizer of type {type(tokenizer).__name__}")
    return tokenizer


def _make_dataset(paths, texts, labels, task, size, tokenizer, sequence_length,
                  batch_size, shuffle, seed, cache, drop_remainder):
    import tensorflow as tf

    next_tokens = TASKS.get(task).label_format == "next_tokens"

    length = sequence_length or tokenizer.sequence_length
    height, width = size

    def load(path, text, label):
        data = tf.io.read_file(path)
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width),
                                antialias=True)
        image = tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), (height, width, 3))
        if next_tokens:
            full = tokenizer.tf_encode(text, sequence_length=length + 1, add_start=True,
                                       add_end=True)
            return {"image": image, "text": tf.where(full[:-1] == END, PAD, full[:-1])}, \
                full[1:]
        return {"image": image, "text": tokenizer.tf_encode(text, sequence_length=length)}, \
            label

    if labels is None:  # captioning: labels come from the text
        labels = np.zeros(len(paths), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string),
                                             tf.constant(texts, tf.string), labels))
    if shuffle and not cache:
        # Shuffle file names (cheap), before decoding.
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache(os.fspath(cache)) if not isinstance(cache, bool) else ds.cache()
        if shuffle:  # after the cache, or every epoch would replay the first order
            ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def _info(task, tokenizer, sequence_length, size, label_names, text_field):
    num_classes = TASKS.get(task).num_outputs(label_names, tokenizer.vocab_size)
    return TaskInfo(task=task, tokenizer=tokenizer,
                    label_names=tuple(label_names) if label_names is not None else None,
                    num_classes=num_classes, vocab_size=tokenizer.vocab_size,
                    sequence_length=int(sequence_length or tokenizer.sequence_length),
                    image_shape=(size[0], size[1], 3), text_field=text_field)


def _declared_labels(labels):
    names = [str(v) for v in labels]
    if not names or len(set(names)) != len(names):
        raise ValueError("`labels` must be a non-empty list of distinct names. "
                         f"Received: labels={labels!r}")
    return names


def _parse_label(label_format, value, index, separator):
    """`(parsed, problem)`: label names (formats "index", "multi_hot"; checked
    against `index` when labels were declared) or a float32 array."""
    value = (value or "").strip()
    if label_format in _NAMED:
        parts = ([v.strip() for v in value.split(separator) if v.strip()]
                 if label_format == "multi_hot" else [value])
        if label_format == "index" and not value:
            return None, "empty label"
        if index is not None:
            unknown = [p for p in parts if p not in index]
            if unknown:
                return None, (f"label {unknown[0]!r} is not one of the declared labels "
                              f"{list(index)}")
        return parts, None
    if label_format == "boolean":
        v = value.lower()
        if v in _TRUE or v in _FALSE:
            return np.array([1.0 if v in _TRUE else 0.0], np.float32), None
        return None, f"binary label {value!r} is not one of {_TRUE + _FALSE}"
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        return None, f"regression label {value!r} is not a finite number"
    return np.array([number], np.float32), None


def image_folder_dataset(csv_path, image_dir=None, *, task="classification",
                         image_column="image", text_column="text", label_column="label",
                         labels=None, label_separator="|", image_size=64, tokenizer=None,
                         sequence_length=16, max_tokens=None, batch_size=32, shuffle=False,
                         seed=0, cache=False, drop_remainder=False, on_error="raise",
                         with_info=False):
    """Images in a folder with a CSV of texts and labels.

    The CSV has a header row; each row names an image file (relative to
    `image_dir`, default the CSV's folder), its text and its label.

    Args:
        csv_path: the CSV file (UTF-8).
        image_dir: folder the image paths are relative to.
        task: `"classification"` (label: one name), `"binary"` (0/1, true/false,
            yes/no), `"multilabel"` (names joined by `label_separator`, may be
            empty), `"regression"` (a number) or `"captioning"` (the text is
            the caption; no label column).
        image_column, text_column, label_column: column names.
        labels: the declared label names (classification, multilabel); a row
            with another label is an error. Default: the sorted names found.
        label_separator: separator of multilabel names.
        image_size: images are resized to this (int or (height, width)).
        tokenizer: a `Tokenizer` (or the path of a saved one); default: one
            built from these texts (`max_tokens`, `sequence_length`).
        sequence_length: token ids per text (captioning: per input sequence).
        max_tokens: vocabulary size limit for a new tokenizer.
        batch_size: examples per batch; `None` for an unbatched dataset.
        shuffle, seed: shuffle rows every epoch.
        cache: `True` (memory) or a file path caches decoded examples.
        drop_remainder: static batch shapes.
        on_error: `"raise"` (default) or `"skip"` bad rows (with a warning).
        with_info: also return a `TaskInfo` (tokenizer, label names, sizes).

    Returns:
        A `tf.data.Dataset` of `(inputs, labels)`, or `(dataset, info)`.
    """
    label_format = _check_task(task).label_format
    reads_caption = label_format == "next_tokens"  # the text is the label
    _check_options(image_size, sequence_length, max_tokens, batch_size, shuffle, seed, cache,
                   drop_remainder, with_info)
    size = _image_size(image_size)
    csv_path = _check_path("csv_path", csv_path)
    _check_path("image_dir", image_dir, optional=True)
    source = os.path.basename(csv_path)
    problems = _Problems(on_error, source)
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"CSV file {csv_path!r} does not exist.")
    image_dir = os.path.dirname(os.path.abspath(csv_path)) if image_dir is None else \
        os.fspath(image_dir)
    needed = [image_column, text_column] + ([] if reads_caption else [label_column])
    rows, wheres = [], []
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{source}: the header has no column {missing[0]!r}. "
                                f"Columns found: {reader.fieldnames}. Pass image_column=, "
                                "text_column= or label_column= to name yours.")
            for n, row in enumerate(reader, start=1):
                rows.append(row)
                wheres.append(f"row {n} (line {reader.line_num})")
    except UnicodeDecodeError as e:
        raise DataError(f"{source} is not UTF-8 text: {e}") from None
    except csv.Error as e:
        raise DataError(f"{source} is not a valid CSV file: {e}") from None

    index = None
    if labels is not None and label_format in _NAMED:
        index = {n: i for i, n in enumerate(_declared_labels(labels))}
    paths, texts, parsed = [], [], []
    image_cache = {}
    for row, where in zip(rows, wheres):
        name = (row.get(image_column) or "").strip()
        text = row.get(text_column) or ""
        path = os.path.join(image_dir, name)
        problem = "empty image path" if not name else _check_image(path, image_cache,
                                                                    max(size))
        if problem is None and not text.strip():
            problem = f"empty {'caption' if reads_caption else 'text'}"
        label = None
        if problem is None and not reads_caption:
            label, problem = _parse_label(label_format, row.get(label_column), index,
                                          label_separator)
        if problem is not None:
            problems.report(where, problem)
            continue
        paths.append(path)
        texts.append(text)
        parsed.append(label)
    problems.finish(len(paths), len(rows))

    names, label_rows = None, None
    if label_format in _NAMED:
        if index is None:  # the sorted names found
            names = sorted({p for parts in parsed for p in parts})
            index = {n: i for i, n in enumerate(names)}
        names = list(index)
        if label_format == "index":
            label_rows = np.array([index[parts[0]] for parts in parsed], np.int32)
        else:
            label_rows = np.zeros((len(parsed), len(names)), np.float32)
            for r, parts in enumerate(parsed):
                label_rows[r, [index[p] for p in parts]] = 1.0
    elif not reads_caption:
        label_rows = np.stack(parsed)
    tok = _tokenizer(tokenizer, texts, sequence_length, max_tokens)
    ds = _make_dataset(paths, texts, label_rows, task, size, tok, sequence_length,
                       batch_size, shuffle, seed, cache, drop_remainder)
    if with_info:
        return ds, _info(task, tok, sequence_length, size, names,
                         "caption" if reads_caption else text_column)
    return ds


def _captions_dataset(records, total, source, problems, image_size, tokenizer,
                      sequence_length, max_tokens, batch_size, shuffle, seed, cache,
                      drop_remainder, with_info):
    """records: (image path, caption, where) that passed the format checks, out
    of `total` rows."""
    size = _image_size(image_size)
    image_cache = {}
    paths, texts = [], []
    for path, caption, where in records:
        problem = _check_image(path, image_cache, max(size))
        if problem:
            problems.report(where, problem)
            continue
        if not isinstance(caption, str) or not caption.strip():
            problems.report(where, "empty caption")
            continue
        paths.append(path)
        texts.append(caption)
    problems.finish(len(paths), total)
    tok = _tokenizer(tokenizer, texts, sequence_length, max_tokens)
    ds = _make_dataset(paths, texts, None, "captioning", size, tok, sequence_length,
                       batch_size, shuffle, seed, cache, drop_remainder)
    if with_info:
        return ds, _info("captioning", tok, sequence_length, size, None, "caption")
    return ds


def coco_captions_dataset(annotations_file, image_dir, *, image_size=64, tokenizer=None,
                          sequence_length=32, max_tokens=None, batch_size=32, shuffle=False,
                          seed=0, cache=False, drop_remainder=False, on_error="raise",
                          with_info=False):
    """Image captions in the COCO captions JSON layout, for captioning.

    The file holds `{"images": [{"id", "file_name"}, ...], "annotations":
    [{"image_id", "caption"}, ...]}`; there is one example per annotation.

    Args:
        annotations_file: e.g. `captions_train2017.json`.
        image_dir: folder of the `file_name`s.
        image_size, tokenizer, sequence_length, max_tokens, batch_size,
            shuffle, seed, cache, drop_remainder, on_error, with_info: as in
            `image_folder_dataset`.

    Returns:
        A `tf.data.Dataset` of `({"image", "text": [start, w1..wn]},
        [w1..wn, end])`, or `(dataset, info)`.
    """
    _check_options(image_size, sequence_length, max_tokens, batch_size, shuffle, seed, cache,
                   drop_remainder, with_info)
    path = _check_path("annotations_file", annotations_file)
    _check_path("image_dir", image_dir)
    source = os.path.basename(path)
    problems = _Problems(on_error, source)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"COCO annotations file {path!r} does not exist.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{source} is not valid JSON: {e}") from None
    if (not isinstance(data, dict) or not isinstance(data.get("images"), list)
            or not isinstance(data.get("annotations"), list)):
        raise DataError(f"{source} is not in the COCO captions layout: it needs lists "
                        "\"images\" and \"annotations\".")
    files = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not image.get("file_name"):
            raise DataError(f"{source}, images[{i}]: needs \"id\" and \"file_name\". "
                            f"Received: {image!r}")
        files[image["id"]] = os.path.join(os.fspath(image_dir), image["file_name"])
    records = []
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]" + (f" (id {ann['id']})" if isinstance(ann, dict)
                                       and "id" in ann else "")
        if not isinstance(ann, dict) or "image_id" not in ann:
            problems.report(where, "needs \"image_id\" and \"caption\"")
            continue
        if ann["image_id"] not in files:
            problems.report(where, f"image_id {ann['image_id']!r} is not in \"images\"")
            continue
        records.append((files[ann["image_id"]], ann.get("caption"), where))
    return _captions_dataset(records, len(data["annotations"]), source, problems, image_size,
                             tokenizer, sequence_length, max_tokens, batch_size, shuffle, seed,
                             cache, drop_remainder, with_info)


def flickr8k_dataset(token_file, image_dir, *, image_size=64, tokenizer=None,
                     sequence_length=32, max_tokens=None, batch_size=32, shuffle=False,
                     seed=0, cache=False, drop_remainder=False, on_error="raise",
                     with_info=False):
    """Image captions in the Flickr8k layout (`Flickr8k.token.txt`).

    Each line is `<image file>#<n>\\t<caption>`; there is one example per line.

    Args:
        token_file: the captions file.
        image_dir: folder of the images (`Flicker8k_Dataset/`).
        image_size, tokenizer, sequence_length, max_tokens, batch_size,
            shuffle, seed, cache, drop_remainder, on_error, with_info: as in
            `image_folder_dataset`.

    Returns:
        A `tf.data.Dataset` of `({"image", "text": [start, w1..wn]},
        [w1..wn, end])`, or `(dataset, info)`.
    """
    _check_options(image_size, sequence_length, max_tokens, batch_size, shuffle, seed, cache,
                   drop_remainder, with_info)
    path = _check_path("token_file", token_file)
    _check_path("image_dir", image_dir)
    source = os.path.basename(path)
    problems = _Problems(on_error, source)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"Flickr8k token file {path!r} does not exist.") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{source} is not UTF-8 text: {e}") from None
    records = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines (e.g. at the end) hold no caption
        where = f"line {n}"
        key, tab, caption = line.partition("\t")
        name, hash_, number = key.rpartition("#")
        if not tab or not hash_ or not name or not number.strip().isdigit():
            problems.report(where, "expected '<image file>#<n>\\t<caption>'. Received: "
                                   f"{line[:80]!r}")
            continue
        records.append((os.path.join(os.fspath(image_dir), name), caption, where))
    total = sum(1 for line in lines if line.strip())
    return _captions_dataset(records, total, source, problems, image_size, tokenizer,
                             sequence_length, max_tokens, batch_size, shuffle, seed, cache,
                             drop_remainder, with_info)
