"""What handface prints: its own lines and progress bars, not third-party libraries' logs.

MediaPipe's C++ graphs log through absl/glog and TFLite announces its delegates, straight to the
process's standard error (file descriptor 2, below Python's ``sys.stderr``), whatever
``GLOG_minloglevel`` says: absl writes everything logged before ``absl::InitializeLog()`` to
stderr. :func:`native_logs_silenced` points descriptor 2 at a scratch file while such a library
runs, so the console keeps only handface's own output; :func:`set_verbose` (``handface
--verbose``) lets everything through. Python warnings of other packages are hidden the same way
by the CLI (:func:`quiet_python_warnings`).

Example:
    >>> with native_logs_silenced():
    ...     pass  # MediaPipe calls go here
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

_verbose = False


def set_verbose(verbose: bool) -> None:
    """Show (``True``) or hide (``False``, the default) third-party logs."""
    global _verbose
    _verbose = bool(verbose)


def is_verbose() -> bool:
    return _verbose


@contextlib.contextmanager
def native_logs_silenced() -> Iterator[None]:
    """Send whatever native code writes to descriptor 2 to a scratch file for the duration
    (nothing changes in verbose mode, or when descriptor 2 is not open). Python's own
    ``sys.stderr`` is flushed first, so no handface line is lost."""
    if _verbose:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to protect
        yield
        return
    with tempfile.TemporaryFile() as sink:
        _flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)


def quiet_python_warnings() -> None:
    """Hide other packages' Python warnings unless verbose (the CLI calls this once)."""
    if not _verbose:
        warnings.filterwarnings("ignore")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
