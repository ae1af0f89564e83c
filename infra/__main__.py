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

from infra._common import declarability_problems  # noqa: E402
from infra.clouds import CLOUDS, UnknownCloudError  # noqa: E402
from infra.config import NAMESPACE, Cloud, ConfigError, MirrorcastConfig, config_from_mapping  # noqa: E402
from infra.pool import Pool  # noqa: E402

__all__ = ["SECRETS_NAMESPACE", "main", "read_config"]

logger = logging.getLogger(__name__)

SECRETS_NAMESPACE = "mirrorcast-secrets"
"""Secrets live outside ``mirrorcast:*`` so the reviewable config never holds them."""

DATABASE_PASSWORD_KEY = "databasePassword"
SSH_PUBLIC_KEY_KEY = "azureSshPublicKey"


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
    problems = _backend_problems(config)
    if problems:
        # The other checks assume every cloud the pools name can be declared.
        raise pulumi.RunError("\n".join(f"{source}: {problem}" for problem in problems))
    problems = declarability_problems(config)
    if _database_password() is None:
        for name, pool in config.pools.items():
            if pool.sync.database is not None and pool.primary.cloud in (Cloud.aws, Cloud.azure):
                problems.append(
                    f"pools.{name}.sync.database: the {pool.primary.cloud.value} database needs "
                    "an administrator password; set it with `pulumi config set --secret "
                    f"{SECRETS_NAMESPACE}:{DATABASE_PASSWORD_KEY} <password>`"
                )
    problems.extend(_azure_problems(config))
    if problems:
        raise pulumi.RunError("\n".join(f"{source}: {problem}" for problem in problems))
    return config


def _backend_problems(config: MirrorcastConfig) -> list[str]:
    """A cloud or balancer kind no registered backend declares, named at its key path."""
    problems: list[str] = []
    for name, pool in config.pools.items():
        at = f"pools.{name}"
        for path, cloud in (
            (f"{at}.primary.cloud", pool.primary.cloud),
            (f"{at}.mirror.location.cloud", pool.mirror_cloud),
        ):
            try:
                CLOUDS.backend(cloud)
            except UnknownCloudError as exc:
                problems.append(f"{path}: {exc}")
        try:
            CLOUDS.for_balancer(pool.balancer.kind)
        except UnknownCloudError as exc:
            problems.append(f"{at}.balancer.kind: {exc}")
    return list(dict.fromkeys(problems))


def _database_password() -> pulumi.Output[str] | None:
    return pulumi.Config(SECRETS_NAMESPACE).get_secret(DATABASE_PASSWORD_KEY)


def _ssh_public_key() -> pulumi.Output[str] | None:
    return pulumi.Config(SECRETS_NAMESPACE).get_secret(SSH_PUBLIC_KEY_KEY)


def _azure_problems(config: MirrorcastConfig) -> list[str]:
    """What an Azure side needs that only the stack can give: an SSH key, the standby principal."""
    problems: list[str] = []
    for name, pool in config.pools.items():
        sides = [
            (role, cloud)
            for role, cloud in (("primary", pool.primary.cloud), ("mirror", pool.mirror_cloud))
            if cloud is Cloud.azure
        ]
        if not sides:
            continue
        if config.azure.image_kind == "generalized" and _ssh_public_key() is None:
            problems.append(
                f"pools.{name}: the Azure scale sets boot a generalized image, which needs an "
                "admin SSH key: set it with `pulumi config set --secret "
                f'{SECRETS_NAMESPACE}:{SSH_PUBLIC_KEY_KEY} "$(cat ~/.ssh/id_ed25519.pub)"` '
                "(or set azure.image_kind: specialized)"
            )
        warm = pool.mirror.paused.strategy == "warm_pool" and pool.mirror_size > 0
        if pool.mirror_cloud is Cloud.azure and warm and not config.azure.standby_pool_principal_id:
            problems.append(
                f"pools.{name}.mirror.paused: an Azure standby pool needs the Standby Pool "
                "resource provider to hold roles on the resource group; set "
                "azure.standby_pool_principal_id to its object id (az ad sp list --display-name "
                "'Standby Pool Resource Provider' --query [0].id -o tsv) and register the "
                "provider once (az provider register --namespace Microsoft.StandbyPool)"
            )
    return problems


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
