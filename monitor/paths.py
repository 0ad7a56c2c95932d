"""Inspecting a path the user gave without a traceback.

``Path.is_file()``, ``Path.exists()`` and ``Path.is_dir()`` return False only for a few errors (no such file, a
file used as a folder, a symlink loop) and raise for the others: a folder on the way that the user may not
enter (PermissionError), a name longer than the file system allows (ENAMETOOLONG), an I/O error. ``path_kind``
tells the cases apart with one ``os.stat``; callers turn an OSError into their own one-line error with
``access_problem``.
"""

from __future__ import annotations

import errno
import os
import stat

MISSING, FILE, FOLDER, OTHER = "missing", "file", "folder", "other"


def path_kind(path: str | os.PathLike[str]) -> str:
    """``MISSING``, ``FILE``, ``FOLDER`` or ``OTHER`` (a FIFO, a device...), following symbolic links.

    Nothing there (no such entry, or a broken symbolic link) is ``MISSING``; every other failure to inspect
    the path raises OSError, to be reported with ``access_problem``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return MISSING
    except ValueError as exc:  # an embedded NUL byte
        raise OSError(errno.EINVAL, f"invalid path ({exc})") from None
    if stat.S_ISREG(st.st_mode):
        return FILE
    if stat.S_ISDIR(st.st_mode):
        return FOLDER
    return OTHER


def access_problem(exc: OSError) -> str:
    """One phrase for why a path cannot be inspected or read, saying what to check."""
    if isinstance(exc, PermissionError):
        return "permission denied (check the permissions of the file and of the folders above it)"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long for the file system"
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links (a link loop?)"
    return exc.strerror or str(exc)
