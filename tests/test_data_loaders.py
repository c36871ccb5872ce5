"""Loaders for users' own data, on tiny fixtures: good rows load, bad rows are
clear errors naming the file and row, or skipped with a warning."""

import json

import numpy as np
import pytest
from PIL import Image

from mmzoo import data
from mmzoo.data.loaders import DataError
from mmzoo.data.tokenizer import END, PAD, START

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def _image(path, colour, size=(20, 12), mode="RGB", fmt=None):
    img = Image.new("RGB", size, colour)
    img.convert(mode).save(path, format=fmt)
    return path.name


@pytest.fixture
def folder(tmp_path):
    """Five images in several formats and modes, and a valid CSV."""
    names = [
        _image(tmp_path / "a.png", COLOURS["red"]),
        _image(tmp_path / "b.jpg", COLOURS["green"], fmt="JPEG"),
        _image(tmp_path / "c.png", COLOURS["blue"], mode="L"),  # greyscale
        _image(tmp_path / "d.png", COLOURS["red"], mode="RGBA"),
        _image(tmp_path / "e.gif", COLOURS["green"], mode="P", fmt="GIF"),
    ]
    rows = ["image,text,label",
            f"{names[0]},A red square!,red",
            f'{names[1]},"a green one, bright",green',
            f"{names[2]},grey square,blue",
            f"{names[3]},red with alpha,red",
            f"{names[4]},a green gif,green"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path


def _collect(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append({k: v.numpy() for k, v in x.items()})
        ys.append(y.numpy())
    return {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}, np.concatenate(ys)


def test_image_folder_classification(folder):
    ds, info = data.image_folder_dataset(folder / "labels.csv", image_size=(8, 10),
                                         batch_size=2, sequence_length=6, with_info=True)
    x, y = _collect(ds)
    assert x["image"].shape == (5, 8, 10, 3) and x["image"].dtype == np.float32
    assert x["text"].shape == (5, 6) and x["text"].dtype == np.int32
    assert info.label_names == ("blue", "green", "red")  # sorted names found
    np.testing.assert_array_equal(y, [2, 1, 0, 2, 1])
    # Resized, colour kept (JPEG within its loss), greyscale and RGBA made RGB.
    np.testing.assert_allclose(x["image"][0].mean((0, 1)), COLOURS["red"], atol=1)
    np.testing.assert_allclose(x["image"][1].mean((0, 1)), COLOURS["green"], atol=6)
    assert np.ptp(x["image"][2].mean((0, 1))) < 1  # grey: channels equal
    assert info.tokenizer.decode(x["text"][1]) == "a green one bright"
    assert info.model_options()["num_classes"] == 3


def test_declared_labels_and_other_tasks(folder):
    ds, info = data.image_folder_dataset(folder / "labels.csv", labels=["red", "green", "blue"],
                                         batch_size=None, with_info=True)
    assert [int(y) for _, y in ds] == [0, 1, 2, 0, 1]
    assert ds.element_spec[0]["image"].shape == (64, 64, 3)
    csv = folder / "multi.csv"
    csv.write_text("image,text,label,score\na.png,x,red|green,1.5\nb.jpg,y,,-2\n"
                   "c.png,z,blue,1e3\n")
    _, y = _collect(data.image_folder_dataset(csv, task="multilabel", image_size=8))
    np.testing.assert_array_equal(y, [[0, 1, 1], [0, 0, 0], [1, 0, 0]])
    _, y = _collect(data.image_folder_dataset(csv, task="regression", label_column="score",
                                              image_size=8))
    np.testing.assert_array_equal(y, [[1.5], [-2.0], [1000.0]])
    csv.write_text("image,text,label\na.png,x,Yes\nb.jpg,y,0\nc.png,z,true\n")
    _, y = _collect(data.image_folder_dataset(csv, task="binary", image_size=8))
    np.testing.assert_array_equal(y, [[1.0], [0.0], [1.0]])
    csv.write_text("image,caption\na.png,a red square\n")
    x, y = _collect(data.image_folder_dataset(csv, task="captioning", text_column="caption",
                                              image_size=8, sequence_length=5))
    np.testing.assert_array_equal(x["text"][0], [START, 4, 5, 6, PAD])
    np.testing.assert_array_equal(y[0], [4, 5, 6, END, PAD])


@pytest.mark.parametrize("row, message", [
    ("missing.png,some text,red", r"labels\.csv, row 2 \(line 3\): image file '.*missing\.png' "
                                  r"does not exist"),
    ("broken.png,some text,red", r"labels\.csv, row 2 \(line 3\): image file '.*broken\.png' "
                                 r"cannot be decoded"),
    ("cut.jpg,some text,red", r"row 2 \(line 3\): image file '.*cut\.jpg' cannot be decoded"),
    ("a.png,   ,red", r"labels\.csv, row 2 \(line 3\): empty text"),
    ("a.png,some text,purple", r"row 2 \(line 3\): label 'purple' is not one of the declared "
                               r"labels \['red', 'green', 'blue'\]"),
    (",some text,red", r"row 2 \(line 3\): empty image path"),
    ("pic.tiff,some text,red", r"row 2 \(line 3\): image file '.*pic\.tiff' is TIFF"),
])
def test_bad_rows_are_errors_naming_file_and_row(folder, row, message):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    jpeg = (folder / "b.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])  # truncated
    _image(folder / "pic.tiff", COLOURS["red"], fmt="TIFF")
    csv = folder / "labels.csv"
    csv.write_text(f"image,text,label\na.png,fine,red\n{row}\nb.jpg,fine too,green\n")
    with pytest.raises(DataError, match=message):
        data.image_folder_dataset(csv, labels=["red", "green", "blue"])


def test_skip_leaves_bad_rows_out_and_says_so(folder):
    csv = folder / "labels.csv"
    csv.write_text("image,text,label\na.png,one,red\nmissing.png,two,red\nb.jpg,,green\n"
                   "c.png,four,blue\nd.png,five,pink\n")
    with pytest.warns(UserWarning, match=r"Skipped 3 of 5 rows of labels\.csv") as record:
        ds = data.image_folder_dataset(csv, labels=["red", "green", "blue"], on_error="skip")
    text = str(record[0].message)
    assert "row 2 (line 3)" in text and "row 3 (line 4): empty text" in text
    assert "label 'pink'" in text
    _, y = _collect(ds)
    np.testing.assert_array_equal(y, [0, 2])
    csv.write_text("image,text,label\nmissing.png,two,red\n")
    with pytest.raises(DataError, match="no valid rows"), pytest.warns(UserWarning):
        data.image_folder_dataset(csv, on_error="skip")


def test_file_level_errors(folder):
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        data.image_folder_dataset(folder / "nothere.csv")
    (folder / "cols.csv").write_text("file,text,label\na.png,x,red\n")
    with pytest.raises(DataError, match=r"no column 'image'.*\['file', 'text', 'label'\]"):
        data.image_folder_dataset(folder / "cols.csv")
    (folder / "bin.csv").write_text("image,text,label\na.png,x,maybe\n")
    with pytest.raises(DataError, match=r"row 1 \(line 2\): binary label 'maybe'"):
        data.image_folder_dataset(folder / "bin.csv", task="binary")
    (folder / "num.csv").write_text("image,text,label\na.png,x,nan\n")
    with pytest.raises(DataError, match=r"regression label 'nan' is not a finite number"):
        data.image_folder_dataset(folder / "num.csv", task="regression")
    with pytest.raises(ValueError, match="Received: on_error='ignore'"):
        data.image_folder_dataset(folder / "labels.csv", on_error="ignore")
    with pytest.raises(ValueError, match="Received: task='detection'"):
        data.image_folder_dataset(folder / "labels.csv", task="detection")


def _coco(folder, annotations):
    path = folder / "captions.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.jpg"},
                   {"id": 3, "file_name": "gone.png"}],
        "annotations": annotations}))
    return path


def test_coco_captions(folder):
    path = _coco(folder, [{"id": 10, "image_id": 1, "caption": "A red square."},
                          {"id": 11, "image_id": 1, "caption": "Something red"},
                          {"id": 12, "image_id": 2, "caption": "a green square"}])
    ds, info = data.coco_captions_dataset(path, folder, image_size=8, sequence_length=6,
                                          batch_size=2, with_info=True)
    x, y = _collect(ds)
    assert x["image"].shape == (3, 8, 8, 3) and y.shape == (3, 6)
    assert info.tokenizer.decode(y) == ["a red square", "something red", "a green square"]
    assert (x["text"][:, 0] == START).all()
    np.testing.assert_array_equal(x["text"][:, 1:], np.where(y[:, :-1] == END, PAD, y[:, :-1]))


@pytest.mark.parametrize("annotation, message", [
    ({"id": 5, "image_id": 3, "caption": "x"}, r"annotations\[1\] \(id 5\): image file "
                                               r"'.*gone\.png' does not exist"),
    ({"id": 6, "image_id": 9, "caption": "x"}, r"annotations\[1\] \(id 6\): image_id 9 is "
                                               r"not in \"images\""),
    ({"id": 7, "image_id": 2, "caption": " "}, r"annotations\[1\] \(id 7\): empty caption"),
])
def test_coco_errors(folder, annotation, message):
    path = _coco(folder, [{"id": 1, "image_id": 1, "caption": "fine"}, annotation])
    with pytest.raises(DataError, match=r"captions\.json, " + message):
        data.coco_captions_dataset(path, folder)
    with pytest.warns(UserWarning, match="Skipped 1 of 2 rows"):
        ds = data.coco_captions_dataset(path, folder, on_error="skip", batch_size=None)
    assert len(list(ds)) == 1
    (folder / "bad.json").write_text('{"images": []}')
    with pytest.raises(DataError, match="not in the COCO captions layout"):
        data.coco_captions_dataset(folder / "bad.json", folder)


def test_flickr8k(folder):
    token = folder / "Flickr8k.token.txt"
    token.write_text("a.png#0\tA red square .\na.png#1\tred thing\nb.jpg#0\tA green square\n\n",
                     encoding="utf-8")
    ds, info = data.flickr8k_dataset(token, folder, image_size=16, sequence_length=8,
                                     with_info=True)
    x, y = _collect(ds)
    assert x["image"].shape == (3, 16, 16, 3)
    assert info.tokenizer.decode(y) == ["a red square", "red thing", "a green square"]
    token.write_text("a.png#0\tfine\nb.jpg no tab here\nmissing.jpg#0\tcaption\n")
    with pytest.raises(DataError, match=r"Flickr8k\.token\.txt, line 2: expected "):
        data.flickr8k_dataset(token, folder)
    with pytest.warns(UserWarning, match=r"(?s)Skipped 2 of 3 rows.*line 3: image file "
                                         r"'.*missing\.jpg' does not exist"):
        ds = data.flickr8k_dataset(token, folder, on_error="skip", batch_size=None)
    assert len(list(ds)) == 1


@pytest.mark.parametrize("cache", [False, True])
def test_shuffle_reshuffles_every_epoch(tmp_path, cache):
    rows = ["image,text,label"]
    for i in range(12):
        _image(tmp_path / f"{i}.png", (i * 20, 0, 0))
        rows.append(f"{i}.png,image {i},x")
    (tmp_path / "many.csv").write_text("\n".join(rows) + "\n")
    ds = data.image_folder_dataset(tmp_path / "many.csv", image_size=4, batch_size=None,
                                   shuffle=True, cache=cache)
    epochs = [[round(float(x["image"][0, 0, 0])) for x, _ in ds] for _ in range(3)]
    assert all(sorted(e) == [i * 20 for i in range(12)] for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1
