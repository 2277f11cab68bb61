"""Atomic outputs: a result appears whole or not at all, nothing is overwritten by accident, and
no two handface processes write the same output at once (:func:`output_lock`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from handface.errors import InputError, OutputBusyError, OutputExistsError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; outputs are then not guarded (see output_lock)
    fcntl = None

LOCK_SUFFIX = ".lock"
_held: dict[str, list] = {}  # lock file -> [descriptor, depth] of the locks this process holds
_held_guard = threading.Lock()


def lock_path(out: Path) -> Path:
    """The lock file of the output ``out``: ``OUT.lock`` beside it (never inside: an output
    folder appears by a rename, and a lock inside its staging folder would move with it)."""
    out = Path(os.path.abspath(out))
    return out.parent / (out.name + LOCK_SUFFIX)


def _lock_holder(descriptor: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(os.pread(descriptor, 32, 0).decode().strip()))
    return "unknown"


@contextlib.contextmanager
def output_lock(out: Path, *, shared: bool = False, what: str | None = None) -> Iterator[None]:
    """Hold ``out`` for this process for the block: the one rule by which two handface
    processes never write the same output at once.

    The lock is an exclusive ``flock`` on ``OUT.lock`` beside ``out`` (:func:`lock_path`),
    which holds the owner's pid and is removed when the block ends. A second process asking
    for it gets :class:`OutputBusyError` at once (one line, with the owner's pid) instead of
    waiting or interleaving files. The kernel drops the lock when its process dies, so the file
    a killed process leaves behind is stale and simply taken over. ``shared=True`` takes it
    alongside other shared holders and excludes only exclusive ones (shards of one dataset
    write the same folder together; a whole run into it must wait). Re-entrant within a
    process; ``what`` names the output in the message (default: ``out``).

    Without ``fcntl`` (Windows), or where the lock file cannot be created (a read-only
    parent folder), the block runs unguarded, as before locks existed.

    Example:
        >>> with output_lock(Path(tempfile.mkdtemp()) / "result"):
        ...     pass
    """
    path = lock_path(out)
    key = str(path)
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[key][1] -= 1
        return
    missing = []  # the folders above the lock file that it creates, removed again if empty
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    try:
        descriptor = _acquire(path, shared, what or str(out))
        if descriptor is None:
            yield
            return
        with _held_guard:
            _held[key] = [descriptor, 1]
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            _release(path, descriptor, shared)
    finally:
        for folder in missing:  # deepest first; a folder the output went into stays
            try:
                folder.rmdir()
            except OSError:
                break


def _acquire(path: Path, shared: bool, what: str) -> int | None:
    """Lock ``path`` (creating it); the descriptor, or None where locking is unavailable."""
    if fcntl is None:
        return None
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    attempts = 0
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # its folder went away under us (another run removing it)
            attempts += 1
            if attempts < 4:
                continue
            return None
        except OSError:  # a read-only or foreign folder: no lock (the write fails anyway)
            return None
        try:
            fcntl.flock(descriptor, mode)
        except BlockingIOError:
            holder = _lock_holder(descriptor)
            os.close(descriptor)
            attempts += 1
            if attempts < 4:  # a holder removing its lock file holds it for a moment more
                time.sleep(0.03)
                continue
            raise OutputBusyError(
                f"{what} is being written by another handface process (pid {holder}); wait "
                "for it or choose another --out"
            ) from None
        # the holder before us may have removed the file between our open and our lock: then
        # the lock is on a file nobody else will see; open the path anew
        mine = os.fstat(descriptor)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
            break
        os.close(descriptor)
    with contextlib.suppress(OSError):
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor


def _release(path: Path, descriptor: int, shared: bool) -> None:
    """Remove the lock file (while still holding it, so nobody locks a file on its way out;
    a shared holder removes it only when it is the last one) and drop the lock."""
    try:
        if shared:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # other shared holders remain; the last one removes it
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    finally:
        os.close(descriptor)


def refuse_existing(out: Path, overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` when ``out`` exists and ``overwrite`` is false: results
    people keep are never replaced unless asked. Also refuses, with :class:`InputError`, an
    ``out`` that cannot be written (:func:`refuse_unwritable`), so no work is done for nothing."""
    if Path(out).exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; choose another --out or pass --overwrite")
    refuse_unwritable(out)


def refuse_unwritable(out: Path) -> None:
    """Raise :class:`InputError` when ``out`` can never be created: its nearest existing parent
    is a file, or a folder this user may not write in."""
    out = Path(out)
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {out}: {parent} is a file, not a folder; choose "
                         "another --out")  # fmt: skip
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {out}: no permission to write in {parent}; choose "
                         "another --out")  # fmt: skip


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        # mkstemp makes the file private (0600); results are meant to be shared like any file
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_output_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` only if the block finishes without error.

    Raises :class:`OutputExistsError` up front if ``out`` exists and ``overwrite`` is false; with
    ``overwrite`` the old folder is replaced only after the new one is complete. ``out`` is
    locked for the block (:func:`output_lock`): another process writing it is refused.

    Example:
        >>> with atomic_output_dir(Path(tempfile.mkdtemp()) / "result") as staging:
        ...     _ = (staging / "a.txt").write_text("done")
    """
    out = Path(out)
    with output_lock(out):
        refuse_existing(out, overwrite)
        if out.exists() and not out.is_dir():
            raise OutputExistsError(f"{out} exists and is not a folder; choose another --out")
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
        os.chmod(staging, 0o755)  # mkdtemp makes it private (0700)
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if out.exists():
            backup = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, backup / out.name)
            os.replace(staging, out)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, out)


def read_format_json(path: Path, noun: str, file_format: str, version: int, hint: str = "") -> dict:
    """A JSON file that declares ``"format": file_format`` and ``"version": version``.

    ``noun`` names the kind of file in messages ("hand pose file"); ``hint`` ends the message
    for a file of another kind (e.g. how to write one).

    Raises:
        InputError: missing, not JSON, another format, or another version.
    """
    path = Path(path)
    kind = noun.removesuffix(" file")
    article = "an" if noun[:1].lower() in "aeiou" else "a"
    if not path.is_file():
        raise InputError(f"{noun} {path} does not exist")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is not a JSON {noun} ({error})") from None
    if not isinstance(document, dict) or document.get("format") != file_format:
        raise InputError(f'{path} is not {article} {noun} (no "format": "{file_format}"){hint}')
    if document.get("version") != version:
        raise InputError(f"{path}: {kind} format version {document.get('version')}; this "
                         f"handface reads {version}")  # fmt: skip
    return document


def os_error_message(error: OSError, out: Path | None = None) -> str | None:
    """The one-line message for an operating-system error a user can act on (a full disk, a
    path through a file, no permission, a read-only file system); ``None`` for any other.

    The command line's one rule for these (:func:`handface.cli.entrypoint`): wherever a write
    fails, the user reads what to do instead of a traceback. ``out`` (the command's --out)
    names the place when the error does not (a failed ``write`` carries no file name).

    Example:
        >>> os_error_message(OSError(28, "No space left on device"), Path("runs/a"))
        'no space left on device while writing runs/a; free space or choose another --out'
    """
    import errno

    where = error.filename if error.filename is not None else out
    where = "the output" if where is None else where
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on device while writing {where}; free space or choose another --out"
    if error.errno == errno.EROFS:
        return f"cannot write {where}: the file system is read-only; choose another --out"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied on {where}; choose another path or change its permissions"
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = Path(where)
        while not blocker.exists() and blocker != blocker.parent:
            blocker = blocker.parent
        if blocker.exists() and not blocker.is_dir():
            return f"cannot write {where}: {blocker} is a file, not a folder; choose another path"
    return None
