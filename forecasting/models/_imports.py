"""Importing statsforecast without dask.dataframe, and without statsmodels until a model needs it.

Two costs of a one-shot cycle's start (CronJob, systemd timer), measured with
``python -X importtime``, come from statsforecast's module-level imports, not from the work a
warm cycle does:

- utilsforecast (which statsforecast, mlforecast and neuralforecast import) tries
  ``from dask.dataframe import DataFrame`` only to name the type in a ``TypeVar``; with dask
  installed (the ``ml`` extra, or a Dask fleet backend) that costs about 1.1 s. Unless
  dask.dataframe is already loaded (someone asked for a distributed frame), the first import of
  statsforecast runs with dask.dataframe marked absent, which utilsforecast's own
  ``except ModuleNotFoundError`` handles; the mark is removed right after, so a later
  ``import dask.dataframe`` works as usual.
- ``statsforecast/__init__.py`` imports ``statsforecast.distributed.fugue`` (its backend for
  Spark, Dask and Ray frames, registered as a candidate of ``make_backend``) and
  ``statsforecast.core`` imports ``fugue.execution.factory``: together all of fugue, with
  fsspec and its workflow and SQL layers (about 0.5 s quiet, 1.3 s under load, 116 modules of a
  warm cycle's 1,511). Both are deferred like the rest: ``core``'s two fugue functions are
  stand-ins, imported at the first ``StatsForecast.forecast`` or ``cross_validation`` (which
  ask whether a fugue engine is in context), never by a warm cycle that applies kept fits;
  :func:`forecasting.distributed.forecast_distributed`, the one route that hands statsforecast
  a Dask frame, imports ``statsforecast.distributed.fugue`` itself, which registers the backend.
- ``statsforecast.models`` imports every model's module, and those import ``statsmodels.api``
  (arima, mstl) and ``statsmodels.tsa.seasonal``/``stattools`` (theta, ets, ces): 1-1.8 s here,
  although a warm cycle that applies a kept fit (:mod:`forecasting.fits`) calls none of them
  (they fit, decompose and test seasonality); likewise SciPy's ``signal`` (ARIMA's
  differencing), ``optimize`` (ARIMA's, TBATS' and GARCH's fits), ``linalg`` (TBATS' fit),
  ``special`` (ARIMA's Box-Cox inverse) and ``stats`` (0.45-0.6 s with its docstring processing:
  ARIMA's and Theta's fits, the ``norm.ppf`` of ETS's, ARIMA's and CES's normal intervals, and
  the non-normal error distributions). Theta's intervals with normal errors sample with numpy's
  generator (``statsforecast.simulation.sample_errors``) and so call none of SciPy: the demo's
  warm cycle, whose two series run Theta, imports no ``scipy.stats`` at all. The normal
  intervals of ETS, ARIMA and CES take their z from ``scipy.stats.norm.ppf``; the same numbers
  come from ``scipy.special.ndtri`` with scipy's own arithmetic around it (:class:`_FrozenNormal`,
  bit for bit), so a warm cycle applying kept ETS or ARIMA fits loads ``scipy.special`` (about
  0.14 s) and not ``scipy.stats``. While
  statsforecast's modules are first imported, those modules are *deferred*: the names
  statsforecast's modules import from them are bound to stand-ins that import the real module
  the first time they are called or read (:class:`_Deferred`), so a model that does use them
  (a fit, a seasonal test, an ARIMA) pays the import then, and gets the very same objects.
  Only statsforecast's own modules get stand-ins (checked by the importing module's name); any
  other module importing one of these during that window gets the real thing. statsforecast
  imports two of its own modules inside functions (``simulation`` and ``distributions``, at a
  model's first interval), after the window: they are imported inside it (:data:`_LATE`), or
  their ``from scipy import stats`` would import the real module then. Python's
  ``importlib.util.LazyLoader`` is not enough here: a ``from module import name`` reads the
  attribute at once and so runs the module at once.

``tests/forecasting/test_import_cost.py`` checks both in fresh interpreters, that a fit
that needs the deferred modules still gives the results it gave with them imported eagerly
(and statsforecast's own normal quantiles), and :class:`_FrozenNormal` against
``scipy.stats.norm``.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from typing import Any

__all__ = ["DEFERRED", "import_statsforecast"]

_SKIPPED = "dask.dataframe"

DEFERRED: tuple[str, ...] = (
    "statsmodels.api",
    "statsmodels.tsa.seasonal",
    "statsmodels.tsa.stattools",
    "scipy.signal",
    "scipy.stats",
    "scipy.optimize",
    "scipy.special",
    "scipy.linalg",
    "fugue.execution.factory",
    "statsforecast.distributed.fugue",
)
"""Modules statsforecast imports at module level that a warm forecast does not need."""

_LATE: tuple[str, ...] = ("statsforecast.simulation", "statsforecast.distributions")
"""statsforecast's modules that its functions import on first call (``from statsforecast.simulation
import sample_errors`` in every model's interval code), imported in the window with the rest."""

_lock = threading.RLock()
_window_open = False


def _real(name: str) -> types.ModuleType:
    """The real module ``name``, imported now if only its stand-in is registered."""
    with _lock:
        if isinstance(sys.modules.get(name), _DeferredModule):
            del sys.modules[name]
        return importlib.import_module(name)


class _Deferred:
    """A name imported from a deferred module: the real object, fetched on first use."""

    __slots__ = ("_module", "_name", "_target")

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name
        self._target: Any = None

    def _resolve(self) -> Any:
        if self._target is None:
            self._target = getattr(_real(self._module), self._name)
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._resolve()(*args, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._resolve(), attribute)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # Pickled as what it stands for, so a kept fit never carries a stand-in.
        return (_named, (self._module, self._name))

    def __repr__(self) -> str:
        return f"<deferred {self._module}.{self._name}>"


def _named(module: str, name: str) -> Any:
    return getattr(_real(module), name)


class _DeferredModule(types.ModuleType):
    """Stands in ``sys.modules`` for a deferred module while statsforecast is imported.

    Afterwards it stays only where statsforecast bound it (``import statsmodels.api as sm``,
    ``from scipy import stats``) and hands out the real module's attributes.
    """

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if _window_open and caller.partition(".")[0] == "statsforecast":
            # ``from <module> import <attribute>`` in statsforecast's module body.
            return _Deferred(self.__name__, attribute)
        return getattr(_real(self.__name__), attribute)


def import_statsforecast() -> None:
    """Import statsforecast (once) without dask.dataframe, and with :data:`DEFERRED` deferred."""
    global _window_open
    if "statsforecast.models" in sys.modules:
        return
    with _lock:
        if "statsforecast.models" in sys.modules:
            return
        blocked = _SKIPPED not in sys.modules
        if blocked:
            # ``None`` in sys.modules makes ``import dask.dataframe`` raise ModuleNotFoundError.
            sys.modules[_SKIPPED] = None  # type: ignore[assignment]
        stand_ins = {name: _DeferredModule(name) for name in DEFERRED if name not in sys.modules}
        sys.modules.update(stand_ins)
        _window_open = True
        try:
            importlib.import_module("statsforecast.models")
            for late in _LATE:
                importlib.import_module(late)
            _normal_quantiles_without_scipy_stats()
        finally:
            _window_open = False
            for name, stand_in in stand_ins.items():
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]
            if blocked and sys.modules.get(_SKIPPED, 0) is None:
                del sys.modules[_SKIPPED]


# --------------------------------------------------------------------------- normal quantiles


class _FrozenNormal:
    """``scipy.stats.norm(scale=scale)`` whose ``ppf`` needs only ``scipy.special.ndtri``.

    statsforecast's normal intervals (ETS, ARIMA, CES: ``utils._quantiles``) ask
    ``frozen_error_distribution(1.0, "normal").ppf(p)`` for the z of each level, and that one
    call imported all of ``scipy.stats`` (0.45-0.6 s, mostly its docstring processing) at a warm
    one-shot cycle's first interval. ``ppf`` here is scipy's own arithmetic for the normal law
    (``rv_continuous.ppf`` with ``norm._ppf = special.ndtri``: NaN outside [0, 1] or for a scale
    that is not positive, the support's ends at 0 and 1, ``ndtri(q) * scale + loc`` inside),
    checked bit for bit against ``scipy.stats.norm`` in tests/forecasting/test_import_cost.py;
    anything else (``rvs``, ``pdf``, ...) is the real frozen distribution's.
    """

    __slots__ = ("_real", "scale")

    def __init__(self, scale: Any) -> None:
        self.scale = scale
        self._real: Any = None

    def ppf(self, q: Any) -> Any:
        import numpy as np
        from scipy.special import ndtri

        q, scale = np.asarray(q), np.asarray(self.scale)
        q, scale = np.broadcast_arrays(q, scale)
        valid = scale > 0  # norm takes no shape arguments; loc is 0
        output = np.full(q.shape, np.nan)
        output[valid & (q == 0)] = -np.inf
        output[valid & (q == 1)] = np.inf
        inside = valid & (q > 0) & (q < 1)
        if np.any(inside):
            output[inside] = ndtri(q[inside]) * scale[inside] + 0
        return output[()] if output.ndim == 0 else output

    def __getattr__(self, attribute: str) -> Any:
        if self._real is None:
            self._real = _real("scipy.stats").norm(scale=self.scale)
        return getattr(self._real, attribute)


def _normal_quantiles_without_scipy_stats() -> None:
    """Route statsforecast's normal ``frozen_error_distribution`` through :class:`_FrozenNormal`.

    ``utils._quantiles`` imports ``frozen_error_distribution`` from ``statsforecast.distributions``
    at each call, so rebinding the module's name reaches it; every other distribution name goes
    to statsforecast's own function, unchanged.
    """
    distributions: Any = sys.modules["statsforecast.distributions"]
    original = distributions.frozen_error_distribution

    def frozen_error_distribution(sigma: float, distribution: str, params: Any = None) -> Any:
        if distribution == "normal":
            return _FrozenNormal(sigma)
        return original(sigma, distribution, params)

    frozen_error_distribution.__wrapped__ = original  # type: ignore[attr-defined]
    frozen_error_distribution.__doc__ = original.__doc__
    distributions.frozen_error_distribution = frozen_error_distribution
