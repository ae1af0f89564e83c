"""Reading stack files into :class:`MirrorcastConfig`, with errors that point at the line.

Stack files are ordinary Pulumi stack settings (``stacks/Pulumi.<stack>.yaml``): a ``config:``
mapping whose ``mirrorcast:<field>`` keys hold the model's top-level fields. Other namespaces
(``aws:region``, ``gcp:project``) belong to providers and are left alone.
"""

from __future__ import annotations

import difflib
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from infra.config._errors import ConfigError, ConfigIssue
from infra.config._model import MirrorcastConfig
from infra.config._secrets import register_config_secrets
from infra.config._yaml_limits import check_yaml_limits

__all__ = [
    "MAX_STACK_FILE_BYTES",
    "NAMESPACE",
    "config_from_mapping",
    "config_from_text",
    "find_project_root",
    "load_stack",
    "load_stack_file",
    "stack_file_path",
]

logger = logging.getLogger(__name__)

NAMESPACE = "mirrorcast"
MAX_STACK_FILE_BYTES = 1_000_000
"""Stack files larger than this are refused: a stack file is reviewed by people, not generated in bulk."""


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) holding ``Pulumi.yaml``.

    Falls back to the directory this package was installed from, so the bundled ``demo`` stack
    is found from anywhere in a source checkout.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    package_root = Path(__file__).resolve().parents[2]
    if (package_root / "Pulumi.yaml").is_file():
        return package_root
    raise ConfigError(
        [
            ConfigIssue(
                "",
                f"no Pulumi.yaml found in {here} or above; run mirrorcast from the project checkout",
            )
        ]
    )


def stack_file_path(stack: str, root: Path | None = None) -> Path:
    """``<root>/stacks/Pulumi.<stack>.yaml``."""
    return (root or find_project_root()) / "stacks" / f"Pulumi.{stack}.yaml"


def load_stack(stack: str, root: Path | None = None) -> MirrorcastConfig:
    """Load and validate the named stack's config from ``stacks/``."""
    path = stack_file_path(stack, root)
    if not path.is_file():
        available = sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in path.parent.glob("Pulumi.*.yaml")
        )
        raise ConfigError(
            [
                ConfigIssue(
                    "", f"no stack file {path}; stacks here: {', '.join(available) or 'none'}"
                )
            ]
        )
    return load_stack_file(path)


def load_stack_file(path: Path | str) -> MirrorcastConfig:
    """Load and validate one stack file. Raises :class:`ConfigError` naming file, line and key path."""
    path = Path(path)
    source = str(path)
    size = path.stat().st_size
    if size > MAX_STACK_FILE_BYTES:
        raise ConfigError(
            [
                ConfigIssue(
                    "",
                    f"file is {size} bytes; stack files are limited to {MAX_STACK_FILE_BYTES} bytes",
                )
            ],
            source=source,
        )
    text = path.read_text(encoding="utf-8", errors="strict")
    return config_from_text(text, source=source)


def config_from_text(text: str, *, source: str | None = None) -> MirrorcastConfig:
    """Parse stack-file YAML text and validate its ``mirrorcast:`` keys."""
    if len(text.encode("utf-8")) > MAX_STACK_FILE_BYTES:
        raise ConfigError(
            [ConfigIssue("", f"stack config is larger than the {MAX_STACK_FILE_BYTES}-byte limit")],
            source=source,
        )
    try:
        # Before loading: a few KB of nested aliases or brackets cost GBs or a RecursionError.
        check_yaml_limits(text)
    except MarkedYAMLError as exc:
        raise _yaml_error(exc, source=source) from None
    except YAMLError as exc:
        raise ConfigError([ConfigIssue("", f"invalid YAML: {exc}")], source=source) from None
    fast = _fast_load(text)
    if fast is not _NOT_LOADED:
        try:
            return _validated(fast, source=source, document=None)
        except ConfigError:
            # The round-trip document knows each key's line and column: the error names them.
            pass
    try:
        document = YAML(typ="rt").load(io.StringIO(text))
    except MarkedYAMLError as exc:
        raise _yaml_error(exc, source=source) from None
    except YAMLError as exc:
        raise ConfigError([ConfigIssue("", f"invalid YAML: {exc}")], source=source) from None
    return _validated(document, source=source, document=document)


_NOT_LOADED = object()


def _fast_load(text: str) -> Any:
    """``text`` loaded by ruamel's C parser (ruamel.yaml.clib), or :data:`_NOT_LOADED`.

    ruamel's round-trip load is pure Python: 1.2 s of CPU for a 100-pool stack file, about a
    minute at a fleet's start. Its ``safe`` load with the C parser reads the same file in 0.14 s
    with the same resolver and constructors (YAML 1.2 by default), and gives the same values
    (``tests/config/test_fast_load.py`` compares the two). The round-trip load stays the
    reference: documents where the two are known to differ go to it (a ``%YAML`` directive,
    which the C parser ignores, ruamel.yaml.clib ticket 29; ``<<`` merge keys, whose merged
    keys it orders first), and so does anything the C parser refuses (it is YAML 1.1's libyaml:
    ``{b:c}`` is a 1.2 flow mapping it cannot scan), so that error is ruamel's as before.
    """
    if _C_PARSER is None or "%YAML" in text or "<<" in text:
        return _NOT_LOADED
    try:
        return YAML(typ="safe", pure=False).load(io.StringIO(text))
    except YAMLError:
        return _NOT_LOADED


def _c_parser() -> Any:
    try:
        from ruamel.yaml.main import CParser
    except ImportError:
        return None
    return CParser


_C_PARSER = _c_parser()


def _yaml_error(exc: MarkedYAMLError, *, source: str | None) -> ConfigError:
    mark = exc.problem_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return ConfigError(
        [ConfigIssue("", f"invalid YAML: {exc.problem or exc}", line, column)], source=source
    )


def _validated(loaded: Any, *, source: str | None, document: Any) -> MirrorcastConfig:
    """The loaded stack document's ``mirrorcast:`` keys validated (``document``: for lines)."""
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, Mapping):
        raise ConfigError(
            [ConfigIssue("", "a stack file must be a mapping with a 'config:' key")], source=source
        )
    config = loaded.get("config") or {}
    if not isinstance(config, Mapping):
        raise ConfigError(
            [ConfigIssue("config", "must be a mapping of config keys")], source=source
        )
    return config_from_mapping(config, source=source, document=document)


def config_from_mapping(
    config: Mapping[str, Any],
    *,
    source: str | None = None,
    document: Any = None,
) -> MirrorcastConfig:
    """Validate a Pulumi config mapping (keys like ``mirrorcast:pools``) into the model.

    :param config: the stack's config; keys outside the ``mirrorcast`` namespace are ignored.
    :param source: file name for error messages.
    :param document: the ruamel round-trip document the mapping came from, for line numbers.
    """
    prefix = f"{NAMESPACE}:"
    data: dict[str, Any] = {}
    issues: list[ConfigIssue] = []
    for key, value in config.items():
        key = str(key)
        if key.startswith(prefix):
            data[key[len(prefix) :]] = _plain(value)
        elif ":" not in key:
            # Pulumi puts un-namespaced keys in the project namespace, so this is ours but unqualified.
            issues.append(
                ConfigIssue(key, f"config keys must be namespaced; write '{prefix}{key}'")
            )
    if issues:
        raise ConfigError(issues, source=source)
    try:
        validated = MirrorcastConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [_issue(error, data, document) for error in exc.errors(include_url=False)],
            source=source,
        ) from None
    # From here on every output of the process redacts the secrets this config names.
    register_config_secrets(validated)
    return validated


def _plain(value: Any) -> Any:
    """Ruamel's commented containers as plain dicts and lists (pydantic validates those)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value


def _issue(error: ErrorDetails, data: Mapping[str, Any], document: Any) -> ConfigIssue:
    keys = _data_path(error["loc"], data)
    path = ".".join(str(k) for k in keys)
    line, column = _position(document, keys)
    return ConfigIssue(path, _message(error, keys), line, column)


def _data_path(loc: tuple[int | str, ...], data: Any) -> list[int | str]:
    """The error location as keys into the input, dropping union tags pydantic inserts."""
    keys: list[int | str] = []
    node = data
    for part in loc:
        if _has(node, part):
            keys.append(part)
            node = node[part]
        elif isinstance(node, Mapping) and node.get("type") == part:
            continue  # discriminator tag of a tagged union
        elif isinstance(part, str) and "[" in part:
            continue  # pydantic's description of a non-tagged union branch
        else:
            keys.append(part)
            node = None
    return keys


def _has(node: Any, part: int | str) -> bool:
    """Whether ``part`` is a key of the mapping or an index of the list ``node``."""
    if isinstance(node, Mapping):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _position(document: Any, keys: list[int | str]) -> tuple[int | None, int | None]:
    """1-based (line, column) of the deepest key of ``keys`` present in the ruamel document."""
    if document is None:
        return None, None
    node = document.get("config") if isinstance(document, Mapping) else None
    position: tuple[int | None, int | None] = (None, None)
    path: list[int | str] = [f"{NAMESPACE}:{keys[0]}", *keys[1:]] if keys else []
    for key in path:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, Mapping) and key in node:
                line, col = lc.key(key) if lc is not None else (None, None)
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                line, col = lc.item(key) if lc is not None else (None, None)
                node = node[key]
            else:
                break
        except (KeyError, AttributeError, TypeError):
            break
        if line is not None:
            position = (line + 1, (col or 0) + 1)
    return position


def _message(error: ErrorDetails, keys: list[int | str]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = error.get("input")
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "assertion_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        name = str(keys[-1]) if keys else "?"
        return f"unknown key {name!r}{_suggestion(name, error)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        expected = ctx.get("expected_tags", "")
        return (
            f"'type' must be one of {expected}, got {ctx.get('tag', given)!r}"
            if kind == "union_tag_invalid"
            else (f"needs a 'type' (one of {expected})" if expected else "needs a 'type'")
        )
    message = error["msg"]
    message = message[0].lower() + message[1:] if message else kind
    message = message.replace("input should be", "must be")
    if given is not None and not isinstance(given, Mapping | list):
        return f"{message}, got {given!r}"
    return message


def _suggestion(name: str, error: ErrorDetails) -> str:
    """' (did you mean 'percent'?)' when a known key is close to the unknown one."""
    model = _model_at(error["loc"][:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(name, list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class reached by following ``loc`` from :class:`MirrorcastConfig`, if any."""
    import typing

    current: Any = MirrorcastConfig
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                # a tagged-union tag or a dict key: stay on the container's value type
                continue
            current = field.annotation
        else:
            args = [a for a in typing.get_args(current) if a is not type(None)]
            if not args:
                return None
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            current = next(
                (m for m in models if str(part) == _tag(m)), models[0] if models else args[-1]
            )
        # unwrap dict[str, X] / list[X] / X | None
        while not (isinstance(current, type) and issubclass(current, BaseModel)):
            args = [a for a in typing.get_args(current) if a is not type(None)]
            if not args:
                break
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if len(models) == 1:
                current = models[0]
                break
            if models:
                break
            current = args[-1]
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    return str(field.default) if field is not None else None
