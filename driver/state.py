"""Where the driver keeps its local state: the journal database and the Pulumi file backend.

``$XDG_STATE_HOME/mirrorcast`` or ``~/.local/state/mirrorcast``, private (0700) because the
Pulumi backend under it holds encrypted secrets and the journal holds the stack's history. An
existing directory that others can read or write (0777 after a careless ``mkdir`` or a volume
mount) is tightened to 0700 when it is ours, and refused when it is not. The driver's files in
it are opened only if they are not symbolic links: in a directory someone else could write, a
link planted as ``journal.db`` would make the driver write (and ``chmod``) whatever it points
at.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from infra.config import UserError

__all__ = ["STATE_DIR_ENV", "StateDirError", "state_dir", "state_path"]

logger = logging.getLogger(__name__)

STATE_DIR_ENV = "MIRRORCAST_STATE_DIR"
"""Overrides the state directory (tests, containers with a mounted volume)."""


class StateDirError(UserError):
    """The state directory or a file in it is not safe to use; the message says what to fix."""


def state_dir(*, create: bool = True) -> Path:
    """The driver's state directory, private to this user.

    :param create: create it (mode 0700) when missing; default ``True``.
    :raises StateDirError: it belongs to another user and others may write to it.
    """
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        path = Path(explicit)
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "mirrorcast"
    if create and not path.is_dir():
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        # mkdir's mode is masked by the umask; the backend holds secrets, so insist.
        path.chmod(0o700)
        logger.debug("created state directory %s", path)
    elif path.is_dir():
        _tighten(path)
    return path


def state_path(name: str) -> Path:
    """``state_dir() / name``, refused if it (or SQLite's ``-wal``/``-shm`` beside it) is a link.

    :param name: a file or directory name in the state directory (``journal.db``, ``backend``).
    :raises StateDirError: the entry is a symbolic link.
    """
    path = state_dir() / name
    for candidate in (path, path.with_name(f"{name}-wal"), path.with_name(f"{name}-shm")):
        if candidate.is_symlink():
            raise StateDirError(
                f"{candidate} is a symbolic link (to {os.readlink(candidate)}); the driver does "
                "not follow links in its state directory. Remove it, or point "
                f"{STATE_DIR_ENV} at a directory of your own"
            )
    return path


def _tighten(path: Path) -> None:
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return
    if info.st_uid != os.getuid():
        if mode & 0o022:
            raise StateDirError(
                f"the state directory {path} belongs to another user (uid {info.st_uid}) and "
                f"others can write to it (mode {mode:04o}); set {STATE_DIR_ENV} to a directory "
                "of your own"
            )
        return
    path.chmod(0o700)
    logger.warning(
        "tightened the state directory %s from mode %04o to 0700 (it holds the journal and "
        "the Pulumi backend's secrets)",
        path,
        mode,
    )
