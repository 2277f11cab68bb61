"""Ctrl-C and SIGTERM as clean, complete stops of the command line.

Python turns SIGINT into a ``KeyboardInterrupt`` raised wherever the main thread happens to be;
a third-party library that catches every exception (a C++ extension while it loads its
graphs, code run from a destructor) can swallow it, and the command would then finish as if
nothing happened. The handlers installed here also *record* the request, and long loops call
:func:`raise_if_requested` once per item, so a swallowed interruption still stops the command
at the next frame, image or sample, with the same one-line message and exit status.
"""

from __future__ import annotations

import signal
import threading

_requested: int | None = None

MESSAGES: dict[int, str] = {
    signal.SIGINT: "handface: interrupted; no partial output was kept",
    signal.SIGTERM: "handface: terminated; no partial output was kept",
}


def requested() -> int | None:
    """The signal number of a pending interruption, or None."""
    return _requested


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
