"""The directory that prometheus_client's multiprocess mode shares between Bard's processes.

``bard up`` and ``bard agent-api`` serve the agent API from several processes, and a scrape of ``/metrics``
reaches one of them at random. In multiprocess mode every process writes its metrics to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` and the process that answers a scrape adds up every file (:mod:`bard.metrics`).

prometheus_client chooses between in-memory values and those files once, when it is first imported, from the
environment: so the entry point prepares the directory and sets the variable *before* anything imports
prometheus_client, and the worker processes (spawned, so fresh interpreters) inherit it. This module must not
import prometheus_client itself, nor anything that does.

The directory is a fresh one per run, made with :mod:`tempfile` (``TMPDIR``, ``/tmp`` by default: writable in
the read-only containers of the server mode) and removed when the command ends, so no file of an earlier run is
added to this one's counters. Its name carries the pid of the process that made it, so a run killed before it
could remove its directory (SIGKILL) has it removed by the next run, once that pid is gone. An operator who sets
``PROMETHEUS_MULTIPROC_DIR`` himself keeps his directory; Bard empties it of metric files at start, as
prometheus_client requires.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "bard-metrics-"


@contextlib.contextmanager
def shared_metrics_directory() -> Iterator[Path]:
    """A fresh, empty directory named in ``PROMETHEUS_MULTIPROC_DIR`` for the life of the block."""
    if "prometheus_client" in sys.modules:
        # Too late: this process keeps its metrics in memory, and no scrape of another process would see them.
        raise RuntimeError(f"prometheus_client was imported before {ENVIRONMENT_VARIABLE} was set")
    given = os.environ.get(ENVIRONMENT_VARIABLE)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    _remove_orphans(Path(tempfile.gettempdir()))
    directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(ENVIRONMENT_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)


def _remove_orphans(parent: Path) -> None:
    """The directories of earlier runs whose process is gone (a live one, or another user's, is left alone)."""
    for candidate in parent.glob(f"{PREFIX}*-*"):
        pid = candidate.name.removeprefix(PREFIX).partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
