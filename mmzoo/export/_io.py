"""Safe writes and the conversion subprocess.

Every export is written into a staging folder beside the destination and moved
into place only after every check passed, so a crash, a failed check or Ctrl-C
leaves nothing partial at the destination path.
"""

import json
import os
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


def run_worker(spec, staging, what, timeout=None):
    """Runs `_worker.py` on `spec` in a child process; returns its result dict.

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
    log_path = staging.path(f"{spec['action']}-log.txt")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(log_path, "w") as log:
        try:
            status = subprocess.run(
                [sys.executable, WORKER, spec_path], stdout=log, stderr=subprocess.STDOUT,
                env=env, timeout=timeout, check=False,
            ).returncode
        except subprocess.TimeoutExpired as e:
            raise ExportError(
                f"{what} did not finish within {timeout}s and was stopped; "
                "nothing was written to the destination."
            ) from e
    result = {}
    if os.path.exists(spec["result"]):
        with open(spec["result"]) as f:
            result = json.load(f)
    if status == 0:
        return result
    with open(log_path, errors="replace") as f:
        tail = "".join(f.readlines()[-15:]).rstrip()
    if status < 0:
        try:
            how = f"crashed with {signal.Signals(-status).name}"
        except ValueError:
            how = f"was killed by signal {-status}"
        raise ExportError(
            f"{what} {how} (in a separate process, so this one is unharmed); nothing "
            f"was written to the destination. Last lines of its log:\n{tail}"
        )
    if "error" in result:
        raise ExportError(
            f"{what} failed: {result['error']}\nNothing was written to the destination."
            f"\n{result.get('traceback', '')}".rstrip()
        )
    raise ExportError(
        f"{what} exited with status {status}; nothing was written to the destination. "
        f"Last lines of its log:\n{tail}"
    )
