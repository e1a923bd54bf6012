"""Keeping third-party noise off stderr and out of logs: C-level stderr of decoders, TensorFlow's
start-up lines, and the log records of libraries that quote file headers (patient data)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator

__all__ = ["import_tensorflow_quietly", "quiet_libraries", "quiet_stderr"]


class _StderrSilencer:
    """Redirect file descriptor 2 to a temporary file while any decoder runs.

    Decoders such as libpng and libjpeg print warnings straight to fd 2, which would break
    the one-line-error rule. The redirect is process-wide, so it is reference counted under
    a lock: threads decoding at the same time share one redirect, and the first one in
    saves fd 2 while the last one out restores it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved_fd: int | None = None
        self._sink = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[list[str]]:
        captured: list[str] = []  # what was written to fd 2 meanwhile, filled on exit
        with self._lock:
            if self._depth == 0:
                self._sink = tempfile.TemporaryFile()  # noqa: SIM115 - held until the last user leaves
                self._saved_fd = os.dup(2)
                os.dup2(self._sink.fileno(), 2)
            self._depth += 1
            start = os.lseek(self._sink.fileno(), 0, os.SEEK_END)
        try:
            yield captured
        finally:
            with self._lock:
                sink = self._sink
                end = os.lseek(sink.fileno(), 0, os.SEEK_END)
                captured.append(os.pread(sink.fileno(), end - start, start).decode("utf-8", "replace"))
                self._depth -= 1
                if self._depth == 0:
                    os.dup2(self._saved_fd, 2)
                    os.close(self._saved_fd)
                    sink.close()
                    self._saved_fd, self._sink = None, None


quiet_stderr = _StderrSilencer()  # ``with quiet_stderr() as said:`` silences and captures fd 2


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its start-up lines (CUDA probing, oneDNN notices) kept off stderr.

    TF_CPP_MIN_LOG_LEVEL set from Python comes too late for TensorFlow 2.21's absl logging,
    so file descriptor 2 is redirected while TensorFlow loads and probes its devices (where a
    machine without a GPU logs a cuInit error). Used by the ``tfsal`` command and the Beam workers.
    """
    if "tensorflow" in sys.modules:
        return
    with quiet_stderr():
        import tensorflow as tf

        tf.config.list_logical_devices()


@contextlib.contextmanager
def quiet_libraries(*packages: str):
    """Drop the log records and warnings of these packages' loggers (e.g. ``"pydicom"``) while running.

    They quote header values, which must stay off stderr and out of logs. Filters do not propagate
    to child loggers, so each existing logger of the packages gets its own filter (this call's own:
    removing it cannot undo another's).
    """
    def drop(record: logging.LogRecord) -> bool:
        return False

    loggers = [logging.getLogger(name) for name in [*packages, *logging.root.manager.loggerDict]
               if name.split(".")[0] in packages]
    for logger in dict.fromkeys(loggers):
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger in dict.fromkeys(loggers):
            logger.removeFilter(drop)
