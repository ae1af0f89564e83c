"""The mirrorcast Pulumi program: one ``Pool`` component per configured pool.

Pulumi runs this file (``main: infra/`` in Pulumi.yaml). The whole ``mirrorcast:*`` config is
validated before any resource is declared, so a bad stack file stops with the key path that is
wrong (``pools.web.mirror.percent: must be between 0 and 100, got 140``) and nothing half-applies.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs this directory as a script, which puts infra/ itself first on sys.path. Our
# modules azure.py and dns.py would then shadow the real `azure` and `dns` packages for anything
# imported later; the program imports its modules as the `infra` package instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import logging  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from typing import Any  # noqa: E402

import pulumi  # noqa: E402
import pulumi.runtime  # noqa: E402

from infra.clouds import (  # noqa: E402
    DATABASE_PASSWORD_KEY,
    SECRETS_NAMESPACE,
    SSH_PUBLIC_KEY_KEY,
    StackSecrets,
    declarability_problems,
)
from infra.config import NAMESPACE, ConfigError, MirrorcastConfig, config_from_mapping  # noqa: E402
from infra.pool import Pool  # noqa: E402

__all__ = ["SECRETS_NAMESPACE", "main", "read_config"]

logger = logging.getLogger(__name__)


def _namespace_fields() -> Iterable[str]:
    """Every ``mirrorcast:<field>`` key set on the stack, so typos are reported, not ignored."""
    fields = set(MirrorcastConfig.model_fields)
    prefix = f"{NAMESPACE}:"
    # The language host hands the stack's config to the program in PULUMI_CONFIG, which the
    # SDK's public get_config_env() reads; keys the model does not know show up there.
    for key in pulumi.runtime.get_config_env():
        if key.startswith(prefix):
            fields.add(key[len(prefix) :])
    return sorted(fields)


def read_config() -> MirrorcastConfig:
    """Read and validate the stack's ``mirrorcast:*`` config.

    Raises :class:`pulumi.RunError` (shown by Pulumi without a traceback) listing every problem
    with its key path.
    """
    source = f"stack {pulumi.get_stack()}"
    settings = pulumi.Config(NAMESPACE)
    mapping: dict[str, Any] = {}
    for field in _namespace_fields():
        try:
            value = settings.get_object(field)
        except ValueError as exc:  # get_object raises a bare JSON error on malformed values
            raise pulumi.RunError(f"{source}: {field}: is not valid JSON/YAML ({exc})") from None
        if value is not None:
            mapping[f"{NAMESPACE}:{field}"] = value
    try:
        config = config_from_mapping(mapping, source=source)
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None
    secrets = StackSecrets(
        database_password=_database_password() is not None,
        ssh_public_key=_ssh_public_key() is not None,
    )
    problems = declarability_problems(config, secrets=secrets)
    if problems:
        raise pulumi.RunError("\n".join(f"{source}: {problem}" for problem in problems))
    return config


def _database_password() -> pulumi.Output[str] | None:
    return pulumi.Config(SECRETS_NAMESPACE).get_secret(DATABASE_PASSWORD_KEY)


def _ssh_public_key() -> pulumi.Output[str] | None:
    return pulumi.Config(SECRETS_NAMESPACE).get_secret(SSH_PUBLIC_KEY_KEY)


def main() -> pulumi.Output[dict[str, Any]]:
    """Declare every pool and export ``pools`` (the summary the driver reads back)."""
    config = read_config()
    password = _database_password()
    default_aws_region = pulumi.Config("aws").get("region")
    pools = {
        name: Pool(
            name,
            spec=spec,
            tags=config.tags,
            database_password=password,
            default_aws_region=default_aws_region,
            azure=config.azure,
            ssh_public_key=_ssh_public_key(),
        )
        for name, spec in config.pools.items()
    }
    outputs: pulumi.Output[dict[str, Any]] = pulumi.Output.from_input(
        {name: pool.summary for name, pool in pools.items()}
    )
    pulumi.export("pools", outputs)
    logger.info("declared %d pool(s): %s", len(pools), ", ".join(pools))
    return outputs


if __name__ == "__main__":
    main()
