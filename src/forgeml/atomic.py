"""Atomic writes: a file or folder is either the old one or the complete new one, never half-written.

Write to a temporary name in the same folder, fsync, then rename over the target (rename is
atomic on POSIX file systems). A crash mid-write leaves the previous file untouched.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from forgeml.errors import StorageError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


def write_failed(path: Path, exc: OSError, *, existed: bool, kept: str | None = None) -> StorageError:
    """The one message for a failed atomic write: which file, why, and that nothing was half-replaced."""
    reason = exc.strerror or str(exc)
    if exc.errno in _OUT_OF_SPACE:
        reason = f"{reason}: the disk is full"
    if kept is None:
        kept = f"the previous {path.name} is intact" if existed else f"no partial {path.name} was left behind"
    return StorageError(
        f"{path}: could not be written ({reason}); {kept}. Free some space or pick another folder, then run again."
    )


def write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise write_failed(path, exc, existed=path.exists()) from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


@contextmanager
def replace_folder(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; when the block succeeds it replaces ``path`` whole.

    If the block raises, the temporary folder is removed and ``path`` (if it existed) is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    staging.chmod(0o777 & ~_umask())
    try:
        yield staging
        for file in staging.rglob("*"):  # nested folders too (a folder of bundles)
            if file.is_file():
                with file.open("rb") as handle:
                    os.fsync(handle.fileno())
        retired = path.with_name(f".{path.name}.old")
        if path.exists():
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(path, retired)
        os.replace(staging, path)
        shutil.rmtree(retired, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno in _OUT_OF_SPACE:  # a write into the staging folder ran out of room
            raise write_failed(path, exc, existed=path.exists()) from exc
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
