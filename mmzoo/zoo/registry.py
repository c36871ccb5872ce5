"""Finding and loading zoo entries: by name, from a folder, or from a URL.

Names are looked up, in order, in the shipped entries (the repository's
`saved_models/` folder beside the `mmzoo` package, or its copy inside an
installed wheel, see `mmzoo.shipped`) and in the cache, `$MMZOO_HOME/models`
(`MMZOO_HOME` defaults to `~/.cache/mmzoo`). A URL of an entry archive
(`.tar.gz`, `.tgz`, `.tar` or `.zip` of the entry folder) is downloaded with
`keras.utils.get_file` into `$MMZOO_HOME/downloads/` (checked against
`sha256=` when given), extracted once into `$MMZOO_HOME/models/<name>` and
then found by name too.
"""

import contextlib
import difflib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import urllib.parse
import uuid
import zipfile
from pathlib import Path

from mmzoo.shipped import shipped_dir
from mmzoo.zoo.folder import (
    METADATA_FILE,
    EntryVerificationError,
    check_name,
    sha256_file,
    verify_entry,
)

# The shipped entries: <repo>/saved_models in a checkout, the wheel's copy
# inside the package once installed.
SAVED_MODELS = shipped_dir("saved_models")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
URL_SCHEMES = ("http", "https", "ftp", "file")


def mmzoo_home():
    """The cache folder: `$MMZOO_HOME`, default `~/.cache/mmzoo`."""
    return Path(os.environ.get("MMZOO_HOME") or "~/.cache/mmzoo").expanduser()


def search_paths():
    """Folders searched for entries by name, first match wins."""
    return [SAVED_MODELS, mmzoo_home() / "models"]


def entry_folders():
    """`{name: folder}` of every entry in the search paths (first one wins)."""
    found = {}
    for root in search_paths():
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            # Dot-folders are unfinished saves and extractions.
            if (not child.name.startswith(".") and child.is_dir()
                    and (child / METADATA_FILE).is_file()):
                found.setdefault(child.name, child)
    return found


def list_models(pattern=None):
    """Names of the zoo entries available, optionally filtered.

    Args:
        pattern: a shell-style wildcard (`"vqa_*"`, `"*lstm*"`, `"?lip"`),
            matched against the whole name, case-sensitively; `None` lists all.

    Returns:
        The sorted entry names.

    Example:

    ```python
    mmzoo.list_models()          # ['captioning_cnn_32px', 'vqa_cnn_lstm_32px', ...]
    mmzoo.list_models("vqa_*")   # ['vqa_cnn_lstm_32px', ...]
    ```
    """
    if pattern is not None and not isinstance(pattern, str):
        raise TypeError("`pattern` must be a shell-style wildcard string or None. Received: "
                        f"pattern={pattern!r} of type {type(pattern).__name__}")
    names = sorted(entry_folders())
    if pattern is None:
        return names
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def entry_folder(name):
    """The folder of the entry called `name` (a `ValueError` naming close names if none)."""
    entries = entry_folders()
    if name in entries:
        return entries[name]
    where = ", ".join(str(p) for p in search_paths())
    if not entries:
        raise ValueError(f"Unknown zoo entry: no entries are installed (searched {where}). "
                         f"Pass a folder or a URL instead. Received: name={name!r}")
    close = difflib.get_close_matches(name, list(entries), n=3)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(map(repr, sorted(entries)[:20])) + (", ..." if len(entries) > 20 else "")
    raise ValueError(f"Unknown zoo entry: the name must be one of {shown} (see "
                     f"mmzoo.list_models()), a folder or a URL.{hint} Received: name={name!r}")


def load(name_or_path_or_url, *, sha256=None):
    """Loads a zoo entry, after checking every file against its metadata.

    Nothing in an entry runs code: the model loads with `safe_mode=True`, the
    preprocessor and metadata are JSON.

    Args:
        name_or_path_or_url: an entry name (see `list_models()`), an entry
            folder, an entry archive (`.tar.gz` / `.zip`), or the URL of one
            (`https://...`, `file://...`).
        sha256: the archive's expected sha256 (hex), for URLs and archives:
            a download that does not match is deleted and refused. Without
            it, a download is only as trustworthy as its source.

    Returns:
        A `ZooEntry`.

    Raises:
        ValueError: unknown name, a file that does not match the metadata
            (`EntryVerificationError`, naming the file), wrong hash.
        FileNotFoundError: a folder that is not an entry.

    Example:

    ```python
    entry = mmzoo.load("vqa_cnn_lstm_32px")
    entry = mmzoo.load("https://example.com/vqa_cnn_lstm_32px.tar.gz",
                       sha256="3b1f...")
    entry.predict(images="scene.png", texts="what colour is the circle?")
    ```
    """
    # Keras and TensorFlow load here, with the model: finding and listing
    # entries (everything else in this module) needs neither.
    from mmzoo.zoo.entry import ZooEntry

    where = locate(name_or_path_or_url, sha256=sha256)
    if isinstance(where, Path):
        return ZooEntry(where)
    return ZooEntry(*_fetch(where, _check_sha256(sha256)))


def locate(name_or_path_or_url, *, sha256=None):
    """Where `load` finds an entry, with the same checks, but nothing loaded or downloaded.

    Args:
        name_or_path_or_url, sha256: as for `load`.

    Returns:
        The entry folder (a `pathlib.Path`) for an entry name or folder, not
        yet verified; or a URL (a `str`) for a URL or an archive file (as a
        `file://` URL), which `load` downloads and extracts first.

    Raises:
        As `load`, for a bad argument, an unknown name or a missing file.
    """
    source = name_or_path_or_url
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise TypeError("`name_or_path_or_url` must be an entry name, a folder or a URL "
                        f"(a non-empty string). Received: {source!r}")
    sha256 = _check_sha256(sha256)
    if source.startswith("~"):
        source = os.path.expanduser(source)
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in URL_SCHEMES:
        return source
    if "://" in source:
        raise ValueError(f"Only {', '.join(URL_SCHEMES)} URLs can be loaded. Received: "
                         f"{source!r}")
    if os.path.isdir(source):
        if sha256 is not None:
            raise ValueError("`sha256` checks a downloaded archive; a folder is checked "
                             "against its metadata.json. Received: sha256 with a folder")
        return Path(source)
    if os.path.isfile(source):
        if not source.lower().endswith(ARCHIVE_SUFFIXES):
            raise ValueError(f"A file to load must be an entry archive "
                             f"({', '.join(ARCHIVE_SUFFIXES)}). Received: {source!r}")
        return Path(source).absolute().as_uri()
    if os.sep in source or source.endswith(ARCHIVE_SUFFIXES):
        raise FileNotFoundError(f"No such entry folder or archive: {source!r}")
    if sha256 is not None:
        raise ValueError("`sha256` checks a downloaded archive, not an installed entry. "
                         f"Received: sha256 with name={source!r}")
    return entry_folder(source)


def _check_sha256(sha256):
    if sha256 is None:
        return None
    if not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha256)):
        raise ValueError("`sha256` must be 64 hexadecimal characters (the archive's SHA-256). "
                         f"Received: sha256={sha256!r}")
    return sha256.lower()


def _archive_name(url):
    filename = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    for suffix in ARCHIVE_SUFFIXES:
        if filename.lower().endswith(suffix):
            return filename, check_name(filename[: -len(suffix)])
    raise ValueError(f"A zoo entry URL must point to an archive of the entry folder "
                     f"({', '.join(ARCHIVE_SUFFIXES)}). Received: {url!r}")


def _fetch(url, sha256):
    """Downloads (or finds in the cache) and extracts an entry archive.

    Returns:
        `(folder, metadata)`, the entry verified.
    """
    import keras

    filename, name = _archive_name(url)
    home = mmzoo_home()
    # One download folder per URL: two sites' "vqa.tar.gz" never collide.
    subdir = os.path.join("downloads", hashlib.sha1(url.encode()).hexdigest()[:16])
    # get_file falls back to /tmp/.keras when cache_dir does not exist yet.
    (home / subdir).mkdir(parents=True, exist_ok=True)
    try:
        # Progress to stderr: stdout may carry a command's JSON output.
        with contextlib.redirect_stdout(sys.stderr):
            archive = keras.utils.get_file(fname=filename, origin=url, file_hash=sha256,
                                           hash_algorithm="sha256", cache_dir=str(home),
                                           cache_subdir=subdir)
    except ValueError as e:
        if sha256 is None:
            raise ValueError(f"Could not download the zoo entry from {url}: {e}") from None
        stale = home / subdir / filename
        if stale.exists():
            stale.unlink()  # never leave a file that failed its check in the cache
        raise ValueError(f"The archive downloaded from {url} does not have the expected "
                         f"sha256, so it was deleted and not loaded (a changed or tampered "
                         f"file, or the wrong hash). Received: sha256={sha256!r}") from None
    except Exception as e:
        raise ValueError(f"Could not download the zoo entry from {url}: {e}") from None
    digest = sha256 or sha256_file(archive)
    models = home / "models"
    target = models / name
    source_record = models / f".{name}.source.json"
    if target.is_dir() and _recorded_digest(source_record) == digest:
        try:
            return target, verify_entry(target)  # extracted before from this very archive
        except (EntryVerificationError, FileNotFoundError):
            pass  # the cached copy was damaged: extract the (hash-checked) archive again
    models.mkdir(parents=True, exist_ok=True)
    staging = models / f".{name}.extract-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        root = _extract(Path(archive), staging)
        metadata = verify_entry(root)
        if target.exists():
            old = models / f".{name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(root, target)
        source_record.write_text(json.dumps({"url": url, "sha256": digest}) + "\n",
                                 encoding="utf-8")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, metadata


def _recorded_digest(path):
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _safe_member(name):
    parts = Path(name).parts
    return name and not os.path.isabs(name) and ".." not in parts and "\\" not in name


def _extract(archive, into):
    """Extracts `archive` into `into`; returns the entry folder inside it."""
    lower = archive.name.lower()
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    if not _safe_member(member):
                        raise EntryVerificationError(
                            f"The archive {archive.name!r} holds an unsafe path, {member!r}.",
                            member)
                z.extractall(into)
        else:
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    if not (member.isfile() or member.isdir()) or not _safe_member(member.name):
                        raise EntryVerificationError(
                            f"The archive {archive.name!r} holds {member.name!r}, which is "
                            "not a plain file or folder inside the archive.", member.name)
                t.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{archive.name!r} is not a readable archive: {e}") from None
    if (into / METADATA_FILE).is_file():
        return into
    children = [c for c in into.iterdir()]
    if len(children) == 1 and (children[0] / METADATA_FILE).is_file():
        return children[0]
    raise ValueError(f"The archive {archive.name!r} does not hold a zoo entry: expected "
                     f"{METADATA_FILE} at its top or in its one top folder.")
