"""Safe writes and the conversion subprocess.

Every export is written into a staging folder beside the destination and moved
into place only after every check passed, so a crash, a failed check or Ctrl-C
leaves nothing partial at the destination path. Conversion and the runs of the
exported model happen in a child process (`_worker.py`).
"""

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile

from mmzoo.export.report import ExportError

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")


class Staging:
    """A staging folder beside the destination, and the move into place.

    Args:
        destinations: the final paths this export writes (the model first).
        overwrite: whether existing destinations may be replaced.

    Raises:
        FileExistsError: a destination exists and `overwrite` is False.
    """

    def __init__(self, destinations, overwrite):
        self.destinations = [os.path.abspath(os.fspath(p)) for p in destinations]
        existing = [p for p in self.destinations if os.path.lexists(p)]
        if existing and not overwrite:
            raise FileExistsError(
                f"{existing[0]} already exists; pass overwrite=True to replace it "
                f"(nothing was written). Received: overwrite={overwrite!r}"
            )
        parent = os.path.dirname(self.destinations[0])
        os.makedirs(parent, exist_ok=True)
        self.dir = tempfile.mkdtemp(
            prefix=f".{os.path.basename(self.destinations[0])}.partial-", dir=parent
        )

    def path(self, name):
        """A path inside the staging folder."""
        return os.path.join(self.dir, name)

    def commit(self, moves):
        """Moves staged files into place, all or none.

        Args:
            moves: `[(staged_path, destination)]`; the model should come last,
                so that readers never see a model without its side files.
        """
        backups, placed = [], []
        finals = {final for _, final in moves}
        try:
            # A destination this export does not write again (e.g. the vocabulary
            # of a previous export with a tokenizer) would be stale: set it aside.
            for final in self.destinations:
                if final not in finals and os.path.lexists(final):
                    backup = self.path(f"old-{len(backups)}")
                    os.rename(final, backup)
                    backups.append((backup, final))
            for staged, final in moves:
                if os.path.lexists(final):
                    backup = self.path(f"old-{len(backups)}")
                    os.rename(final, backup)
                    backups.append((backup, final))
                os.rename(staged, final)
                placed.append(final)
        except BaseException:
            for final in placed:
                _remove(final)
            for backup, final in backups:
                os.rename(backup, final)
            raise

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


class _Worker:
    """The conversion child process, started on first use and kept for the session.

    Importing TensorFlow takes seconds; one child serves every export of a
    session. A crashed child is replaced by a fresh one at the next export.
    """

    def __init__(self):
        self.log_dir = tempfile.mkdtemp(prefix="mmzoo-export-worker-")
        self.log_path = os.path.join(self.log_dir, "log.txt")
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # On a GPU machine TensorFlow would otherwise reserve all GPU memory in
        # the child too, leaving none to the training process that exports.
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, WORKER, "--serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, env=env, text=True,
        )

    def run(self, spec_path, timeout):
        """Runs one job; returns None, or the exit status if the child died."""
        start = os.path.getsize(self.log_path)
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
        with open(self.log_path, errors="replace") as f:
            f.seek(getattr(self, "log_start", 0))
            return "".join(f.readlines()[-lines:]).rstrip()

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
        shutil.rmtree(self.log_dir, ignore_errors=True)


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
