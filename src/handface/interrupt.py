"""Ctrl-C and SIGTERM as clean, complete stops of the command line.

Python turns SIGINT into a ``KeyboardInterrupt`` raised wherever the main thread happens to be;
a third-party library that catches every exception (a C++ extension while it loads its
graphs, code run from a destructor) can swallow it, and the command would then finish as if
nothing happened. The handlers installed here also *record* the request, and long loops call
:func:`raise_if_requested` once per item, so a swallowed interruption still stops the command
at the next frame, image or sample, with the same one-line message and exit status.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_requested: int | None = None
_deferring = 0  # depth of `deferred()` blocks: a signal inside one is raised at its end
_hint: str | None = None  # how to continue the interrupted command (see `resume_hint`)

MESSAGES: dict[int, str] = {
    signal.SIGINT: "handface: interrupted; no partial output was kept",
    signal.SIGTERM: "handface: terminated; no partial output was kept",
}


def requested() -> int | None:
    """The signal number of a pending interruption, or None."""
    return _requested


def resume_hint(text: str | None) -> None:
    """Say in the interruption's one line how to continue (e.g. "rerun with --resume"): for
    commands that keep their finished items. ``None`` clears it."""
    global _hint
    _hint = text


def message(signum: int) -> str:
    """The one line the entry point prints for an interruption by ``signum``."""
    return MESSAGES[signum] + (f"; {_hint}" if _hint else "")


class Terminated(SystemExit):
    """SIGTERM: exits with status 143. The entry point prints the message once the stack has
    unwound (a handler running inside a library call could print into a redirected stderr:
    :func:`handface.console.native_logs_silenced`)."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _stop(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt  # as Python's own handler: the entry point reports it
    raise Terminated


def _handler(signum: int, frame) -> None:  # noqa: ARG001 - signal handler signature
    global _requested
    _requested = signum
    if not _deferring:
        _stop(signum)


def install() -> None:
    """Handle SIGINT and SIGTERM as recorded clean stops (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handler)


def raise_if_requested() -> None:
    """Stop now if an interruption was requested and something swallowed it."""
    if _requested is not None:
        _stop(_requested)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a Ctrl-C or SIGTERM that arrives inside the block until the block ends: for short
    steps that must not be cut in half (moving a finished item's files into place and
    recording it). Needs the handlers of :func:`install` (the command line); elsewhere the
    block is interrupted as usual.

    Example:
        >>> with deferred():
        ...     pass
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring:
        raise_if_requested()
