"""Folders mmzoo writes into, and how it recognises them as its own.

A training run or the demo writes many files into one folder (`out_dir`).
Pointed at a folder of the user's (their home, a thesis folder) it would
overwrite whatever shares a name with its files. So such a folder is claimed
first: it must be new, empty, or one mmzoo wrote before, and a marker file
(`.mmzoo-output.json`) is left in it so that the next run knows it.

Folders that earlier versions of mmzoo wrote hold no marker; the caller says
what such a folder looks like (`legacy`), and it is claimed (and marked) too.
"""

import datetime
import json
import os
import pathlib

from mmzoo._version import __version__

MARKER = ".mmzoo-output.json"


def read_marker(folder):
    """The marker's contents (a dict), or `None` when `folder` has no valid marker."""
    path = pathlib.Path(folder) / MARKER
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == "mmzoo-output" else None


def claim_folder(folder, kind, *, legacy=None, argument="out_dir", what=None):
    """Makes sure `folder` is mmzoo's to write into, creating and marking it.

    Args:
        folder: the output folder.
        kind: what writes there (e.g. `"training run"`, `"demo"`); a folder
            marked for another kind is refused too.
        legacy: `legacy(path) -> bool`, whether an unmarked folder is one an
            earlier mmzoo wrote (it is then marked and used).
        argument: the caller's argument name, for the error message.
        what: who refuses, for the error message (default: `kind`).

    Returns:
        The folder as a `pathlib.Path`.

    Raises:
        FileExistsError: `folder` is a file, or a non-empty folder that is not
            mmzoo's output of this kind.
    """
    path = pathlib.Path(os.path.expanduser(os.fspath(folder)))
    what = what or f"a {kind}"
    if path.exists() and not path.is_dir():
        raise FileExistsError(
            f"{str(path)!r} is a file; {what} writes into a folder. Pass a new or empty "
            f"folder. Received: {argument}={str(folder)!r}")
    marker = read_marker(path) if path.is_dir() else None
    if marker is not None:
        if marker.get("kind") != kind:
            raise FileExistsError(
                f"{str(path)!r} is the output folder of an mmzoo {marker.get('kind')}, not of "
                f"{what}; it would overwrite those files. Pass a new or empty folder, or the "
                f"folder of an earlier {kind}. Received: {argument}={str(folder)!r}")
        return path
    if path.is_dir() and any(path.iterdir()) and not (legacy and legacy(path)):
        names = sorted(p.name for p in path.iterdir())
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise FileExistsError(
            f"{str(path)!r} holds files ({shown}) and is not the output folder of an mmzoo "
            f"{kind} (it has no {MARKER}), so {what} will not write into it: its files "
            f"could be overwritten. Pass a new or empty folder, or the folder of an earlier "
            f"{kind}. Received: {argument}={str(folder)!r}")
    path.mkdir(parents=True, exist_ok=True)
    _write_marker(path, kind)
    return path


def _write_marker(path, kind):
    record = {"format": "mmzoo-output", "kind": kind, "mmzoo": __version__,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds")}
    tmp = path / f"{MARKER}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path / MARKER)


def pid_alive(pid):
    """Whether a process with this id exists (on this machine)."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return False
    return True
