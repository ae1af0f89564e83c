"""Editing ``stacks/Pulumi.<stack>.yaml`` in place: only the changed keys differ.

The stack file is what people review, so a driver edit must read like a person's: comments,
key order, quoting, flow-style lists and indentation all survive (ruamel.yaml round-trip), and
the diff shows exactly the keys the plan changes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.util import load_yaml_guess_indent

from infra.config import NAMESPACE, ConfigPathError, UserError, set_path
from policies import ConfigChange

__all__ = ["StackFileError", "edit_stack_text"]

logger = logging.getLogger(__name__)


class StackFileError(UserError, ValueError):
    """The stack file cannot take the change; the message names the key path."""


def _plain(value: Any) -> Any:
    """Enum members as their value, so the YAML shows ``active`` and not a Python repr."""
    if hasattr(value, "value") and isinstance(value.value, str | int | float):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _mapping_indent(text: str) -> int:
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if stripped and not stripped.startswith(("#", "-")) and len(stripped) < len(line):
            return len(line) - len(stripped)
    return 2


def edit_stack_text(
    text: str, changes: Iterable[ConfigChange], *, source: str = "stack file"
) -> str:
    """``text`` with each change's ``mirrorcast:<path>`` key set to its new value.

    :param text: the stack file's YAML.
    :param changes: the plan's changes (dotted paths below the ``mirrorcast:`` namespace).
    :param source: the file name, for error messages; default ``"stack file"``.
    """
    # ruamel guesses the block-sequence indent and dash offset; the mapping indent is the first
    # nested key's, so files indented by 2 with dashes at +2 come back byte for byte.
    _, sequence_indent, dash_offset = load_yaml_guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a person's long lines
    yaml.indent(
        mapping=_mapping_indent(text),
        sequence=sequence_indent or 2,
        offset=dash_offset or 0,
    )
    document = yaml.load(text)
    if not isinstance(document, CommentedMap):
        raise StackFileError(f"{source}: expected a mapping with a 'config:' key")
    config = document.get("config")
    if not isinstance(config, CommentedMap):
        raise StackFileError(f"{source}: has no 'config:' mapping to edit")
    for change in changes:
        try:
            set_path(config, f"{NAMESPACE}:{change.path}", _plain(change.new), make=CommentedMap)
        except ConfigPathError as exc:
            at = exc.at.removeprefix(f"{NAMESPACE}:")
            raise StackFileError(
                f"{source}: {at} is not a mapping, cannot set {change.path}"
            ) from None
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()
