"""The one redactor: every secret the process knows of, kept out of logs, the journal, output and PRs.

What counts as a secret:

- the values of the environment variables that carry credentials by convention
  (:data:`WELL_KNOWN_SECRET_ENV`: the Pulumi passphrase and token, AWS, Azure, GitHub);
- the values of the environment variables **a loaded stack config names**: every config field
  whose name ends in ``_env`` holds the name of such a variable (``driver.gitops.token_env``,
  ``metrics.bearer_token_env``, any added later), and so does every field declared with
  ``json_schema_extra=NAMES_SECRET_ENV`` (a notify action's ``channel``: the variable holding
  the webhook URL), so a custom name such as ``token_env: MC_GH_PAT`` is covered without a list
  to keep up to date;
- passwords inside URLs anywhere in a loaded config (``metrics.url``, ``driver.journal_url``:
  ``postgresql://user:password@host/db``);
- values a caller passes for one call (a token it just read).

Loading a stack config (:func:`infra.config.config_from_mapping`, so every loader) registers
its secrets here, so a log line written anywhere after that is redacted, whoever writes it.

Structures are also redacted by key name (anything that looks like a token, password,
passphrase or secret) and by Pulumi's marker for secret config (``{"secure": ...}``).
Everything is replaced by the same mask, :data:`REDACTED`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel
from pydantic.json_schema import JsonDict

__all__ = [
    "NAMES_SECRET_ENV",
    "REDACTED",
    "WELL_KNOWN_SECRET_ENV",
    "config_secret_env_names",
    "redact",
    "redact_text",
    "register_config_secrets",
    "register_secret_env",
    "register_secret_value",
]

NAMES_SECRET_ENV: JsonDict = {"x-names-secret-env": True}
"""``json_schema_extra`` of a config field whose value is the name of an environment variable
holding a secret (for fields not named ``*_env``)."""

REDACTED = "[redacted]"
"""What every secret is replaced by, in every output."""

WELL_KNOWN_SECRET_ENV: tuple[str, ...] = (
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_ACCESS_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_CLIENT_SECRET",
)
"""Environment variables whose values are secret whatever the config says."""

_SECRET_KEY = re.compile(r"(token|passw(or)?d|passphrase|secret|private_?key|credential)", re.I)
_MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words and numbers

_lock = threading.Lock()
_env_names: set[str] = set(WELL_KNOWN_SECRET_ENV)
_values: set[str] = set()


def register_secret_env(name: str) -> None:
    """Treat the value of environment variable ``name`` as a secret from now on."""
    with _lock:
        _env_names.add(name)


def register_secret_value(value: str | None) -> None:
    """Treat ``value`` itself as a secret from now on (a password found in a URL)."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _values.add(value)


def config_secret_env_names(config: BaseModel) -> set[str]:
    """Every environment variable name that a secret-naming field of ``config`` holds.

    A field names a secret when its name ends in ``_env`` or it is declared with
    ``json_schema_extra=NAMES_SECRET_ENV``.
    """
    names: set[str] = set()
    for field, value, model in _walk(config):
        if not (isinstance(value, str) and value):
            continue
        info = type(model).model_fields.get(field)
        extra = info.json_schema_extra if info is not None else None
        if field.endswith("_env") or (
            isinstance(extra, dict) and extra.get("x-names-secret-env") is True
        ):
            names.add(value)
    return names


def register_config_secrets(config: BaseModel) -> None:
    """Register the secrets ``config`` names: its ``*_env`` variables and its URL passwords."""
    for name in config_secret_env_names(config):
        register_secret_env(name)
    for _field, value, _model in _walk(config):
        if isinstance(value, str) and "@" in value and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            register_secret_value(password)


def _walk(node: Any) -> Iterable[tuple[str, Any, BaseModel]]:
    """(field name, value, model) for every field of ``node`` and the models inside it."""
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name, None)
            yield name, value, node
            yield from _walk(value)
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _walk(value)


def _secrets(extra_env: Iterable[str], values: Iterable[str | None]) -> list[str]:
    with _lock:
        names = {*_env_names, *extra_env}
        known = set(_values)
    found = {os.environ.get(name, "") for name in names} | known | {v or "" for v in values}
    # Longest first, so a secret containing another is masked whole.
    return sorted((v for v in found if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def redact_text(
    text: str, *, extra_env: Iterable[str] = (), values: Iterable[str | None] = ()
) -> str:
    """``text`` with every known secret replaced by :data:`REDACTED`.

    :param extra_env: further environment variable names holding secrets; default none.
    :param values: further secret values for this call (a token just read); default none.
    """
    for secret in _secrets(extra_env, values):
        text = text.replace(secret, REDACTED)
    return text


def redact(value: Any, *, extra_env: Iterable[str] = (), values: Iterable[str | None] = ()) -> Any:
    """A JSON-like value with secrets removed (by key name, Pulumi ``secure`` marker and value).

    :param value: dicts, lists and scalars.
    :param extra_env: further environment variable names holding secrets; default none.
    :param values: further secret values for this call; default none.
    """
    secrets = _secrets(extra_env, values)

    def walk(node: Any) -> Any:
        if isinstance(node, Mapping):
            if set(node) == {"secure"}:
                return REDACTED
            return {
                str(k): (REDACTED if _SECRET_KEY.search(str(k)) and v is not None else walk(v))
                for k, v in node.items()
            }
        if isinstance(node, list | tuple):
            return [walk(v) for v in node]
        if isinstance(node, str):
            for secret in secrets:
                node = node.replace(secret, REDACTED)
            return node
        return node

    return walk(value)
