"""Where the driver keeps its local state: the journal database and the Pulumi file backend.

``$XDG_STATE_HOME/mirrorcast`` or ``~/.local/state/mirrorcast``, created private (0700) because
the Pulumi backend under it holds encrypted secrets and the journal holds the stack's history.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["STATE_DIR_ENV", "state_dir"]

logger = logging.getLogger(__name__)

STATE_DIR_ENV = "MIRRORCAST_STATE_DIR"
"""Overrides the state directory (tests, containers with a mounted volume)."""


def state_dir(*, create: bool = True) -> Path:
    """The driver's state directory.

    :param create: create it (mode 0700) when missing; default ``True``.
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
    return path
