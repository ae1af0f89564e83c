"""The project's error family, and config errors a person can act on.

Every exception mirrorcast raises on purpose derives from :class:`MirrorcastError`; those a
person fixes (a config value, a rule, a file, a URL, an unreachable backend they configured)
derive from its :class:`UserError` branch, which the CLI turns into one line and exit code 2
(``driver.commands._common.user_errors``). The family sits here, in the bottom layer, so every
package can derive from it without importing upwards (the manner of Pulumi's
``automation/errors.py``: one base, named branches). Each class keeps the builtin it derived
from before (``ValueError``, ``RuntimeError``) as a second base, so existing handlers still hold.

A config error names the file, the line, the key path, and what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ConfigError", "ConfigIssue", "MirrorcastError", "UnknownCloudError", "UserError"]


class MirrorcastError(Exception):
    """Base of every error mirrorcast raises on purpose."""


class UserError(MirrorcastError):
    """An error a person can act on: the message says what to fix; no traceback is needed."""


class UnknownCloudError(MirrorcastError):
    """A cloud (or a balancer kind) that no backend is registered for: the Pulumi program's
    ``infra.clouds.CLOUDS`` or the driver's ``driver.observers.OBSERVERS``. The message names
    the cloud and the registered ones; nothing falls back to another cloud."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a stack file.

    :param path: dotted key path below the ``mirrorcast:`` namespace, e.g. ``pools.web.mirror.percent``.
    :param message: what is wrong, e.g. ``must be between 0 and 100, got 140``.
    :param line: 1-based line in the file, when known.
    :param column: 1-based column in the file, when known.
    """

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def render(self, source: str | None = None) -> str:
        where = ""
        if source:
            where = source
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        # Keys from a file may hold line breaks or control characters; quoted, they cannot
        # split one issue over several lines or hide what the key was.
        path = self.path if self.path.isprintable() else repr(self.path)
        message = self.message if self.message.isprintable() else repr(self.message)[1:-1]
        prefix = f"{path}: " if path else ""
        return f"{where}{prefix}{message}"


@dataclass
class ConfigError(UserError):
    """A stack's config cannot be used. ``str()`` gives one line per issue."""

    issues: list[ConfigIssue]
    source: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "\n".join(issue.render(self.source) for issue in self.issues)
