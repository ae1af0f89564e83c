"""Importing statsforecast without dask.dataframe.

utilsforecast (which statsforecast, mlforecast and neuralforecast import) tries
``from dask.dataframe import DataFrame`` at import time, only to name the type in a ``TypeVar``;
with dask installed (the ``ml`` extra, or a Dask fleet backend) that costs about 1.1 s of a
one-shot cycle's start (measured with ``python -X importtime``). Unless dask.dataframe is
already loaded (someone asked for a distributed frame), the first import of statsforecast runs
with dask.dataframe marked absent, which utilsforecast's own ``except ModuleNotFoundError``
handles; the mark is removed right after, so a later ``import dask.dataframe`` works as usual.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["import_statsforecast"]

_SKIPPED = "dask.dataframe"


def import_statsforecast() -> None:
    """Import statsforecast (once) without pulling in dask.dataframe."""
    if "statsforecast.models" in sys.modules:
        return
    blocked = _SKIPPED not in sys.modules
    if blocked:
        # ``None`` in sys.modules makes ``import dask.dataframe`` raise ModuleNotFoundError.
        sys.modules[_SKIPPED] = None  # type: ignore[assignment]
    try:
        importlib.import_module("statsforecast.models")
    finally:
        if blocked and sys.modules.get(_SKIPPED, 0) is None:
            del sys.modules[_SKIPPED]
