"""Safe file writing: never through a symlink, never over a file that is not ours, never
half-written.

Every output the sandbox writes goes through this module:

- :func:`create_exclusive` opens a new file with ``O_CREAT | O_EXCL | O_NOFOLLOW``: it fails
  if anything (a file, a symlink, even a dangling one) is already at the path, so a link
  planted in a shared output folder cannot redirect the write onto another file.
- :func:`write_file` writes a whole file under a fresh temporary name in the same folder,
  fsyncs it, then links it into place (``os.link``: never clobbers) or, for outputs that are
  meant to be regenerated, renames it over the old one (``os.replace`` replaces a directory
  entry; it never writes into whatever an old entry pointed to).  An existing symlink at
  the destination is refused either way, with a message that names it.
- :func:`open_regular` opens a file to read without blocking and only if it is a regular
  file: a FIFO or a device planted under an input's name is refused at once instead of
  hanging the read for ever.
- :func:`locked` holds an exclusive ``flock`` on an open file, and :func:`append_whole`
  appends bytes completely or not at all (a failed write is cut back), so concurrent
  appenders serialise and a full disk never leaves a torn line.

Limits: only the last path component is protected (a symlinked *folder* is the user's
choice), and ``flock`` only excludes processes that take it too.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from negotiation.errors import RefusedError

#: Errors that mean the disk (or the user's quota, or a file size limit) is full.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_CREATE = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class OutputError(RefusedError):
    """An output cannot be written safely: a symlink or a foreign file is where it should
    go, or there is no space left.  Nothing half-written is left behind."""

    #: The ``errno`` of the failed write, when there was one (``ENOSPC``: a full disk).
    errno: int | None = None


def is_disk_full(error: BaseException) -> bool:
    return getattr(error, "errno", None) in _FULL


def write_error(path: Path, error: OSError, *, resume: str = "") -> OutputError:
    """The message for a failed write of ``path``: plain words, what to do next."""
    if is_disk_full(error):
        full = OutputError(f"no space left to write {path}; free some space and "
                           f"{resume or 'run the command again'}")
        full.errno = error.errno
        return full
    if error.errno == errno.ELOOP:
        return symlink_refused(path)
    return OutputError(f"cannot write {path}: {error.strerror or error}")


def symlink_refused(path: Path) -> OutputError:
    return OutputError(f"{path} is a symbolic link; refusing to write through it (it could "
                       "redirect the output onto another file). Remove it or choose another "
                       "output path")


def refuse_symlink(path: Path) -> None:
    """Refuse an output path that is a symlink (dangling or not)."""
    if path.is_symlink():
        raise symlink_refused(path)


def create_exclusive(path: Path, mode: int = 0o644) -> int:
    """Create ``path`` as a new, empty file and return its descriptor (read, append).

    Refuses an existing file and never follows a symlink (``O_EXCL | O_NOFOLLOW``).
    """
    try:
        return os.open(path, _CREATE, mode)
    except FileExistsError:
        if path.is_symlink():
            raise symlink_refused(path) from None
        raise OutputError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as error:
        raise write_error(path, error) from None


def open_existing(path: Path, *, write: bool = True) -> int:
    """Open an existing regular file for appending (or reading) without following a
    symlink at ``path``."""
    flags = (os.O_RDWR | os.O_APPEND if write else os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP or path.is_symlink():
            raise symlink_refused(path) from None
        raise write_error(path, error) from None


class NotRegularFile(OSError):
    """Something other than a regular file (a FIFO, a device, a folder) where a file to
    read should be."""


def open_regular(path: Path) -> int:
    """A descriptor to read ``path``, opened without blocking (a FIFO would otherwise wait
    for ever for a writer); :class:`NotRegularFile` unless it is a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(f"{path} is not a regular file")
    return fd


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a regular file may take fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def append_whole(fd: int, data: bytes, *, fsync: bool = True) -> None:
    """Append ``data`` in full, or leave the file as it was: after a failed write (a full
    disk) the file is cut back to its previous size.  Hold :func:`locked` around it when
    others may append too."""
    size = os.fstat(fd).st_size
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    except OSError:
        os.ftruncate(fd, size)
        raise


@contextmanager
def locked(fd: int) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) on an open file, released on exit."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def fsync_folder(folder: Path) -> None:
    """Make a new directory entry durable (a crash cannot lose a file just linked)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_beside(path: Path) -> tuple[Path, int]:
    """A new hidden file in ``path``'s folder (random name, created exclusively)."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return temporary, os.open(temporary, _CREATE, 0o644)
        except FileExistsError:
            continue  # a clash (or a planted name): draw another
        except OSError as error:
            raise write_error(path, error) from None


def publish(temporary: Path, path: Path, *, replace: bool) -> None:
    """Put a complete, fsynced temporary file in place at ``path``: linked (fails if
    ``path`` exists) or, with ``replace``, renamed over an old regular file.  The caller
    removes the temporary file if this fails, and fsyncs the folder if it succeeds."""
    if replace:
        refuse_symlink(path)
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path, follow_symlinks=False)
    except FileExistsError:
        if path.is_symlink():
            raise symlink_refused(path) from None
        raise OutputError(f"{path} already exists; refusing to overwrite it") from None
    temporary.unlink()


def write_file(path: Path, data: bytes | str, *, replace: bool = False) -> Path:
    """Write a whole file so that it appears complete or not at all, never through a
    symlink; ``replace`` allows regenerating an earlier output (a regular file)."""
    content = data.encode() if isinstance(data, str) else data
    refuse_symlink(path)
    if not replace and path.exists():
        raise OutputError(f"{path} already exists; refusing to overwrite it")
    temporary, fd = temporary_beside(path)
    try:
        try:
            write_all(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        publish(temporary, path, replace=replace)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise write_error(path, error) from None
        raise
    fsync_folder(path.parent)
    return path
