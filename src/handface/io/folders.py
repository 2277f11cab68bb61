"""Which kind of result folder a path is, told by its marker file alone (nothing else is read).

Example:
    >>> folder_kind(Path("out/photo"))                           # doctest: +SKIP
    'capture'
"""

from __future__ import annotations

from pathlib import Path

from handface.errors import InputError
from handface.io.capture_folder import RESULT_FILE
from handface.io.sequence_folder import ARRAYS_FILE, TIMELINE_FILE

MARKERS = {
    RESULT_FILE: "capture",
    TIMELINE_FILE: "sequence",
    ARRAYS_FILE: "sequence",
    "avatar.json": "avatar",
    "meta.json": "synthetic",
}
"""The file that tells each kind of folder (``handface reconstruct``, ``track``, ``avatar``,
``synth``); the first one found decides."""
KIND_NAMES = {
    "capture": "Capture",
    "sequence": "Sequence",
    "avatar": "avatar",
    "synthetic": "synthetic dataset",
}
"""Each kind of folder as messages name it."""


def _one_of(kinds: tuple[str, ...], word: str) -> str:
    names = [KIND_NAMES[kind] for kind in kinds]
    listed = f"{', '.join(names[:-1])} {word} {names[-1]}" if len(names) > 1 else names[0]
    return f"{'an' if listed[0] in 'aeiou' else 'a'} {listed}"


def folder_kind(path: Path, kinds: tuple[str, ...] = tuple(KIND_NAMES)) -> str:
    """``capture``, ``sequence``, ``avatar`` or ``synthetic``: what the folder ``path`` holds,
    by its marker file (:data:`MARKERS`). ``kinds``: the kinds the caller takes (the messages
    name them; a folder of another kind is refused).

    Raises:
        InputError (one line): a missing path, a file, a folder of another or no kind.
    """
    path = Path(path)
    wanted = f"{_one_of(kinds, 'or')} folder"
    if not path.exists():
        raise InputError(f"{path} is not a folder: it does not exist; give {wanted}")
    if not path.is_dir():
        raise InputError(f"{path} is a file; give {wanted}")
    for marker, kind in MARKERS.items():
        if (path / marker).is_file():
            if kind not in kinds:
                raise InputError(f"{path} is {_one_of((kind,), '')} folder; this command takes "
                                 f"{wanted}")  # fmt: skip
            return kind
    inner = sorted(p.name for p in path.iterdir() if (p / RESULT_FILE).is_file())
    if inner and "capture" in kinds:
        listed = ", ".join(str(path / name) for name in inner[:3])
        more = ", ..." if len(inner) > 3 else ""
        raise InputError(f"{path} holds Capture folders ({listed}{more}); give one of them")
    markers = ", ".join(marker for marker, kind in MARKERS.items() if kind in kinds)
    raise InputError(f"{path} is neither {_one_of(kinds, 'nor')} folder (it has none of "
                     f"{markers})")  # fmt: skip
