"""Structured logs: Rich on a terminal, one JSON object per line everywhere else.

Every record passes through :func:`driver.redact.redact_text`, so a secret that reaches a log
call by accident (in an exception from a library, say) is still not written.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from rich.logging import RichHandler

from driver.redact import redact_text

__all__ = ["JsonFormatter", "setup_logging"]

logger = logging.getLogger(__name__)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        return True


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to ``sys.stderr`` as it is when a record is emitted.

    A plain ``StreamHandler(sys.stderr)`` keeps the stream it was built with; when something
    replaces ``sys.stderr`` (a test runner's capture, a daemon redirecting its output) and
    closes the old one, every later record fails with "Logging error".
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def setup_logging(*, level: str = "INFO", json_logs: bool | None = None) -> None:
    """Configure the root logger once.

    :param level: log level name; default ``INFO``.
    :param json_logs: JSON lines (``True``) or Rich (``False``); default JSON unless stderr is a
        terminal.
    """
    use_json = (not sys.stderr.isatty()) if json_logs is None else json_logs
    handler: logging.Handler
    if use_json:
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
    else:
        handler = RichHandler(rich_tracebacks=False, show_path=False)
    handler.addFilter(_RedactingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_mirrorcast", False):
            root.removeHandler(existing)
    setattr(handler, "_mirrorcast", True)  # noqa: B010  (marks our handler for re-setup)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Library chatter (HTTP connection pools, alembic's migration banner) is not the operator's.
    for noisy in ("urllib3", "alembic", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
