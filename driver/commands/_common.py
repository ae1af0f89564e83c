"""What the command modules share: stack loading, one-line user errors, JSON output."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from driver.redact import redact_text
from infra.config import UserError

__all__ = [
    "EXIT_USER_ERROR",
    "err_console",
    "out_console",
    "parse_at",
    "print_json",
    "project_root",
    "user_errors",
]

logger = logging.getLogger(__name__)

EXIT_USER_ERROR = 2

out_console = Console()
err_console = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors a person must fix into one clear message and exit code 2 (no traceback).

    The one place every command handles them: whatever derives from
    :class:`infra.config.UserError` (config, rules, sources, forecasting, journal, gitops,
    traces, ...). Anything else is a defect and keeps its traceback.
    """
    try:
        yield
    except UserError as exc:
        message = redact_text(str(exc)).strip() or type(exc).__name__
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USER_ERROR) from None


def project_root() -> Path:
    """The project root (the directory holding ``Pulumi.yaml``)."""
    from infra.config import find_project_root

    return find_project_root()


def parse_at(value: str | None) -> datetime | None:
    """``--at`` as a UTC datetime; ``typer.BadParameter`` naming the option otherwise."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO 8601 time such as 2026-11-22T18:00:00Z, got {value!r}",
            param_hint="--at",
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (redacted, one document)."""
    sys.stdout.write(redact_text(json.dumps(data, indent=2, default=str)) + "\n")
