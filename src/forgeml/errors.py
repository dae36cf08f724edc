"""Errors forgeml raises for bad input.

Every user mistake raises a subclass of :class:`ForgeError` whose message says what was wrong,
where (file, row, column or config key) and how to fix it. The CLI prints the message and exits 2;
the HTTP server maps these to 4xx answers. Anything else that escapes is a bug in forgeml.

::

    ForgeError
    ├── ConfigError(ValueError)      a config key is unknown or its value is out of range
    │   └── MissingExtraError        a feature needs a package from a pip extra (forgeml.extras)
    ├── DataError(ValueError)        a data file is missing, unreadable or does not match
    ├── BundleError(ValueError)      a bundle is missing files, tampered with or incompatible
    ├── UnsafeArtifactError(ValueError) a weights file holds pickled code, refused unrun
    ├── StorageError(OSError)        a file could not be written (disk full, ...); the previous one is intact
    ├── PortInUseError               serve's port is taken by another process (CLI exit code 3)
    ├── DataQualityError             the cleaning gate found blocking problems (CLI exit code 1)
    └── NotFittedError(RuntimeError) a preprocessor was used before fit()
"""

from __future__ import annotations


class ForgeError(Exception):
    """Base class of every error caused by the user's input rather than by forgeml itself."""


class ConfigError(ForgeError, ValueError):
    """A config key is unknown, missing, or has a value outside what it accepts."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DataError(ForgeError, ValueError):
    """A data file cannot be read, or its content does not fit what the pipeline expects."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.column = column
        self.row = row


class BundleError(ForgeError, ValueError):
    """A bundle is missing a file, fails its checksum, or was written by an incompatible version."""


class UnsafeArtifactError(ForgeError, ValueError):
    """A weights or checkpoint file needs a full pickle load (it may run code); it is refused, never run."""


class StorageError(ForgeError, OSError):
    """Writing a file failed (disk full, no permission); the write was atomic, so the old file is intact.

    Still an OSError, so code that handles a failed write as one keeps working.
    """


class PortInUseError(ForgeError):
    """The server cannot listen: its host and port are taken (the CLI exits 3, not 2: the input was fine)."""

    exit_code = 3


class DataQualityError(ForgeError):
    """The data has blocking quality problems; training refuses it (the CLI exits 1, not 2).

    ``report`` is the checks' report object, so a caller can show or save the findings.
    """

    exit_code = 1

    def __init__(self, message: str, *, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class NotFittedError(ForgeError, RuntimeError):
    """A preprocessor's ``transform`` was called before ``fit``."""
