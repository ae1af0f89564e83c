"""The one writer of dotted config paths (``pools.web.mirror.state``) into a mapping.

A plan's :class:`~policies.ConfigChange` names a key by such a path; the same path is what
Pulumi's ``set_config(..., path=True)`` takes. Two places write these paths into mappings: the
gitops editor into the stack file's round-trip YAML (``driver.stack_yaml``), creating sections
the file leaves to defaults, and the backtest into its simulated stack's config dump
(``driver.backtest.strategies``), where every path must already exist. Both use :func:`set_path`.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from infra.config._errors import UserError

__all__ = ["ConfigPathError", "set_path"]


class ConfigPathError(UserError, ValueError):
    """A path cannot be set: a section on the way is missing or is not a mapping.

    :param path: the whole path being set.
    :param at: the part of it that is the problem (``pools.web.mirror.state``).
    :param reason: ``missing`` or ``not a mapping``.
    """

    def __init__(self, path: str, *, at: str, reason: str) -> None:
        self.path = path
        self.at = at
        self.reason = reason
        super().__init__(
            f"{at} is {'not in the config' if reason == 'missing' else reason}, cannot set {path}"
        )


def set_path(
    root: MutableMapping[str, Any],
    path: str,
    value: Any,
    *,
    make: Callable[[], MutableMapping[str, Any]] | None = None,
) -> None:
    """Set ``path`` (dot-separated keys) in ``root`` to ``value``.

    :param root: the mapping the path starts in.
    :param path: keys joined by ``.``; the first may hold a ``:`` (``mirrorcast:pools``).
    :param value: what the last key is set to.
    :param make: builds a missing section on the way (the stack file's ``CommentedMap``);
        without it a missing section is an error.
    :raises ConfigPathError: a section on the way is missing (without ``make``) or not a mapping.
    """
    parts = path.split(".")
    node: MutableMapping[str, Any] = root
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            if make is None:
                raise ConfigPathError(path, at=".".join(parts[: i + 1]), reason="missing")
            child = node[part] = make()
        if not isinstance(child, MutableMapping):
            raise ConfigPathError(path, at=".".join(parts[: i + 1]), reason="not a mapping")
        node = child
    node[parts[-1]] = value
