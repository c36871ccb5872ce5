"""Publishing a trained entry into the shipped zoo (an explicit step).

`mmzoo train` writes its entry into the run folder (`<work-dir>/<name>`),
never into `saved_models/`: training a shipped recipe on a fresh clone works,
and cannot replace the shipped entry by accident. Publishing copies a
verified entry into `saved_models/<name>` (or another zoo folder).
"""

import json
import os
import shutil
from pathlib import Path

from mmzoo.shipped import shipped_dir
from mmzoo.zoo.folder import (
    METADATA_FILE,
    check_destination,
    check_name,
    read_metadata,
    replace_folder,
    staging_folder,
    verify_entry,
)


def _entry_of(source):
    source = Path(os.fspath(source)).expanduser()
    recipe = source / "recipe.json"
    if not (source / METADATA_FILE).is_file() and recipe.is_file():
        # A run folder of `mmzoo train`: its entry is <run>/<recipe name>.
        try:
            name = json.loads(recipe.read_text(encoding="utf-8"))["name"]
        except (ValueError, KeyError, TypeError):
            return source
        if isinstance(name, str) and (source / name / METADATA_FILE).is_file():
            return source / name
    return source


def publish_entry(source, to=None, *, name=None, overwrite=False):
    """Copies a zoo entry (verified) into a zoo folder.

    Args:
        source: an entry folder, or the run folder of `mmzoo train` (whose
            entry, `<run>/<name>`, is published).
        to: the zoo folder to publish into; default the shipped
            `saved_models/` (`mmzoo.shipped.shipped_dir`).
        name: the published entry's name; default the entry's own.
        overwrite: replace an existing entry of that name (never a folder
            that is not an entry).

    Returns:
        The published entry folder, a `pathlib.Path`.

    Raises:
        FileNotFoundError: `source` is not an entry.
        EntryVerificationError: a file of `source` does not match its metadata.
        FileExistsError: the destination exists (without `overwrite`), or is
            not an entry.
    """
    folder = _entry_of(source)
    meta = read_metadata(folder)
    verify_entry(folder)
    name = check_name(name or meta.get("name") or folder.name)
    if name != meta.get("name"):
        raise ValueError(f"An entry is published under its own name, {meta.get('name')!r}: "
                         f"its metadata and card say so. Received: name={name!r}")
    root = Path(os.fspath(to)).expanduser() if to is not None else shipped_dir("saved_models")
    destination = (root / name).absolute()
    check_destination(destination, overwrite)
    staging = staging_folder(root, name, create=False)
    try:
        shutil.copytree(folder, staging)
        verify_entry(staging)
        replace_folder(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination
