"""Limits on YAML structure, checked on the parser's event stream before anything is built.

Two shapes of a small file cost without bound once loaded:

- an **alias bomb**: ``a: &a [x, x, ...]``, ``b: &b [*a, *a, ...]``, ... is a few KB of text but
  expands to billions of nodes when the document is copied into plain dicts and validated (a
  3.5 KB stack file under ``mirrorcast:tags`` took 927 MB and 90 s);
- **deep nesting**: ``[[[[...]]]]`` thousands deep makes the recursive composer (and every
  recursive walk after it) raise ``RecursionError``.

The event stream is produced by ruamel's non-recursive parser, so this check itself is linear
in the text and never recurses: it tracks the nesting depth and, for each anchor, how many
nodes an alias to it stands for, and stops at the first event past a limit. The error is a
:class:`ruamel.yaml.error.MarkedYAMLError`, so every loader that already reports YAML syntax
errors with their line and column reports these the same way.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, StreamMark
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)

from infra.config._errors import UserError

__all__ = ["MAX_ALIAS_NODES", "MAX_YAML_DEPTH", "YamlLimitError", "check_yaml_limits"]

MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings and sequences accepted (a stack file needs about 8)."""

MAX_ALIAS_NODES = 100_000
"""Most nodes that aliases may add to a document when expanded (``<<: *defaults`` in each of
200 pools adds a few thousand)."""


class YamlLimitError(UserError, MarkedYAMLError):
    """The YAML nests too deep or its aliases expand too far; ``problem_mark`` is where."""


def check_yaml_limits(
    text: str, *, max_depth: int = MAX_YAML_DEPTH, max_alias_nodes: int = MAX_ALIAS_NODES
) -> None:
    """Raise :class:`YamlLimitError` if ``text`` nests deeper than ``max_depth`` or its aliases
    expand to more than ``max_alias_nodes`` nodes.

    Syntax errors are raised as ruamel raises them (a ``MarkedYAMLError`` with the position);
    an alias to an unknown anchor is left for the loader to report.

    :param text: the YAML document(s).
    :param max_depth: deepest nesting accepted; default :data:`MAX_YAML_DEPTH`.
    :param max_alias_nodes: most nodes aliases may add; default :data:`MAX_ALIAS_NODES`.
    """
    _check_flow_depth(text, max_depth=max_depth)
    if _within_limits_by_libyaml(text, max_depth=max_depth, max_alias_nodes=max_alias_nodes):
        return
    # Over a limit, unparsable, or no libyaml: ruamel's own events decide, so the error (and
    # its position) is the one the loader's parser would give.
    _walk(
        YAML(typ="rt").parse(io.StringIO(text)),
        max_depth=max_depth,
        max_alias_nodes=max_alias_nodes,
        kinds=(ScalarEvent, AliasEvent, CollectionStartEvent, CollectionEndEvent),
    )


def _within_limits_by_libyaml(text: str, *, max_depth: int, max_alias_nodes: int) -> bool:
    """Whether libyaml's C parser finds ``text`` within both limits (``False``: look again).

    ruamel's pure-Python parser costs about 9 ms a pool of a stack file for this walk alone
    (0.88 s of CPU for a 100-pool file, 2.5 s for its whole load), paid for every stack at a
    fleet's start; libyaml gives the same event stream in a quarter of that. Anchors, aliases
    and nesting are syntax, the same in YAML 1.1 and 1.2, so its events measure the same
    structure; anything it refuses or finds over a limit is walked again with ruamel's events.
    """
    try:
        import yaml  # PyYAML, with libyaml when its wheel has it
    except ImportError:  # pragma: no cover - pulumi depends on PyYAML
        return False
    if not getattr(yaml, "__with_libyaml__", False):
        return False
    try:
        _walk(
            yaml.parse(io.StringIO(text), Loader=yaml.CSafeLoader),
            max_depth=max_depth,
            max_alias_nodes=max_alias_nodes,
            kinds=(
                yaml.events.ScalarEvent,
                yaml.events.AliasEvent,
                yaml.events.CollectionStartEvent,
                yaml.events.CollectionEndEvent,
            ),
        )
    except (YamlLimitError, yaml.YAMLError):
        return False
    return True


def _walk(
    events: Iterable[Any],
    *,
    max_depth: int,
    max_alias_nodes: int,
    kinds: tuple[type[Any], type[Any], type[Any], type[Any]],
) -> None:
    """Raise :class:`YamlLimitError` at the first event past a limit.

    :param kinds: the parser's scalar, alias, collection-start and collection-end event classes.
    """
    scalar, alias, start, end = kinds
    # Sizes of the collections still open: each starts at 1 (itself) and grows by its children.
    open_sizes: list[int] = []
    open_anchors: list[str | None] = []
    anchored: dict[str, int] = {}
    added = 0
    for event in events:
        if isinstance(event, scalar):
            size = 1
            if event.anchor:
                anchored[event.anchor] = 1
        elif isinstance(event, alias):
            size = anchored.get(event.anchor, 1)
            added += size
            if added > max_alias_nodes:
                raise YamlLimitError(
                    problem=f"aliases expand to more than {max_alias_nodes:,} nodes (at alias "
                    f"*{event.anchor}, {size:,} nodes); write the values out instead of "
                    "nesting aliases of aliases",
                    problem_mark=event.start_mark,
                )
        elif isinstance(event, start):
            if len(open_sizes) >= max_depth:
                raise YamlLimitError(
                    problem=f"nested more than {max_depth} levels deep",
                    problem_mark=event.start_mark,
                )
            open_sizes.append(1)
            open_anchors.append(event.anchor)
            continue
        elif isinstance(event, end):
            size = open_sizes.pop()
            anchor = open_anchors.pop()
            if anchor:
                anchored[anchor] = size
        else:
            continue  # stream and document boundaries
        if open_sizes:
            open_sizes[-1] += size


_BRACKET = re.compile(r"[\[\]{}]")


def _check_flow_depth(text: str, *, max_depth: int) -> None:
    """Refuse ``[[[[`` / ``{a: {a:`` nested past ``max_depth`` before the parser sees it.

    ruamel's scanner looks up to 1,024 characters ahead for a possible simple key at every open
    bracket and rechecks them all on each token, so a line of brackets costs about 2 s before
    the parser yields the event that would be refused. Counting brackets in the raw text is
    linear. Brackets inside quoted strings are counted too: a config value with more than
    ``max_depth`` unclosed brackets in it is not a real case, and a closing bracket never takes
    the count below zero, so quoted ``]`` cannot hide real nesting.
    """
    depth = 0
    for match in _BRACKET.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                index = match.start()
                line = text.count("\n", 0, index)
                column = index - (text.rfind("\n", 0, index) + 1)
                raise YamlLimitError(
                    problem=f"nested more than {max_depth} levels deep",
                    problem_mark=StreamMark("<yaml>", index, line, column),
                )
        else:
            depth = max(0, depth - 1)
