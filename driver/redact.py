"""Keeping secrets out of logs, the journal and pull requests: the driver's name for the one redactor.

The redactor lives with the stack config (:mod:`infra.config`), because the config is what names
the secrets (every ``*_env`` field, every URL password) and because the metric sources, below the
driver, redact with it too. See :mod:`infra.config._secrets` for what is covered.
"""

from __future__ import annotations

from infra.config import (
    REDACTED,
    WELL_KNOWN_SECRET_ENV,
    redact,
    redact_text,
    register_config_secrets,
)

__all__ = ["REDACTED", "SECRET_ENV_VARS", "redact", "redact_text", "register_config_secrets"]

SECRET_ENV_VARS = WELL_KNOWN_SECRET_ENV
"""Environment variables whose values are secret whatever the config says."""
