"""A second process that fetches and validates sources (``prepare_range``) while the
rebuilding process loads what was prepared before: both halves are CPU-bound Python,
so threads would only queue on the GIL.

The parent starts ``python -m kaizen.sources.worker`` and sends it requests
``(source, first, last)`` as pickles on its stdin; the worker answers each, in order,
with ``(True, [TableLoad, …])`` or ``(False, exception)`` on the stdout it was given
(its own prints and logs go to stderr). A plain subprocess rather than
:mod:`multiprocessing`, which would re-import the caller's ``__main__`` in the child.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

log = logging.getLogger(__name__)


class WorkerDied(RuntimeError):
    pass


class Preparer:
    """The parent's end: :meth:`submit` requests, :meth:`result` answers in order."""

    def __init__(self, env: dict[str, str] | None = None):
        plugins = str(Path(__file__).resolve().parents[2])  # the folder holding kaizen/
        path = os.pathsep.join(p for p in (plugins, os.environ.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kaizen.sources.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, **(env or {}), "PYTHONPATH": path},
        )
        self.answers: queue.Queue = queue.Queue()
        self.broken: Exception | None = None
        # answers are read as they come, so the worker never waits on a full pipe
        self.reader = threading.Thread(target=self._read, name="kaizen-prepare-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                self.answers.put(pickle.load(self.proc.stdout))
            except Exception as exc:  # noqa: BLE001 - EOF, a broken pipe or an answer that did not unpickle
                self.broken = exc if not isinstance(exc, EOFError) else None
                self.answers.put(None)
                return

    def submit(self, source: str, first: date, last: date) -> None:
        try:
            pickle.dump((source, first, last), self.proc.stdin)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker is gone: result() says so

    def result(self):
        answer = self.answers.get()
        if answer is None:
            if self.broken is not None:  # the worker lives on, but its answers cannot be read
                self.proc.kill()
            code = self.proc.wait()
            why = f"its answer could not be read ({self.broken!r})" if self.broken else "its error is in the log above"
            raise WorkerDied(
                f"the rebuild's source process stopped (exit code {code}); {why}. "
                "KAIZEN_REBUILD_PROCESSES=0 runs the rebuild in one process."
            )
        ok, value = answer
        if not ok:
            raise value
        return value

    def close(self, *, kill: bool = False) -> None:
        """Let the worker finish what it was asked and stop (``kill``: stop it now)."""
        if kill:
            self.proc.kill()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def main() -> int:
    from kaizen.sources import prepare_range

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints must not corrupt the answers
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    while True:
        try:
            source, first, last = pickle.load(sys.stdin.buffer)
        except EOFError:
            return 0
        try:
            loads = prepare_range(source, first, last)
        except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
            log.warning("preparing %s for %s…%s failed", source, first, last, exc_info=True)
            try:
                data = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
                pickle.loads(data)
            except Exception:  # noqa: BLE001 - an exception that does not travel
                data = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
            out.write(data)
        else:  # streamed: no second copy of a month's frames as one bytes object
            pickle.dump((True, loads), out, protocol=pickle.HIGHEST_PROTOCOL)
            del loads
        out.flush()


if __name__ == "__main__":
    raise SystemExit(main())
