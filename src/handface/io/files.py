"""Atomic outputs: a result appears whole or not at all, and nothing is overwritten by accident."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from handface.errors import InputError, OutputExistsError


def refuse_existing(out: Path, overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` when ``out`` exists and ``overwrite`` is false: results
    people keep are never replaced unless asked."""
    if Path(out).exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; choose another --out or pass --overwrite")


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
    ``overwrite`` the old folder is replaced only after the new one is complete.

    Example:
        >>> with atomic_output_dir(Path(tempfile.mkdtemp()) / "result") as staging:
        ...     _ = (staging / "a.txt").write_text("done")
    """
    out = Path(out)
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
