"""Owner-only files for the engine's cache (model choices, numba's compiled kernels).

The cache sits under the driver's state directory next to the journal and the Pulumi backend,
which are owner-only; a world-readable cache would tell other local users which series exist
and how they behave. Directories are made 0700 and files 0600 whatever the umask.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["private_dir", "restrict_tree", "write_private", "write_private_bytes"]

logger = logging.getLogger(__name__)

_DIR_MODE = 0o700
_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) and make ``path`` itself owner-only (0700).

    :param path: the directory.
    :returns: ``path``.
    """
    path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask and ignored for an existing directory.
    os.chmod(path, _DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as an owner-only (0600) file, replacing it atomically.

    :param path: the file; a ``.tmp`` sibling is written first and renamed over it.
    :param text: the content (UTF-8).
    """
    write_private_bytes(path, text.encode("utf-8"))


def write_private_bytes(path: Path, data: bytes) -> None:
    """:func:`write_private` for bytes (the engine's kept fits)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        # An existing tmp file keeps its old mode through O_CREAT: set it explicitly.
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
    finally:
        if fd != -1:
            os.close(fd)
    tmp.replace(path)


def restrict_tree(path: Path) -> int:
    """Make every directory (0700) and file (0600) under ``path`` owner-only.

    For trees written by other libraries (numba's cache follows the umask).

    :param path: the root; a missing root is left alone.
    :returns: how many entries had their mode changed.
    """
    changed = 0
    if not path.is_dir():
        return changed
    for root, dirs, files in os.walk(path):
        for name, mode in [(d, _DIR_MODE) for d in dirs] + [(f, _FILE_MODE) for f in files]:
            entry = Path(root) / name
            try:
                current = stat.S_IMODE(entry.lstat().st_mode)
                if current & 0o077:
                    os.chmod(entry, mode)
                    changed += 1
            except FileNotFoundError:  # numba replaces files as it writes them
                continue
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, _DIR_MODE)
        changed += 1
    return changed
