"""The backtest's user error: a run that cannot go as asked, said in a sentence to act on."""

from __future__ import annotations

from infra.config import UserError

__all__ = ["BacktestError"]


class BacktestError(UserError, ValueError):
    """A backtest cannot run as asked: a setting, the pool or metric, the strategy names, the trace.

    The CLI prints it as one line with exit code 2 (``driver.commands._common.user_errors``);
    it stays a ``ValueError`` for callers that caught that before the error family existed.
    """
