"""Kept fits on disk, so a one-shot cycle (CronJob, systemd timer) neither reselects nor refits.

The engine keeps each series' fitted model between cycles and only applies its parameters to
new observations (about 1 ms) until ``refit_every``; a refit costs 80-1,500 ms per series. A
process that runs one cycle and exits lost those fits and refitted every series, every time.
This store writes each fit next to the model choices (``<cache>/fits/<pool>__<metric>.pkl``),
owner-only, and hands it back only for the data it was fitted on: like a model choice, a fit
carries an anchor (its series' last observed values and times, :func:`~forecasting.selection.anchor_of`)
and is reused only while the series still holds those values there, so a replaced metrics file
or another source under the same name is fitted afresh.

Fits are pickles (statsforecast's fitted models are plain Python objects with numpy arrays).
Unpickling runs code named in the file, so a file is read only when this user owns it and no
one else may write it (the directory is 0700, the files 0600: :mod:`forecasting._private`), and
only when it was written by the same statsforecast and Python versions; anything else is
ignored and the series refitted. It is a cache: any unreadable file means a refit, never a
failed cycle.
"""

from __future__ import annotations

import logging
import os
import pickle
import stat
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from forecasting._private import private_dir, write_private_bytes
from forecasting.models._imports import import_statsforecast
from forecasting.selection import SelectionStore, anchor_holds, anchor_of

__all__ = ["FitStore"]

logger = logging.getLogger(__name__)

_FORMAT = 1


def _library_versions() -> tuple[str, ...]:
    try:
        statsforecast = version("statsforecast")
    except PackageNotFoundError:  # pragma: no cover - statsforecast is a core dependency
        statsforecast = "absent"
    return (f"format {_FORMAT}", f"python {sys.version_info[:2]}", f"statsforecast {statsforecast}")


@dataclass(frozen=True)
class _Record:
    versions: tuple[str, ...]
    anchor: tuple[tuple[str, float], ...]
    kept: Any


class FitStore:
    """Fitted models keyed by ``pool/metric``: pickles under ``directory``, or nothing.

    :param directory: where to keep ``<pool>__<metric>.pkl``; ``None`` stores nothing (the
        engine's in-memory fits are then all there is, as before).
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._versions = _library_versions()
        if directory is not None:
            private_dir(directory)

    def path(self, pool: str, metric: str) -> Path | None:
        """The file of a series (``None`` without a directory)."""
        if self.directory is None:
            return None
        return self.directory / f"{SelectionStore.key(pool, metric)}.pkl"

    def save(self, pool: str, metric: str, kept: Any, *, values: pd.Series) -> None:
        """Keep ``kept``, fitted on ``values`` (written atomically, owner-only)."""
        path = self.path(pool, metric)
        if path is None:
            return
        record = _Record(self._versions, anchor_of(values), kept)
        write_private_bytes(path, pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))

    def load(self, pool: str, metric: str, *, values: pd.Series) -> Any | None:
        """The fit kept for this series if it was fitted on this data, else ``None``.

        :param values: the series now (UTC index): the fit is returned only if it still holds
            the values the fit ended on, at their times.
        """
        path = self.path(pool, metric)
        if path is None:
            return None
        try:
            info = path.lstat()
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            logger.warning(
                "ignoring kept fit %s: not a regular file owned by this user and writable by it "
                "alone; refitting",
                path,
            )
            return None
        import_statsforecast()  # the fit's classes, without dask.dataframe
        try:
            record = pickle.loads(path.read_bytes())
        except Exception as exc:  # any unreadable cache entry means a refit, not a failure
            logger.warning("ignoring unreadable kept fit %s (%s); refitting", path, exc)
            return None
        if not isinstance(record, _Record) or record.versions != self._versions:
            logger.info("kept fit %s was written by other library versions; refitting", path)
            return None
        if not anchor_holds(record.anchor, values):
            return None
        return record.kept
