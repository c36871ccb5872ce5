"""Safe writes and the conversion subprocess.

Every export is written into a staging folder beside the destination and moved
into place only after every check passed, so a crash, a failed check or Ctrl-C
leaves nothing partial at the destination path. Conversion and the runs of the
exported model happen in a child process (`_worker.py`).

What is left after a kill (`kill -9`, a power cut) is recognisably partial:
a hidden staging folder `.<name>.partial-<pid>-<random>` beside the
destination, holding `PARTIAL-mmzoo-export.json` (which process wrote it,
when, for which destination). The next export into the same folder removes
staging folders whose process is gone; one killed while moving files into
place is first rolled back from its journal (`commit.json`), so an earlier
export it was replacing is put back, never lost. The child process dies with
its parent, and its log is an already-unlinked file, so no temporary folder
outlives it.

`overwrite=True` replaces only what mmzoo recognises as its own export (see
`foreign_reason`); anything else at the destination is refused, untouched.
"""

import atexit
import datetime
import glob
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from mmzoo._folders import pid_alive
from mmzoo._version import __version__
from mmzoo.export.report import ExportError

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")

PARTIAL_MARKER = "PARTIAL-mmzoo-export.json"
JOURNAL = "commit.json"
# `.<destination name>.partial-<pid>-<random>`: the staging folders of this version.
_STAGING = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)-[0-9a-f]{8}$")
# Earlier versions: `tempfile.mkdtemp(prefix=".<name>.partial-")`, no marker.
_LEGACY_STAGING = re.compile(r"^\..+\.partial-[a-z0-9_]{8}$")
LEGACY_MIN_AGE_S = 3600  # an unmarked staging folder this old is nobody's work in progress

# What an mmzoo export folder may hold (anything else is the user's).
SAVED_MODEL_NAMES = {"saved_model.pb", "saved_model.pbtxt", "fingerprint.pb", "variables",
                     "assets", "assets.extra", "keras_metadata.pb"}
EXTRA_NAMES = {"preprocessing.json", "vocabulary.txt", "mmzoo-export.json"}
CAPTIONER_NAMES = {"captioner.json", "vocabulary.txt", "encoder.tflite",
                   "decoder_step.tflite", "greedy.tflite"}
EXPORT_MARKER = "mmzoo-export.json"  # in assets.extra/ of SavedModels without client files


def write_export_marker(saved_model_dir, kind):
    """Marks a SavedModel folder as mmzoo's (`assets.extra/mmzoo-export.json`)."""
    extra = os.path.join(saved_model_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, EXPORT_MARKER), "w", encoding="utf-8") as f:
        json.dump({"format": "mmzoo-export", "kind": kind, "mmzoo": __version__}, f, indent=1)
        f.write("\n")


def _json_dict(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_client_config(path):
    data = _json_dict(path)
    return data is not None and {"inputs", "outputs", "signature"} <= set(data)


def _is_tflite(path):
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] == b"TFL3"
    except OSError:
        return False


def foreign_reason(path):
    """Why `path` is not an mmzoo export that `overwrite=True` may replace (`None`: it is).

    mmzoo's own: an empty folder; a SavedModel folder written by mmzoo
    (`assets.extra/preprocessing.json` or `assets.extra/mmzoo-export.json`)
    holding nothing else; a captioner's TFLite folder (`captioner.json`);
    a TFLite flatbuffer at a `.tflite` path, its `.preprocessing.json` and,
    beside either of them, its `.vocab.txt`.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.lexists(path):
        return None
    if os.path.islink(path):
        return "it is a symbolic link"
    if os.path.isdir(path):
        names = set(os.listdir(path))
        if not names:
            return None
        extra = os.path.join(path, "assets.extra")
        if "saved_model.pb" in names and (
                _is_client_config(os.path.join(extra, "preprocessing.json"))
                or _json_dict(os.path.join(extra, EXPORT_MARKER)) is not None):
            allowed, inner = SAVED_MODEL_NAMES, set(os.listdir(extra)) - EXTRA_NAMES
            if inner:
                return f"it holds {'assets.extra/' + sorted(inner)[0]!r}, which no mmzoo export writes"
        elif (_json_dict(os.path.join(path, "captioner.json")) or {}).get(
                "format") == "mmzoo-tflite-captioner":
            allowed = CAPTIONER_NAMES
        else:
            return (f"a folder holding {sorted(names)[0]!r}, without the files of an mmzoo "
                    "export")
        other = sorted(names - allowed)
        if other:
            return f"it holds {other[0]!r}, which no mmzoo export writes"
        return None
    if path.endswith(".tflite"):
        return None if _is_tflite(path) else "not a TFLite file"
    if path.endswith(".preprocessing.json"):
        return None if _is_client_config(path) else "not an mmzoo preprocessing file"
    if path.endswith(".vocab.txt"):
        stem = path[: -len(".vocab.txt")]
        if _is_tflite(stem + ".tflite") or _is_client_config(stem + ".preprocessing.json"):
            return None
        return "a vocabulary file without the mmzoo export it belongs to"
    return "a file, not an mmzoo export folder"


class Staging:
    """A staging folder beside the destination, and the move into place.

    Creating one also removes the leftovers of killed exports beside the
    destination (see the module docstring).

    Args:
        destinations: the final paths this export writes (the model first).
        overwrite: whether existing destinations may be replaced (only
            those mmzoo recognises as its own exports).

    Raises:
        FileExistsError: a destination exists and `overwrite` is False, or it
            is not an mmzoo export.
    """

    def __init__(self, destinations, overwrite):
        self.destinations = [os.path.abspath(os.fspath(p)) for p in destinations]
        existing = [p for p in self.destinations if os.path.lexists(p)]
        if existing and not overwrite:
            raise FileExistsError(
                f"{existing[0]} already exists; pass overwrite=True to replace it "
                f"(nothing was written). Received: overwrite={overwrite!r}"
            )
        for p in existing:
            why = foreign_reason(p)
            if why:
                raise FileExistsError(
                    f"{p} exists and is not an mmzoo export ({why}), so overwrite=True "
                    "will not replace it: overwrite replaces only mmzoo's own exports. "
                    "Choose another path, or move it away yourself (nothing was "
                    f"written). Received: path={p!r}, overwrite=True"
                )
        parent = os.path.dirname(self.destinations[0])
        os.makedirs(parent, exist_ok=True)
        sweep_partials(parent)
        name = f".{os.path.basename(self.destinations[0])}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dir = os.path.join(parent, name)
        os.mkdir(self.dir)
        marker = {
            "format": "mmzoo-partial-export",
            "note": ("An unfinished mmzoo export: nothing here is a finished model. The "
                     "next mmzoo export into this folder removes it once its process "
                     "is gone."),
            "pid": os.getpid(), "host": socket.gethostname(),
            "destinations": self.destinations,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
        }
        with open(os.path.join(self.dir, PARTIAL_MARKER), "w", encoding="utf-8") as f:
            json.dump(marker, f, indent=1)

    def path(self, name):
        """A path inside the staging folder."""
        return os.path.join(self.dir, name)

    def commit(self, moves):
        """Moves staged files into place, all or none.

        The plan is written to a journal first, so that a kill halfway is
        rolled back by the next export (`sweep_partials`), putting back what
        was being replaced.

        Args:
            moves: `[(staged_path, destination)]`; the model should come last,
                so that readers never see a model without its side files.
        """
        finals = [final for _, final in moves]
        # Destinations this export does not write again (e.g. the vocabulary of
        # a previous export with a tokenizer) would be stale: set them aside too.
        replaced = [f for f in dict.fromkeys(self.destinations + finals) if os.path.lexists(f)]
        backups = [(self.path(f"old-{i}"), final) for i, final in enumerate(replaced)]
        _write_journal(self.dir, backups, moves, "moving")
        done_backups, placed = [], []
        try:
            for backup, final in backups:
                os.rename(final, backup)
                done_backups.append((backup, final))
            for staged, final in moves:
                os.rename(staged, final)
                placed.append((staged, final))
        except BaseException:
            for staged, final in reversed(placed):
                os.rename(final, staged)
            for backup, final in reversed(done_backups):
                os.rename(backup, final)
            _write_journal(self.dir, backups, moves, "rolled back")
            raise
        _write_journal(self.dir, backups, moves, "done")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def _write_journal(folder, backups, moves, state):
    tmp = os.path.join(folder, JOURNAL + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"state": state, "backups": backups, "moves": [list(m) for m in moves]}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(folder, JOURNAL))


def _roll_back(folder):
    """Undoes a commit a kill interrupted: new files back out, replaced ones back in."""
    journal = _json_dict(os.path.join(folder, JOURNAL))
    if journal is None or journal.get("state") != "moving":
        return
    for staged, final in reversed(journal["moves"]):
        # Moved into place (its staged copy is gone): take it out again.
        if not os.path.lexists(staged) and os.path.lexists(final):
            os.rename(final, staged)
    for backup, final in reversed(journal["backups"]):
        if os.path.lexists(backup) and not os.path.lexists(final):
            os.rename(backup, final)


def sweep_partials(parent):
    """Removes the staging folders of killed exports in `parent`; returns their paths.

    A staging folder is removed when its marker names a process on this
    machine that no longer runs; an interrupted commit is rolled back first.
    Unmarked ones of earlier versions are removed when they hold an export
    job file and are over an hour old.
    """
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    host = socket.gethostname()
    for name in names:
        folder = os.path.join(parent, name)
        if not os.path.isdir(folder) or os.path.islink(folder):
            continue
        if _STAGING.match(name):
            marker = _json_dict(os.path.join(folder, PARTIAL_MARKER))
            if (marker is None or marker.get("format") != "mmzoo-partial-export"
                    or marker.get("host") != host or pid_alive(marker.get("pid"))):
                continue
            try:
                _roll_back(folder)
            except OSError:
                continue  # leave it for a person rather than lose a file
        elif _LEGACY_STAGING.match(name):
            try:
                inside = os.listdir(folder)
                age = time.time() - os.path.getmtime(folder)
            except OSError:
                continue
            if (age < LEGACY_MIN_AGE_S or not any(n.endswith("-spec.json") for n in inside)
                    or any(n.startswith("old-") for n in inside)):
                continue
        else:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _open_files():
    """Paths open in any process of this user (Linux `/proc`), or `None` elsewhere."""
    if not os.path.isdir("/proc/self/fd"):
        return None
    found = set()
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        try:
            for fd in os.listdir(fd_dir):
                try:
                    found.add(os.readlink(os.path.join(fd_dir, fd)))
                except OSError:
                    pass
        except OSError:
            pass
    return found


def sweep_worker_dirs():
    """Removes the log folders (`mmzoo-export-worker-*`) that earlier versions left behind.

    Only folders of this user holding nothing but a log no process has open.
    """
    removed = []
    candidates = [d for d in glob.glob(os.path.join(tempfile.gettempdir(),
                                                    "mmzoo-export-worker-*"))
                  if os.path.isdir(d) and not os.path.islink(d)]
    if not candidates:
        return removed
    open_now = _open_files()
    if open_now is None:
        return removed
    for folder in candidates:
        try:
            if os.stat(folder).st_uid != os.getuid():
                continue
            inside = os.listdir(folder)
        except OSError:
            continue
        if set(inside) - {"log.txt"}:
            continue
        if os.path.join(folder, "log.txt") in open_now:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


class _Worker:
    """The conversion child process, started on first use and kept for the session.

    Importing TensorFlow takes seconds; one child serves every export of a
    session. A crashed child is replaced by a fresh one at the next export.
    The child dies with this process (`_worker.py` asks the kernel for a
    signal when its parent dies, and watches its parent's id), and its log
    is a file that is unlinked as soon as both ends have it open.
    """

    def __init__(self):
        sweep_worker_dirs()
        fd, log_path = tempfile.mkstemp(prefix="mmzoo-export-worker-", suffix=".log")
        os.close(fd)
        child_log = open(log_path, "ab")  # O_APPEND: the parent's reads never move its writes
        self._log = open(log_path, "rb")
        self._log_path = None
        try:
            os.unlink(log_path)  # nothing is left behind, however this process ends
        except OSError:  # Windows cannot unlink an open file: remove it at close
            self._log_path = log_path
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # On a GPU machine TensorFlow would otherwise reserve all GPU memory in
        # the child too, leaving none to the training process that exports.
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
        try:
            self.process = subprocess.Popen(
                [sys.executable, WORKER, "--serve", "--parent", str(os.getpid())]
                + (["--pdeathsig"] if threading.current_thread() is threading.main_thread()
                   else []),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=child_log, env=env,
                text=True,
            )
        finally:
            child_log.close()

    def _log_size(self):
        return os.fstat(self._log.fileno()).st_size

    def run(self, spec_path, timeout):
        """Runs one job; returns None, or the exit status if the child died."""
        start = self._log_size()
        self.process.stdin.write(spec_path + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.close(kill=True)
            raise TimeoutError
        line = self.process.stdout.readline()
        self.log_start = start
        if line.strip() == "done":
            return None
        return self.process.wait()

    def log_tail(self, lines=15):
        self._log.seek(getattr(self, "log_start", 0))
        text = self._log.read().decode("utf-8", errors="replace")
        return "".join(text.splitlines(keepends=True)[-lines:]).rstrip()

    def alive(self):
        return self.process.poll() is None

    def close(self, kill=False):
        if self.alive():
            if kill:
                self.process.kill()
            else:
                self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()
        if self._log_path:
            try:
                os.remove(self._log_path)
            except OSError:
                pass


_worker = None


def _get_worker():
    global _worker
    if _worker is None or not _worker.alive():
        if _worker is not None:
            _worker.close()
        _worker = _Worker()
    return _worker


@atexit.register
def shutdown_worker():
    """Stops the conversion child process (it is restarted when needed)."""
    global _worker
    if _worker is not None:
        _worker.close()
        _worker = None


def run_worker(spec, staging, what, timeout=None):
    """Runs a `_worker.py` job in the child process; returns its result dict.

    Args:
        spec: the job (see `_worker.py`); `result` is filled in here.
        staging: the `Staging` whose folder holds the job's files.
        what: what the job does, for error messages (e.g. "TFLite int8
            conversion").
        timeout: seconds before the child is killed, or `None`.

    Raises:
        ExportError: the child crashed, was killed or reported an exception.
    """
    spec = dict(spec, result=staging.path(f"{spec['action']}-result.json"))
    spec_path = staging.path(f"{spec['action']}-spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    worker = _get_worker()
    try:
        status = worker.run(spec_path, timeout)
    except TimeoutError:
        raise ExportError(
            f"{what} did not finish within {timeout}s and was stopped; "
            "nothing was written to the destination."
        ) from None
    except BaseException:
        # Interrupted mid-job (Ctrl-C): the child's answer would be read by the
        # next job, so this child cannot be reused.
        worker.close(kill=True)
        raise
    if status is not None:
        tail = worker.log_tail()
        worker.close()
        if status < 0:
            try:
                how = f"crashed with {signal.Signals(-status).name}"
            except ValueError:
                how = f"was killed by signal {-status}"
        else:
            how = f"exited with status {status}"
        raise ExportError(
            f"{what} {how} (in a separate process, so this one is unharmed); nothing "
            f"was written to the destination. Last lines of its log:\n{tail}"
        )
    with open(spec["result"]) as f:
        result = json.load(f)
    if "error" in result:
        trace = "\n".join(result.get("traceback", "").rstrip().splitlines()[-12:])
        raise ExportError(
            f"{what} failed: {result['error']}\nNothing was written to the destination."
            f"\n{trace}"
        )
    return result
