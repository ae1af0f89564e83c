"""statsforecast's normal interval multipliers computed once per set of levels, not per forecast.

statsforecast 2.x (``statsforecast.utils._quantiles``, called by ``_calculate_intervals`` in
every model's ``forecast`` and ``forward`` that returns intervals) builds a new frozen SciPy
distribution on every call, ``scipy.stats.norm(scale=1.0)``, only to read ``ppf`` at
``0.5 + level / 200``. A frozen distribution is a new ``rv_continuous`` instance, about
1.7 ms each on the shared 2-core machine: at 20,000 series that was most of a second of every
second of a warm cycle's model updates (``benchmarks/scale.py --profile``). The multipliers
depend only on the levels (and the distribution, whose non-default values are left alone), so
the first answer for a set of levels is kept and copied out after: the same numbers, bit for
bit, as the library's own call (``tests/forecasting/test_interval_multipliers.py``).

Installed by :func:`cache_normal_quantiles` into ``statsforecast.utils`` (whose global
``_calculate_intervals`` looks up) and into the statsforecast modules that imported the same
function by name (``models``: fitted intervals; ``distributions``, ``arima``: ARIMA passes
its error distribution's parameters, which go to the library's function unchanged). A
statsforecast without ``_quantiles`` (another major version; the project pins ``>=2.0,<3``)
is left as it is: slower, never different.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["cache_normal_quantiles"]

_BOUND_BY_NAME = (
    "statsforecast.utils",
    "statsforecast.distributions",
    "statsforecast.models",
    "statsforecast.arima",
)
"""Where statsforecast 2.x binds ``_quantiles`` (``from .utils import _quantiles``)."""

_lock = threading.Lock()
_installed = False


def cache_normal_quantiles() -> None:
    """Keep statsforecast's normal-distribution interval multipliers per set of levels."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        import statsforecast.utils as utils

        original = getattr(utils, "_quantiles", None)
        if callable(original) and not getattr(original, "mirrorcast_cached", False):
            cached = _cached(original)
            for name in _BOUND_BY_NAME:
                module = sys.modules.get(name)
                if module is not None and getattr(module, "_quantiles", None) is original:
                    module._quantiles = cached  # type: ignore[attr-defined]
        _installed = True


def _cached(original: Callable[..., Any]) -> Callable[..., Any]:
    kept: dict[tuple[float, ...], np.ndarray] = {}

    def quantiles(level: Any, distribution: str = "normal", dist_params: Any = None) -> Any:
        if distribution != "normal" or dist_params:
            return original(level, distribution, dist_params)
        key = tuple(float(v) for v in np.asarray(level, dtype=float).ravel())
        answer = kept.get(key)
        if answer is None:
            answer = kept.setdefault(key, np.asarray(original(level, distribution, dist_params)))
        # A copy: the caller owns its array, and the kept one stays as computed.
        return answer.copy()

    quantiles.mirrorcast_cached = True  # type: ignore[attr-defined]
    quantiles.__wrapped__ = original  # type: ignore[attr-defined]
    return quantiles
