"""User-facing errors.

Every mistake a user can make (a missing file, a bad option, an image without a face) raises a
subclass of :class:`HandfaceError` with a one-line message that says what to do. The CLI prints
the message without a traceback and exits with code 2.
"""


class HandfaceError(Exception):
    """Base class of every error caused by user input rather than a bug."""


class InputError(HandfaceError):
    """A file or argument the user gave cannot be used (missing, unreadable, wrong shape)."""


class OutputExistsError(HandfaceError):
    """The output location already holds results and ``--overwrite`` was not given."""


class OutputBusyError(HandfaceError):
    """Another handface process is writing the same output location right now."""


class ModelFileError(HandfaceError):
    """A model file the user pointed to (FLAME, MANO) is missing or not what it claims to be."""
