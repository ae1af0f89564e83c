"""Config errors a person can act on: the file, the line, the key path, and what was wrong."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ConfigError", "ConfigIssue"]


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
class ConfigError(Exception):
    """A stack's config cannot be used. ``str()`` gives one line per issue."""

    issues: list[ConfigIssue]
    source: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "\n".join(issue.render(self.source) for issue in self.issues)
