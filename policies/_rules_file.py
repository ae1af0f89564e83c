"""Rules kept in a separate YAML file (``pools.<p>.rules_file``), merged into the config.

The driver calls :func:`load_rules_files` right after loading a stack file, so rules from a
file pass exactly the checks inline rules pass (syntax, metrics, units, quantiles) and their
errors name the rules file, the line and the rule's key path.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from infra.config import (
    ConfigError,
    ConfigIssue,
    MirrorcastConfig,
    RuleSpec,
    check_yaml_limits,
    rule_problems,
)

__all__ = ["MAX_RULES_FILE_BYTES", "load_rules_files"]

logger = logging.getLogger(__name__)

MAX_RULES_FILE_BYTES = 200_000
"""Rules files larger than this are refused (they are written and reviewed by people)."""


def _position(node: Any, keys: list[int | str]) -> tuple[int | None, int | None]:
    position: tuple[int | None, int | None] = (None, None)
    for key in keys:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, Mapping) and key in node:
                line, column = lc.key(key) if lc is not None else (None, None)
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                line, column = lc.item(key) if lc is not None else (None, None)
            else:
                break
            node = node[key]
        except (KeyError, AttributeError, TypeError):
            break
        if line is not None:
            position = (line + 1, (column or 0) + 1)
    return position


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_rules_files(config: MirrorcastConfig, *, stack_file: Path | str) -> MirrorcastConfig:
    """Append each pool's ``rules_file`` rules (a YAML list of rules) to its inline rules.

    :param config: the loaded stack config.
    :param stack_file: the stack file the config came from; ``rules_file`` is relative to it.
    :returns: the config with the file's rules appended (unchanged when no pool names a file).
    :raises ConfigError: naming the rules file, line and key (e.g. ``2.when``) of each problem.
    """
    base = Path(stack_file).resolve().parent
    pools = dict(config.pools)
    for name, pool in config.pools.items():
        if pool.rules_file is None:
            continue
        path = (base / pool.rules_file).resolve()
        source = str(path)
        if not path.is_file():
            raise ConfigError(
                [
                    ConfigIssue(
                        f"pools.{name}.rules_file", f"no such file {path} (relative to {base})"
                    )
                ]
            )
        if path.stat().st_size > MAX_RULES_FILE_BYTES:
            raise ConfigError(
                [ConfigIssue("", f"rules files are limited to {MAX_RULES_FILE_BYTES} bytes")],
                source=source,
            )
        try:
            text = path.read_text(encoding="utf-8")
            check_yaml_limits(text)  # alias bombs and deep nesting, with their line
            document = YAML(typ="rt").load(io.StringIO(text))
        except YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            raise ConfigError(
                [
                    ConfigIssue(
                        "",
                        f"invalid YAML: {getattr(error, 'problem', None) or error}",
                        mark.line + 1 if mark is not None else None,
                        mark.column + 1 if mark is not None else None,
                    )
                ],
                source=source,
            ) from None
        if document is None:
            document = []
        if not isinstance(document, list):
            raise ConfigError(
                [
                    ConfigIssue(
                        "", "a rules file is a YAML list of rules (name, when, actions, ...)"
                    )
                ],
                source=source,
            )
        rules: list[RuleSpec] = []
        issues: list[ConfigIssue] = []
        for index, item in enumerate(document):
            try:
                rules.append(RuleSpec.model_validate(_plain(item)))
            except ValidationError as error:
                for detail in error.errors(include_url=False):
                    keys: list[int | str] = [index, *detail["loc"]]
                    line, column = _position(document, keys)
                    ctx = detail.get("ctx") or {}
                    message = str(ctx["error"]) if "error" in ctx else detail["msg"]
                    issues.append(
                        ConfigIssue(".".join(str(k) for k in keys), message, line, column)
                    )
        for loc, message, _given in rule_problems(
            rules, pool, quantiles=set(config.forecast.quantiles)
        ):
            keys = list(loc)
            line, column = _position(document, keys)
            issues.append(ConfigIssue(".".join(str(k) for k in keys), message, line, column))
        names = [r.name for r in pool.rules]
        for index, rule in enumerate(rules):
            if rule.name in names:
                line, column = _position(document, [index, "name"])
                issues.append(
                    ConfigIssue(
                        f"{index}.name",
                        f"rule name {rule.name!r} is already used in pools.{name}; names must be unique in a pool",
                        line,
                        column,
                    )
                )
            names.append(rule.name)
        if issues:
            raise ConfigError(issues, source=source)
        logger.info("pool %s: %d rules from %s", name, len(rules), path)
        pools[name] = pool.model_copy(update={"rules": [*pool.rules, *rules]})
    return config.model_copy(update={"pools": pools})
