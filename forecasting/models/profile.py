"""The same-time-of-day / same-time-of-week profile: what AWS predictive scaling forecasts from.

AWS predictive scaling forecasts each hour from the same hour of the last days' load and
schedules capacity ahead of it (the ``scheduled-predictive`` baseline of the backtest mirrors it:
``driver.backtest.strategies.ScheduledPredictiveStrategy``). On strongly daily or weekly series that
simple profile beat mirrorcast's candidates at the same money (issue 15), because averaging the
same slot over several days removes the noise a one-day seasonal naive copies and does not
chase the current level the way ETS, Theta or MSTL's trend do. :class:`SeasonalProfile` makes
it a candidate like any other: selection keeps it where it wins on the series' own
rolling-origin errors, and the online calibration applies to its quantiles as to the others'.

The forecast of a step is the mean of the same step of the day over the last ``days`` days
(as many whole days as the history has, up to ``days``), blended half and half with the mean
of the same step of the week over the last two weeks once two weeks exist: the scheduled-
predictive baseline's rule, on the series' own grid. Its quantiles come from its own residuals:
the same profile computed at every recent step from the days before that step only, so the
errors are the ones this model makes ahead of time (they do not depend on the lead while the
horizon is within a day: every lead reads the same past days).

statsforecast has the pieces (``SeasonalWindowAverage`` averages a fixed window of seasons,
``SeasonalNaive`` copies one) but no adaptive window, no weekly blend and no intervals without
conformal refits; this class follows statsforecast's model protocol (``fit``/``predict``/
``forecast``/``forward``, outputs ``mean``, ``lo-L``, ``hi-L``) so ``StatsForecast`` runs it
batched beside the library's own models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ProfileReplay", "SeasonalProfile", "profile_forecast", "replay_profile_floor"]

_WEEK = 7
"""Seasons (days) per week."""


def _lagged_mean(
    y: npt.NDArray[np.float64], *, lag: int, count: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per step ``t``, the mean of ``y[t - lag], ..., y[t - count * lag]`` that exist.

    :returns: the means (NaN where no lagged value exists) and how many values each averaged.
    """
    total = np.zeros_like(y)
    seen = np.zeros_like(y)
    for j in range(1, count + 1):
        shift = j * lag
        if shift >= len(y):
            break
        past = y[:-shift]
        ok = np.isfinite(past)
        total[shift:] += np.where(ok, past, 0.0)
        seen[shift:] += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen > 0, total / np.maximum(seen, 1), np.nan), seen


def profile_forecast(
    y: npt.NDArray[np.float64],
    *,
    h: int,
    season: int,
    days: int = 7,
    weekly: bool = True,
    levels: list[int] | None = None,
    residual_days: int = 7,
) -> dict[str, npt.NDArray[np.float64]]:
    """The profile forecast of ``h`` steps after ``y``, with intervals at ``levels``.

    :param y: the history, gap-free (the engine fills gaps before fitting).
    :param h: steps ahead.
    :param season: steps per day (the engine's daily season).
    :param days: default ``7``; most past days averaged for the daily profile.
    :param weekly: default ``True``; blend in the same step of the week over the last two
        weeks, half and half, once the history holds two weeks.
    :param levels: default ``None``; interval levels (percent) for ``lo-L``/``hi-L``.
    :param residual_days: default ``7``; the residuals the intervals come from are the last
        this many days' (fewer when the history is shorter).
    :raises ValueError: when ``y`` is shorter than two seasons: with one day there is no
        earlier day to learn the intervals from.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if season < 1 or n < 2 * season:
        raise ValueError(
            f"the seasonal profile needs at least two seasons of {season} steps "
            f"(one to average, one to measure its errors on); the series has {n} steps"
        )
    # The forecast: the same slot over the last whole days (up to `days`), from the end.
    k = min(days, n // season)
    daily_profile = y[n - k * season :].reshape(k, season).mean(axis=0)
    ahead = np.arange(h)
    mean = daily_profile[ahead % season]
    # Past predictions, each from the days before its own step only (the residuals).
    daily_past, daily_seen = _lagged_mean(y, lag=season, count=days)
    past = daily_past
    week = _WEEK * season
    blend = weekly and n >= 2 * week
    if blend:
        weekly_profile = y[n - 2 * week :].reshape(2, week).mean(axis=0)
        mean = 0.5 * mean + 0.5 * weekly_profile[ahead % week]
        weekly_past, _ = _lagged_mean(y, lag=week, count=2)
        # The rule as it stood at each past step: blended once that step had two weeks.
        two_weeks = np.arange(n) >= 2 * week
        past = np.where(two_weeks, 0.5 * daily_past + 0.5 * weekly_past, daily_past)
    result: dict[str, npt.NDArray[np.float64]] = {"mean": mean}
    if not levels:
        return result
    recent = slice(max(season, n - residual_days * season), n)
    residuals = (y - past)[recent]
    residuals = residuals[np.isfinite(residuals) & (daily_seen[recent] > 0)]
    for level in sorted(levels):
        tail = (1 - level / 100) / 2
        lo, hi = np.quantile(residuals, [tail, 1 - tail])
        result[f"lo-{level}"] = mean + lo
        result[f"hi-{level}"] = mean + hi
    return result


@dataclass(frozen=True)
class ProfileReplay:
    """What a floor at the profile would have bought on a series' own recent history.

    :param profile_short: judged steps short with capacity at the larger of the reactive level
        and the profile (the ``scheduled-predictive`` mechanism: a schedule, max with tracking).
    :param reactive_short: judged steps short with reactive capacity scaled to the same total
        (reactive tuned to spend the same money: more headroom everywhere instead).
    :param cost: the profile floor's capacity over reactive's (the scale reactive got).
    :param steps: steps judged.
    """

    profile_short: int
    reactive_short: int
    cost: float
    steps: int

    @property
    def ratio(self) -> float:
        """``profile_short / reactive_short``: the replayed same-money ratio (1 at 0/0)."""
        if self.reactive_short == 0:
            return 1.0 if self.profile_short == 0 else math.inf
        return self.profile_short / self.reactive_short

    def earns_trust(self, *, max_ratio: float, min_short: int) -> bool:
        """The profile beat reactive at the same money, on enough short steps to say so."""
        return self.reactive_short >= min_short and self.ratio <= max_ratio

    def describe(self) -> str:
        return (
            f"over the last {self.steps} steps a floor at the same-hour profile would have been "
            f"short in {self.profile_short} where reactive at the same cost (x{self.cost:.2f}) "
            f"was short in {self.reactive_short}"
        )


def replay_profile_floor(
    y: npt.NDArray[np.float64],
    *,
    season: int,
    lag: int,
    days: int = 7,
    weekly: bool = True,
    headroom: float = 0.8 / 0.6,
) -> ProfileReplay:
    """Replay a profile floor against reactive at the same money on the history ``y``.

    The engine trusts no model on many series (none beats seasonal naive, or the daily cycle
    is too weak to measure), and the rules then react. AWS's scheduled mechanism still pays on
    some of them and costs on others (issue 15: same-money 0.63-0.97 on seven NAB and tweet
    traces, 1.57 on ec2_cpu fe7f93). Forecast accuracy (MASE, pinball at an hourly aggregate)
    did not tell those apart in the measurement (docs/backtest.md, "Issue 15's targets"), because
    what pays is where the profile sits *above* the current level ahead of a rise. So the
    question is asked as the backtest asks it, unit-free, on the series' own past:

    - reactive capacity at step ``t`` serves ``headroom`` x the level ``lag`` steps earlier
      (what target tracking sized, one decision-to-effect time ago; the default is the
      reactive baseline's 60% target under an 80% utilisation SLO);
    - the profile floor serves ``headroom`` x the larger of that level and the profile's
      ahead-of-time prediction of step ``t`` (from the days before ``t`` only);
    - reactive at the same money scales its capacity by the floor's total over its own.

    Steps from the second day on are judged (the profile needs one day before it).

    :param y: the history on the forecast grid, gap-free (the engine's filled series).
    :param season: steps per day.
    :param lag: steps from the level a decision reads to the capacity it buys being ready.
    :param days: the profile's daily window, as :func:`profile_forecast`.
    :param weekly: blend the weekly slot in after two weeks, as :func:`profile_forecast`.
    :param headroom: capacity over the level it was sized for (unit-free).
    :raises ValueError: when ``y`` is shorter than two seasons.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if season < 1 or n < 2 * season:
        raise ValueError(
            f"replaying the seasonal profile needs at least two seasons of {season} steps; "
            f"the series has {n} steps"
        )
    past, _ = _lagged_mean(y, lag=season, count=days)
    week = _WEEK * season
    if weekly and n >= 2 * week:
        weekly_past, _ = _lagged_mean(y, lag=week, count=2)
        past = np.where(np.arange(n) >= 2 * week, 0.5 * past + 0.5 * weekly_past, past)
    t = np.arange(max(season, lag), n)
    level, demand, profile = y[t - lag], y[t], past[t]
    ok = np.isfinite(level) & np.isfinite(demand) & np.isfinite(profile) & (level >= 0)
    level, demand, profile = level[ok], demand[ok], profile[ok]
    floor = np.maximum(level, profile)
    total = float(level.sum())
    cost = float(floor.sum()) / total if total > 0 else 1.0
    return ProfileReplay(
        profile_short=int(np.sum(demand > headroom * floor)),
        reactive_short=int(np.sum(demand > headroom * cost * level)),
        cost=cost,
        steps=int(ok.sum()),
    )


class SeasonalProfile:
    """statsforecast-protocol model of :func:`profile_forecast` (parameter-free).

    :param season_length: steps per day.
    :param days: most past days averaged (default 7, as AWS predictive scaling's daily part).
    :param weekly: blend in the same step of the week once two weeks exist (default ``True``).
    :param alias: the output column name.
    """

    uses_exog = False

    def __init__(
        self, season_length: int, *, days: int = 7, weekly: bool = True, alias: str = "profile"
    ) -> None:
        self.season_length = season_length
        self.days = days
        self.weekly = weekly
        self.alias = alias

    def __repr__(self) -> str:
        return self.alias

    def new(self) -> SeasonalProfile:
        """A fresh copy (statsforecast copies a model per series)."""
        return SeasonalProfile(
            self.season_length, days=self.days, weekly=self.weekly, alias=self.alias
        )

    def _run(self, y: Any, h: int, level: list[int] | None) -> dict[str, Any]:
        return profile_forecast(
            np.asarray(y, dtype=float),
            h=h,
            season=self.season_length,
            days=self.days,
            weekly=self.weekly,
            levels=level,
        )

    def fit(self, y: Any, X: Any = None) -> SeasonalProfile:
        """Keep the history: the profile fits no parameters."""
        self.y_ = np.asarray(y, dtype=float)
        return self

    def predict(self, h: int, X: Any = None, level: list[int] | None = None) -> dict[str, Any]:
        """The forecast after the history given to :meth:`fit`."""
        if getattr(self, "y_", None) is None:
            raise RuntimeError(
                "this seasonal profile holds no history (a pickled fit keeps none); "
                "call forward() with the series"
            )
        return self._run(self.y_, h, level)

    def __getstate__(self) -> dict[str, Any]:
        # A kept fit is persisted per series (forecasting.fits): the history it was fitted on
        # is not a parameter, and forward() is always handed the newest one.
        state = dict(self.__dict__)
        state.pop("y_", None)
        return state

    def predict_in_sample(self, level: list[int] | None = None) -> dict[str, Any]:
        """Not offered: nothing in mirrorcast asks for in-sample fits."""
        raise NotImplementedError("the seasonal profile gives no in-sample fitted values")

    def forecast(
        self,
        y: Any,
        h: int,
        X: Any = None,
        X_future: Any = None,
        level: list[int] | None = None,
        fitted: bool = False,
    ) -> dict[str, Any]:
        """The forecast after ``y`` without keeping it (statsforecast's batched path)."""
        if fitted:
            raise NotImplementedError("the seasonal profile gives no in-sample fitted values")
        return self._run(y, h, level)

    def forward(
        self,
        y: Any,
        h: int,
        X: Any = None,
        X_future: Any = None,
        level: list[int] | None = None,
        fitted: bool = False,
    ) -> dict[str, Any]:
        """The forecast after newer data ``y`` (the same as :meth:`forecast`: no parameters)."""
        return self.forecast(y, h, X, X_future, level, fitted)
