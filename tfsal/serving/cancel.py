"""Stopping a running SavedModel signature from another thread: a request cancelled by its
client, past its deadline, or still running when the server shuts down stops inside the
optimisation loop instead of holding a worker until its last step.

TensorFlow's eager runtime cancels a running function through a ``CancellationManager``
(``tensorflow.python.eager.cancellation``): the executor checks it between the loop's
iterations and raises ``CancelledError``. The manager in force is read from one module-level
slot, which concurrent requests on a thread pool would overwrite for each other; this module
makes that slot per thread (:func:`install`) before any request runs. It is the one place tfsal
touches TensorFlow's internals, and the serving tests check that it still works.
"""

from __future__ import annotations

import threading

from tensorflow.python.eager import cancellation

__all__ = ["Cancellable", "install"]

_local = threading.local()
_installed = threading.Lock()


def _this_threads_manager():
    return getattr(_local, "manager", None)


def install() -> None:
    """Make the cancellation manager in force a per-thread setting (idempotent)."""
    with _installed:
        cancellation.context = _this_threads_manager


class Cancellable:
    """One call that another thread may stop: ``cancel()`` from anywhere, ``call(fn, **inputs)``
    in the thread that runs it. A call cancelled before it starts does not start.

    Raises (from ``call``):
        tf.errors.CancelledError: cancelled before or while it ran.
    """

    def __init__(self):
        install()
        self.manager = cancellation.CancellationManager()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        if not self.manager.is_cancelled:
            self.reason = reason
            self.manager.start_cancel()

    @property
    def cancelled(self) -> bool:
        return self.manager.is_cancelled

    def call(self, function, **inputs):
        import tensorflow as tf

        if self.cancelled:
            raise tf.errors.CancelledError(None, None, self.reason)
        _local.manager = self.manager
        try:
            return function(**inputs)
        finally:
            _local.manager = None
