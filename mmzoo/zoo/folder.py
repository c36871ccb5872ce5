"""An entry's folder on disk: its file names, `metadata.json`, hashes and checks.

Plain Python, no TensorFlow: listing the zoo, reading an entry's metadata or
card and verifying its files (`mmzoo list`, `mmzoo info`, `mmzoo publish`)
start in a fraction of a second. Loading the model is `mmzoo.zoo.entry`'s.
"""

import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path

from mmzoo._folders import pid_alive

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
FORMAT = "mmzoo-entry"
FORMAT_VERSION = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHUNK = 1 << 20


class EntryVerificationError(ValueError):
    """An entry's files do not match its `metadata.json`.

    Attributes:
        file: the offending file, relative to the entry folder.
    """

    def __init__(self, message, file=None):
        super().__init__(message)
        self.file = file


def sha256_file(path):
    """The hex sha256 of a file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_name(name):
    """Returns `name` if it can name an entry (letters, digits, `.`, `_`, `-`)."""
    if not (isinstance(name, str) and NAME_PATTERN.match(name)):
        raise ValueError("An entry name must start with a letter or digit and use only "
                         f"letters, digits, '.', '_' and '-'. Received: name={name!r}")
    return name


def format_size(num_bytes):
    """`1234567` -> `'1.2 MB'`."""
    size = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def staging_folder(parent, name, create=True):
    """A fresh `.<name>.partial-<pid>-<hex>` folder in `parent`, for an entry being written.

    Staging folders that a killed writer left behind (their process id no
    longer runs on this machine) are removed first, so partial output never
    accumulates; listing and loading skip dot-folders, so it is never taken for
    an entry.

    Args:
        parent: the folder the entry goes into (created if needed).
        name: the entry's name.
        create: create the staging folder (`False`: only return a free path).

    Returns:
        The staging folder's `Path`.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"\.{re.escape(name)}\.partial-(\d+)-[0-9a-f]+")
    for child in parent.iterdir():
        match = pattern.fullmatch(child.name)
        if match and child.is_dir() and not child.is_symlink() \
                and not pid_alive(int(match.group(1))):
            shutil.rmtree(child, ignore_errors=True)
    staging = parent / f".{name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if create:
        staging.mkdir()
    return staging


def check_destination(path, overwrite):
    """Refuses to write an entry over something that is not an entry (or without `overwrite`)."""
    if not path.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists. Pass overwrite=True to replace "
                              f"it. Received: path={str(path)!r}, overwrite=False")
    if path.is_dir() and (not any(path.iterdir()) or (path / METADATA_FILE).is_file()):
        return
    # Never delete something that is not an entry (a user's folder or file).
    raise FileExistsError(f"{str(path)!r} exists and is not a zoo entry (no {METADATA_FILE}), "
                          "so overwrite=True will not replace it. Received: "
                          f"path={str(path)!r}")


def replace_folder(staging, path):
    """Moves the finished `staging` folder to `path`, replacing an old one atomically."""
    if not path.exists():
        os.rename(staging, path)
        return
    old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(path, old)
    try:
        os.rename(staging, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _relative_files(folder):
    """Every file under `folder` as a posix path relative to it (symlinks refused)."""
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            if (Path(root) / d).is_symlink():
                rel = (Path(root) / d).relative_to(folder).as_posix()
                raise EntryVerificationError(
                    f"Entry {folder.name!r} contains a symbolic link, {rel!r}; entries hold "
                    "plain files only.", rel)
        for f in files:
            full = Path(root) / f
            rel = full.relative_to(folder).as_posix()
            if full.is_symlink() or not full.is_file():
                raise EntryVerificationError(
                    f"Entry {folder.name!r} contains {rel!r}, which is a link or not a "
                    "regular file; entries hold plain files only.", rel)
            found.append(rel)
    return sorted(found)


def _file_table(folder):
    folder = Path(folder)
    return {rel: {"size": (folder / rel).stat().st_size, "sha256": sha256_file(folder / rel)}
            for rel in _relative_files(folder) if rel != METADATA_FILE}


def read_metadata(folder):
    """`metadata.json` of the entry in `folder`, parsed and checked (files not hashed)."""
    folder = Path(folder)
    path = folder / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} is not a zoo entry: it has no {METADATA_FILE}.")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EntryVerificationError(f"Entry {folder.name!r}: {METADATA_FILE!r} is not valid "
                                     f"JSON ({e}).", METADATA_FILE) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EntryVerificationError(f"Entry {folder.name!r}: {METADATA_FILE!r} is not an mmzoo "
                                     f"entry's metadata (no \"format\": \"{FORMAT}\").",
                                     METADATA_FILE)
    if data.get("format_version") != FORMAT_VERSION:
        raise EntryVerificationError(
            f"Entry {folder.name!r}: {METADATA_FILE!r} has format version "
            f"{data.get('format_version')!r}; this "
            f"mmzoo reads version {FORMAT_VERSION}. Upgrade mmzoo.", METADATA_FILE)
    files = data.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise EntryVerificationError(f"Entry {folder.name!r}: {METADATA_FILE!r} lists no files "
                                     f"(or not {MODEL_FILE}).", METADATA_FILE)
    for rel, info in files.items():
        parts = rel.split("/")
        if (not rel or rel.startswith("/") or "\\" in rel or ".." in parts or "" in parts
                or not isinstance(info, dict)
                or not isinstance(info.get("size"), int)
                or not re.fullmatch(r"[0-9a-f]{64}", str(info.get("sha256")))):
            raise EntryVerificationError(f"Entry {folder.name!r}: {METADATA_FILE!r} has a bad "
                                         f"file record for {rel!r}.", METADATA_FILE)
    return data


def read_card(folder, name=None):
    """The model card (`README.md`) text of the entry in `folder`; `""` when it has none."""
    card = Path(folder) / CARD_FILE
    try:
        return card.read_text(encoding="utf-8") if card.is_file() else ""
    except UnicodeDecodeError:
        raise EntryVerificationError(f"Entry {name or Path(folder).name!r}: {CARD_FILE!r} is "
                                     "not UTF-8 text. Refusing to load it.", CARD_FILE) from None


def verify_entry(folder):
    """Checks every file of an entry against its `metadata.json`.

    Args:
        folder: the entry folder.

    Returns:
        The metadata (a dict).

    Raises:
        FileNotFoundError: no `metadata.json`.
        EntryVerificationError: (a `ValueError`) a missing, extra, truncated
            or changed file, named in the message and in `error.file`.
    """
    folder = Path(folder)
    data = read_metadata(folder)
    name = folder.name
    expected = data["files"]
    present = [f for f in _relative_files(folder) if f != METADATA_FILE]
    for rel in sorted(expected):
        if rel not in present:
            raise EntryVerificationError(
                f"Entry {name!r} is incomplete: {rel!r} (listed in {METADATA_FILE}) is "
                "missing. Download or copy the entry again.", rel)
    for rel in present:
        if rel not in expected:
            raise EntryVerificationError(
                f"Entry {name!r} has a file that {METADATA_FILE} does not list: {rel!r}. "
                "Entries are verified file by file; remove it (or save the entry again).",
                rel)
    for rel in sorted(expected):
        size = (folder / rel).stat().st_size
        if size != expected[rel]["size"]:
            raise EntryVerificationError(
                f"Entry {name!r}: {rel!r} is {size} bytes but {METADATA_FILE} says "
                f"{expected[rel]['size']}: the file is truncated or was replaced. Download "
                "or copy the entry again.", rel)
    for rel in sorted(expected):
        if sha256_file(folder / rel) != expected[rel]["sha256"]:
            raise EntryVerificationError(
                f"Entry {name!r}: {rel!r} does not match its sha256 in {METADATA_FILE}: the "
                "file was changed or corrupted after the entry was saved. Refusing to load "
                "it.", rel)
    return data
