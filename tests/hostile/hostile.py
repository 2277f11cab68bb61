"""Shared checks of the hostile-input corpus (issue 14): run a command on a broken or
hostile input and assert the contract — a one-line actionable error with exit code 2 and no
traceback, no partial output, nothing overwritten, nothing executed.

Each corpus test module records its cases in :data:`OUTCOMES` (via :func:`record`), and
``tests/hostile/test_zz_summary.py`` checks the totals, so the closing table of the issue
(cases tried, handled, tracebacks, partial outputs, commands executed) is measured by the
suite itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from handface.cli import entrypoint

OUTCOMES: dict[str, dict[str, bool]] = {}
"""case id -> {"handled": one-line exit-2 error (or the documented success), "traceback": a
traceback was printed, "partial": a partial or overwritten output was left, "executed": a
command from a hostile file ran}."""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    @property
    def has_traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.err + self.out


def run_cli(args: list[str], *, in_subprocess: bool = False, timeout: float = 600) -> Result:
    """``handface ARGS``: in this process through the CLI's entry point (fast), or in a fresh
    interpreter (``python -m handface``: what a user's shell sees, signals and all)."""
    args = [str(a) for a in args]
    if in_subprocess:
        done = subprocess.run([sys.executable, "-m", "handface", *args], capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        return Result(done.returncode, done.stdout, done.stderr)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            entrypoint(args)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return Result(code, out.getvalue(), err.getvalue())


def tree_digest(path: Path) -> dict[str, str]:
    """relative path -> sha1 of every file under ``path`` (``{}`` when it does not exist); a
    folder's identity for "nothing overwritten, nothing partial"."""
    path = Path(path)
    if not path.exists():
        return {}
    if path.is_file():
        return {".": hashlib.sha1(path.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(path)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def leftovers(folder: Path, before: set[str]) -> list[str]:
    """Names in ``folder`` that were not there before (partial outputs, temp files)."""
    folder = Path(folder)
    now = set(os.listdir(folder)) if folder.is_dir() else set()
    return sorted(now - before)


def record(case: str, *, handled: bool, traceback: bool = False, partial: bool = False,
           executed: bool = False) -> None:  # fmt: skip
    OUTCOMES[case] = {"handled": handled, "traceback": traceback, "partial": partial,
                      "executed": executed}  # fmt: skip


def assert_refused(case: str, result: Result, *, match: str | None = None,
                   partial: bool = False, executed: bool = False) -> None:  # fmt: skip
    """The contract for a refused input: exit 2, exactly one line on stderr starting with
    ``handface: error:`` (containing ``match`` when given), no traceback; ``partial`` and
    ``executed`` are what the caller observed on disk. Records the outcome first, so the
    summary counts failures too."""
    lines = result.error_lines
    handled = (result.code == 2 and len(lines) == 1 and lines[0].startswith("handface: error:")
               and (match is None or match.lower() in lines[0].lower()))  # fmt: skip
    record(case, handled=handled, traceback=result.has_traceback, partial=partial,
           executed=executed)  # fmt: skip
    assert not result.has_traceback, result.err[-3000:]
    assert result.code == 2, (result.code, result.err[-2000:])
    assert len(lines) == 1, lines
    assert lines[0].startswith("handface: error:"), lines
    if match is not None:
        assert match.lower() in lines[0].lower(), lines[0]
    assert not partial, f"{case}: a partial or overwritten output was left"
    assert not executed, f"{case}: a command from a hostile file ran"
