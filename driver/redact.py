"""Keeping secrets out of logs, the journal and pull requests.

Values are redacted by key name (anything that looks like a token, password, passphrase or
secret), by Pulumi's own marker for secret config (``{"secure": ...}``), and by value: the
contents of the environment variables that carry secrets are never written anywhere, whatever
key they sit under.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "SECRET_ENV_VARS", "redact", "redact_text"]

REDACTED = "[redacted]"

SECRET_ENV_VARS: tuple[str, ...] = (
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_ACCESS_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_CLIENT_SECRET",
)
"""Environment variables whose values must never be written out."""

_SECRET_KEY = re.compile(r"(token|passw(or)?d|passphrase|secret|private_?key|credential)", re.I)
_MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words and numbers


def _secret_values(extra_env: Iterable[str]) -> list[str]:
    names = {*SECRET_ENV_VARS, *extra_env}
    values = [os.environ.get(name, "") for name in names]
    return sorted({v for v in values if len(v) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact_text(text: str, *, extra_env: Iterable[str] = ()) -> str:
    """``text`` with every secret environment value replaced by ``[redacted]``.

    :param extra_env: further environment variable names holding secrets (e.g. a configured
        ``token_env``); default none.
    """
    for value in _secret_values(extra_env):
        text = text.replace(value, REDACTED)
    return text


def redact(value: Any, *, extra_env: Iterable[str] = ()) -> Any:
    """A JSON-like value with secrets removed (by key name, Pulumi ``secure`` marker and value).

    :param value: dicts, lists and scalars.
    :param extra_env: further environment variable names holding secrets; default none.
    """
    secrets = _secret_values(extra_env)

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
